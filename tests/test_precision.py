"""Mixed precision: every model under ``mixed_bfloat16`` keeps float32 outputs and its contract,
and stays close to float32; the ``auto`` choice reads the CPU's flags."""

import keras
import numpy as np
import pytest

from hdr_keras import io, ops as hdr_ops, precision
from hdr_keras.models import SingleHDR
from hdr_keras.pretrained import build_model, shipped_weights

SAMPLE = "examples/sample.jpg"


@pytest.fixture(autouse=True)
def _restore_policy():
    yield
    keras.config.set_dtype_policy("float32")


def _pair(weights=None, shape=(1, 67, 91, 3), ldr=None):
    """Outputs of the same weights built under float32 and under mixed_bfloat16."""
    if ldr is None:
        ldr = np.random.default_rng(0).uniform(0, 1, size=shape).astype(np.float32)
    outputs = {}
    reference = None
    for dtype in ("float32", "bfloat16"):
        with precision.policy_scope(dtype):
            model = build_model("lite", weights)
        if reference is None:
            reference = model.get_weights()
        else:
            model.set_weights(reference)
        outputs[dtype] = {k: np.asarray(v) for k, v in model(ldr, training=False).items()}
    return outputs["float32"], outputs["bfloat16"]


def test_policy_scope_builds_mixed_layers_and_restores_the_global_policy():
    with precision.policy_scope("bfloat16"):
        model = SingleHDR.from_preset("lite")
    assert keras.config.dtype_policy().name == "float32"
    model(np.zeros((1, 32, 32, 3), np.float32))
    assert model.dtype_policy.name == "float32"  # containers: float32 in, float32 out
    assert model.hallucination.unet.stem[0].dtype_policy.name == "mixed_bfloat16"
    assert model.linearization.curve.dtype_policy.name == "float32"
    assert model.linearization.histogram.dtype_policy.name == "float32"
    assert all(w.dtype == "float32" for w in model.weights)


def test_bfloat16_outputs_are_float32_and_keep_the_contract():
    f32, bf16 = _pair()
    for key, value in bf16.items():
        assert value.dtype == np.float32, key
        assert np.all(np.isfinite(value)), key
    curve = bf16["inverse_crf"][0]
    assert curve[0] == 0.0 and curve[-1] == 1.0 and np.all(np.diff(curve) >= 0)
    assert np.all(bf16["hdr"] >= bf16["linear"] - 1e-6)
    assert np.all((bf16["dequantized"] >= 0) & (bf16["dequantized"] <= 1))


def test_bfloat16_matches_float32_with_the_shipped_weights():
    image = io.read_ldr(SAMPLE)[None, :, :512]
    f32, bf16 = _pair(shipped_weights("lite"), ldr=image)
    # Measured on examples/sample.jpg (256x512), shipped weights of 2026-12-07: curve 3.5e-4,
    # dequantized 2.1e-4, linear 5.5e-3, hdr mean 1.1e-3. With the Linearization-Net's batch norms
    # in bfloat16 the curve moved by 4e-3 on val: they stay float32.
    curve = np.abs(f32["inverse_crf"] - bf16["inverse_crf"]).max()
    dequantized = np.abs(f32["dequantized"] - bf16["dequantized"]).max()
    assert curve < 2e-3 and dequantized < 1e-3
    # linear = g(D): it moves by the curve's change plus the slope of g times D's change. Near white
    # an inverse camera curve is steep (here up to 35 per unit: one of its 1023 steps rises 3.4 %),
    # so D's 1e-4 becomes 3.5e-3 there; any more than this bound is an error of its own.
    slope = np.abs(np.diff(f32["inverse_crf"], axis=-1)).max() * (f32["inverse_crf"].shape[-1] - 1)
    assert np.abs(f32["linear"] - bf16["linear"]).max() <= curve + slope * dequantized + 1e-4
    assert np.abs(f32["hdr"] - bf16["hdr"]).mean() < 8e-3


def test_apply_curve_takes_bfloat16_images_without_index_overflow():
    import tensorflow as tf

    images = tf.cast(tf.constant([[[[1.0, 0.999, 0.5]]]]), tf.bfloat16)
    curve = np.linspace(0, 1, 1024, dtype=np.float32)[None] ** 2
    out = np.asarray(hdr_ops.apply_curve(images, curve))
    assert out.dtype == np.float32
    assert out[0, 0, 0, 0] == 1.0 and 0.24 < out[0, 0, 0, 2] < 0.26


def test_resolve_reads_cpu_flags(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert precision.cpu_bf16_flags(cpuinfo) == ("amx_bf16", "avx512_bf16")
    cpuinfo.write_text("processor : 0\nflags\t\t: fpu sse avx2\n")
    assert precision.cpu_bf16_flags(cpuinfo) == ()
    assert precision.cpu_bf16_flags(tmp_path / "missing") == ()
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())
    monkeypatch.setattr(precision, "gpu_supports_bf16", lambda: False)
    assert precision.resolve("auto")[0] == "float32"
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("amx_bf16",))
    assert precision.resolve("auto") == ("bfloat16", "auto: CPU has amx_bf16")
    assert precision.resolve("float32") == ("float32", "asked for")
    with pytest.raises(ValueError, match="unknown dtype"):
        precision.resolve("int8")
