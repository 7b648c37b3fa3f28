"""The LiteRT runtime (hdr_keras/runtimes/litert.py) against the TensorFlow one, its cache, what
``runtime="auto"`` picks, and a ``predict`` process that runs it without importing TensorFlow.

One .tflite file is built for the session's random `lite` weights (about a minute) into a
temporary cache folder (``XDG_CACHE_HOME``); the tests share it.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hdr_keras import engine, precision
from hdr_keras import runtimes as runtime_choice  # the name runtimes is the fixture below
from hdr_keras.errors import UsageError
from hdr_keras.runtimes import litert

pytestmark = pytest.mark.xdist_group("runtime_litert")  # the module's .tflite is built once, on one worker (pytest.ini)
CURVE_TOLERANCE = 2e-3
"""Largest difference of the inverse curves between the runtimes (the engine's contract)."""
HDR_TOLERANCE = 1e-2
"""Largest mean relative difference of the HDR outputs between the runtimes."""


def _relative(actual, expected):
    return float(np.mean(np.abs(actual - expected) / (np.abs(expected) + 1e-3)))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xdg_cache")
    previous = os.environ.get(litert.CACHE_ENV)
    os.environ[litert.CACHE_ENV] = str(folder)
    yield folder
    if previous is None:
        del os.environ[litert.CACHE_ENV]
    else:
        os.environ[litert.CACHE_ENV] = previous


@pytest.fixture(scope="module")
def runtimes(cache, weights):
    """(LiteRT runtime, TensorFlow float32 runtime) of the session's random weights."""
    from hdr_keras.runtimes import tensorflow

    return litert.Runtime("lite", weights), tensorflow.Runtime("lite", weights, dtype="float32")


def _images():
    """Odd sizes, not multiples of the networks' factors; smooth content with clipped highlights."""
    rng = np.random.default_rng(3)
    images = []
    for height, width in [(37, 53), (120, 97)]:
        y, x = np.mgrid[0:height, 0:width] / max(height, width)
        base = 0.5 + 0.45 * np.sin(5 * x + 3 * y)[..., None] * np.array([1.0, 0.8, 0.6])
        images.append(np.clip(base + rng.normal(0, 0.03, (height, width, 3)), 0, 1).astype(np.float32)[None])
    return images


def test_file_in_cache_with_builtin_ops_and_info(runtimes, cache):
    tf_lite = pytest.importorskip("tensorflow")  # noqa: F841 - the op reader needs TensorFlow's schema
    from hdr_keras import export

    rt, _ = runtimes
    assert rt.path.parent == cache / "hdr_keras" / "litert"
    ops = export.tflite_ops(rt.path.read_bytes())
    assert "CONV_2D" in ops and not export.non_builtin_ops(ops)
    info = json.loads(rt.path.with_suffix(".json").read_text())
    assert info == {"align": rt.align, "whole_image": rt.whole_image, "refines": rt.refines}
    assert not list(rt.path.parent.glob(".*.tmp")) and not list(rt.path.parent.glob(".*.lock"))


def test_runtimes_agree(runtimes):
    rt, reference = runtimes
    for ldr in _images():
        curve, expected_curve = rt.curve(ldr), reference.curve(ldr)
        assert curve.shape == (1, 1024) and curve.dtype == np.float32
        assert np.max(np.abs(curve - expected_curve)) < CURVE_TOLERANCE
        linear = rt.linearize(ldr, expected_curve)
        expected_linear = reference.linearize(ldr, expected_curve)
        assert linear.shape == ldr.shape and _relative(linear, expected_linear) < HDR_TOLERANCE
        hallucinated = rt.hallucinate(expected_linear)
        assert hallucinated.shape == ldr.shape
        assert _relative(hallucinated, reference.hallucinate(expected_linear)) < HDR_TOLERANCE


def test_sizes_reuse_interpreters(runtimes, monkeypatch):
    rt, _ = runtimes
    monkeypatch.setattr(litert, "MAX_SIZES", 2)
    small, large = _images()
    first = rt.linearize(small, rt.curve(small))
    rt._interpreters.clear()
    for ldr in (small, large, small, large, small):
        rt.curve(ldr)
    assert list(rt._interpreters) == [large.shape[1:3], small.shape[1:3]]
    np.testing.assert_allclose(rt.linearize(small, rt.curve(small)), first, rtol=1e-6, atol=1e-7)
    batch = np.concatenate([small, small[:, ::-1]])
    np.testing.assert_allclose(rt.curve(batch)[1:], rt.curve(small[:, ::-1]), rtol=1e-6, atol=1e-7)


def test_cache_hit_and_key(runtimes, weights):
    rt, _ = runtimes
    stamp = rt.path.stat().st_mtime_ns
    assert litert.build("lite", weights) == rt.path and rt.path.stat().st_mtime_ns == stamp
    other = litert.cache_path("lite", "0" * 64)
    assert other != rt.path and other.parent == rt.path.parent
    with pytest.raises(UsageError, match="float32 only"):
        litert.Runtime("lite", weights, dtype="bfloat16")


def test_engines_agree(runtimes, weights):
    """Whole images (one Dequantization pass for the small one) and tiles, as predict runs them."""
    fast = engine.Engine("lite", weights, dtype="float32", runtime="litert")
    reference = engine.Engine("lite", weights, dtype="float32", runtime="tensorflow")
    assert (fast.describe()["runtime"], fast.describe()["dtype"]) == ("litert", "float32")
    small, large = (ldr[0] for ldr in _images())
    for image, tiling in [(small, {}), (large, {"tile": 64, "overlap": 16, "tile_above": 0})]:
        result, expected = fast.reconstruct(image, **tiling), reference.reconstruct(image, **tiling)
        assert result.info["tiles"] == expected.info["tiles"]
        assert np.max(np.abs(result.inverse_crf - expected.inverse_crf)) < CURVE_TOLERANCE
        assert result.hdr.shape == image.shape and _relative(result.hdr, expected.hdr) < HDR_TOLERANCE


def test_auto_picks_by_cpu(monkeypatch):
    monkeypatch.setattr(runtime_choice, "_has_gpu", lambda: False)
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())
    assert runtime_choice.pick("auto", "auto")[:2] == ("litert", "float32")
    assert runtime_choice.pick("auto", "float32")[:2] == ("litert", "float32")
    assert runtime_choice.pick("auto", "bfloat16")[:2] == ("tensorflow", "bfloat16")
    assert runtime_choice.pick("tensorflow", "auto")[:2] == ("tensorflow", "float32")
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("amx_bf16",))
    assert runtime_choice.pick("auto", "auto")[:2] == ("tensorflow", "bfloat16")
    assert runtime_choice.pick("litert", "auto")[:2] == ("litert", "float32")
    with pytest.raises(UsageError, match="float32 only"):
        runtime_choice.pick("litert", "bfloat16")
    with pytest.raises(UsageError, match="unknown runtime"):
        runtime_choice.pick("onnx", "auto")


def test_predict_without_tensorflow(runtimes, cache, weights, tmp_path):
    """A fresh ``predict --runtime litert`` process (the .tflite cached) imports neither TensorFlow
    nor Keras, and its sidecar says what ran."""
    from PIL import Image

    Image.fromarray(np.round(_images()[1][0] * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    code = f"""
import sys
from hdr_keras import predict
status = predict.main([{str(tmp_path / "photo.png")!r}, "--out_dir", {str(tmp_path / "out")!r},
                       "--weights", {str(weights)!r}, "--runtime", "litert", "--quiet"])
print(status, sorted(name for name in ("tensorflow", "keras") if name in sys.modules))
"""
    env = {**os.environ, litert.CACHE_ENV: str(cache)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr
    sidecar = json.loads((tmp_path / "out" / "photo.json").read_text())
    assert (sidecar["runtime"], sidecar["dtype"]) == ("litert", "float32")
