"""Tests for the stage networks and SingleHDR: shapes, semantics, configs, `.keras` files, sizes.

The `paper` preset (29M parameters) is built once for the module; `lite` gets every check.
"""

import keras
import numpy as np
import pytest

from hdr_keras import crf
from hdr_keras import ops as hdr_ops
from hdr_keras.models import (
    PRESETS,
    Bottleneck,
    ContextHallucinationNet,
    DequantizationNet,
    LinearizationNet,
    RefinementNet,
    SingleHDR,
    UNet,
    get_preset,
)

ODD_SIZES = [(1, 37, 53), (2, 97, 131)]
OUTPUT_KEYS = {"dequantized", "inverse_crf", "linear", "hallucinated", "hdr"}


def _ldr(n, h, w, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, size=(n, h, w, 3)).astype(np.float32)


def _perturb(model, seed=0):
    """Moves every weight (BN statistics and non-trainable curve tables too) away from its initial value."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = np.asarray(weight)
        factor = rng.uniform(0.9, 1.1, size=value.shape)
        if "variance" in weight.path:
            weight.assign((value * factor).astype(value.dtype))
        else:
            weight.assign((value * factor + rng.normal(0, 1e-3, size=value.shape)).astype(value.dtype))


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def _assert_outputs_equal(a, b):
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.fixture(scope="module")
def paper():
    model = SingleHDR.from_preset("paper")
    model(_ldr(1, 32, 32))
    return model


@pytest.fixture(scope="module")
def lite():
    model = SingleHDR.from_preset("lite")
    model(_ldr(1, 32, 32))
    return model


@pytest.fixture(params=["lite", "paper"])
def preset_model(request, lite, paper):
    return {"lite": lite, "paper": paper}[request.param]


# ---------------------------------------------------------------- parameter counts


def conv(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def test_paper_parameter_counts_by_hand(paper):
    """Per stage, trainable and non-trainable, worked out from docs/design.md#presets."""
    # Dequantization U-Net, input 3 channels, every conv with bias.
    stem = conv(7, 3, 16) + conv(7, 16, 16)  # 2352+16 + 12544+16 = 14928
    down = (
        conv(5, 16, 32) + conv(5, 32, 32)  # 12832 + 25632
        + conv(3, 32, 64) + conv(3, 64, 64)  # 18496 + 36928
        + conv(3, 64, 128) + conv(3, 128, 128)  # 73856 + 147584
        + conv(3, 128, 256) + conv(3, 256, 256)  # 295168 + 590080
    )
    # Up: conv 3x3 to the skip's width, concat with the skip (2x the width), conv 3x3.
    up = (
        conv(3, 256, 128) + conv(3, 256, 128)  # 295040 + 295040
        + conv(3, 128, 64) + conv(3, 128, 64)  # 73792 + 73792
        + conv(3, 64, 32) + conv(3, 64, 32)  # 18464 + 18464
        + conv(3, 32, 16) + conv(3, 32, 16)  # 4624 + 4624
    )
    head = conv(3, 16, 3)  # 432 + 3 = 435
    dequantization = stem + down + up + head
    assert dequantization == 1_999_779

    # Linearization: conv1 7x7 on 102 channels (3 image + 6 Sobel + 93 histogram), with bias.
    # BN: gamma, beta trainable (2C), moving mean and variance non-trainable (2C).
    lin_convs = conv(7, 102, 64)  # 319872 + 64 = 319936
    bn_channels = 64
    # Stage 2: bottleneck 64-64-256 x3 (no conv bias); the first projects 64 -> 256.
    lin_convs += conv(1, 64, 64, False) + conv(3, 64, 64, False) + conv(1, 64, 256, False) + conv(1, 64, 256, False)
    bn_channels += 64 + 64 + 256 + 256
    lin_convs += 2 * (conv(1, 256, 64, False) + conv(3, 64, 64, False) + conv(1, 64, 256, False))
    bn_channels += 2 * (64 + 64 + 256)
    # Stage 3: bottleneck 128-128-512 x2; the first projects 256 -> 512 (stride 2 on its 1x1 convs).
    lin_convs += conv(1, 256, 128, False) + conv(3, 128, 128, False) + conv(1, 128, 512, False) + conv(1, 256, 512, False)
    bn_channels += 128 + 128 + 512 + 512
    lin_convs += conv(1, 512, 128, False) + conv(3, 128, 128, False) + conv(1, 128, 512, False)
    bn_channels += 128 + 128 + 512
    dense = 512 * 11 + 11  # 5643
    assert bn_channels == 3520
    linearization_trainable = lin_convs + 2 * bn_channels + dense
    # MonotonicCRF holds g0 (1024) and hinv (11 x 1024), not trainable.
    linearization_frozen = 2 * bn_channels + 1024 + 11 * 1024  # 7040 + 12288 = 19328
    assert linearization_trainable == 1_200_971

    # Hallucination: VGG16 conv1_1 .. conv5_3 (3x3, bias).
    vgg = (
        conv(3, 3, 64) + conv(3, 64, 64)
        + conv(3, 64, 128) + conv(3, 128, 128)
        + conv(3, 128, 256) + 2 * conv(3, 256, 256)
        + conv(3, 256, 512) + 2 * conv(3, 512, 512)
        + 3 * conv(3, 512, 512)
    )
    assert vgg == 14_714_688  # the well-known VGG16 convolutional parameter count
    bottleneck = conv(3, 512, 512)
    hal_bn = 512
    # Decoder: conv 3x3 VALID (bias) + BN, then a 1x1 fuse 2C -> C with bias with the skip.
    decoder = 0
    for cin, cout in [(512, 512), (512, 512), (512, 256), (256, 128), (128, 64)]:
        decoder += conv(3, cin, cout) + conv(1, 2 * cout, cout)
        hal_bn += cout
    tail = conv(1, 64, 3) + conv(1, 2 * 3, 3)  # 1x1 to 3 (+ BN 3), then the fuse with Lin
    hal_bn += 3
    assert hal_bn == 1987
    hallucination_trainable = vgg + bottleneck + decoder + tail + 2 * hal_bn
    hallucination_frozen = 2 * hal_bn  # 3974
    assert hallucination_trainable == 24_569_118

    # Refinement: the U-Net with 9 input channels and a 128-wide bottom stage.
    refinement = (
        conv(7, 9, 16) + conv(7, 16, 16)
        + conv(5, 16, 32) + conv(5, 32, 32)
        + conv(3, 32, 64) + conv(3, 64, 64)
        + conv(3, 64, 128) + conv(3, 128, 128)
        + conv(3, 128, 128) + conv(3, 128, 128)  # bottom stage 128
        + conv(3, 128, 128) + conv(3, 256, 128)
        + conv(3, 128, 64) + conv(3, 128, 64)
        + conv(3, 64, 32) + conv(3, 64, 32)
        + conv(3, 32, 16) + conv(3, 32, 16)
        + conv(3, 16, 3)
    )
    assert refinement == 1_266_947

    expected = {
        "dequantization": (dequantization, 0),
        "linearization": (linearization_trainable, linearization_frozen),
        "hallucination": (hallucination_trainable, hallucination_frozen),
        "refinement": (refinement, 0),
    }
    for stage, (trainable, frozen) in expected.items():
        sub = getattr(paper, stage)
        assert (_count(sub.trainable_weights), _count(sub.non_trainable_weights)) == (trainable, frozen), stage
    assert paper.count_params() == sum(t + f for t, f in expected.values())


def test_linearization_input_has_102_channels(paper, lite):
    x = _ldr(1, 16, 16)
    assert paper.linearization.features(x).shape == (1, 16, 16, 102)
    assert lite.linearization.features(x).shape == (1, 4, 4, 102)  # feature_pool=2: 4x smaller
    assert paper.linearization.stem_conv.kernel.shape == (7, 7, 102, 64)


# ------------------------------------------------------------------------- presets


def test_unknown_preset_raises_naming_the_known_ones():
    for make in (lambda: get_preset("nope"), lambda: SingleHDR.from_preset("nope")):
        with pytest.raises(ValueError) as info:
            make()
        message = str(info.value)
        assert "nope" in message
        for name in PRESETS:
            assert name in message


def test_get_preset_returns_a_copy():
    config = get_preset("lite")
    config["hallucination"]["gamma"] = 0.5
    assert get_preset("lite")["hallucination"]["gamma"] == 0.88


# ---------------------------------------------------------------------- semantics


@pytest.mark.parametrize("size", ODD_SIZES)
def test_odd_sizes_keep_shape(preset_model, size):
    n, h, w = size
    x = _ldr(n, h, w, seed=h)
    out = preset_model(x)
    assert set(out) == OUTPUT_KEYS
    for key in OUTPUT_KEYS - {"inverse_crf"}:
        assert tuple(out[key].shape) == (n, h, w, 3), key
    assert tuple(out["inverse_crf"].shape) == (n, crf.NUM_SAMPLES)
    curve = np.asarray(out["inverse_crf"])
    assert np.all(curve[:, 0] == 0) and np.all(curve[:, -1] == 1) and np.all(np.diff(curve, axis=-1) >= 0)
    deq = np.asarray(out["dequantized"])
    assert deq.min() >= 0 and deq.max() <= 1
    linear = np.asarray(out["linear"])
    np.testing.assert_allclose(linear, np.asarray(hdr_ops.apply_curve(deq, curve)), atol=1e-6)
    hal = np.asarray(out["hallucinated"])
    assert np.all(hal >= linear)
    assert np.asarray(out["hdr"]).min() >= 0


def test_lite_tiny_images_keep_shape(lite):
    """Sizes far below the padding multiples (pads wider than the image)."""
    for n, h, w in [(1, 1, 1), (1, 3, 2), (2, 5, 17)]:
        out = lite(_ldr(n, h, w))
        assert tuple(out["hdr"].shape) == (n, h, w, 3)
        assert np.isfinite(np.asarray(out["hdr"])).all()


def _hallucination_input(h=37, w=45, seed=0):
    rng = np.random.default_rng(seed)
    linear = rng.uniform(0, 0.8, size=(2, h, w, 3)).astype(np.float32)
    rows, cols = slice(h // 4, h // 2), slice(w // 4, 3 * w // 4)
    block = linear[:, rows, cols, 0]
    linear[:, rows, cols, rng.integers(0, 3)] = rng.uniform(0.85, 1.0, size=block.shape)  # highlights
    linear[0, 0, 0] = [0.88, 0.88, 0.88]  # exactly gamma: mask 0
    linear[1, -1, -1] = [1.0, 1.0, 1.0]  # saturated: mask 1
    return linear


def test_lite_hallucination_never_below_input_and_unchanged_far_from_a_clip():
    """The context stage (tests/test_context_hallucination.py has its own checks) with lite's config."""
    config = {k: v for k, v in get_preset("lite")["hallucination"].items() if k != "architecture"}
    net = ContextHallucinationNet(**config)
    linear = _hallucination_input()
    net(linear)
    _perturb(net, seed=1)
    out = np.asarray(net(linear))
    assert out.shape == linear.shape and (out >= linear).all()
    dark = np.broadcast_to(linear.max(axis=-1, keepdims=True) < 0.5, linear.shape)
    np.testing.assert_array_equal(out[dark], linear[dark])


def test_hallucination_never_below_input_and_equal_where_mask_is_zero(paper):
    net = paper.hallucination
    linear = _hallucination_input()
    out = np.asarray(net(linear))
    assert out.shape == linear.shape
    # a = clip((max_c Lin - gamma) / (1 - gamma), 0, 1), gamma 0.88 in both presets (authors' code).
    gamma = 0.88
    mask = np.clip((linear.max(axis=-1, keepdims=True) - gamma) / (1 - gamma), 0, 1)
    np.testing.assert_allclose(np.asarray(net.mask(linear)), mask, atol=1e-6)
    assert np.all(out >= linear)
    zero = np.broadcast_to(mask == 0, linear.shape)
    assert zero.any() and (~zero).any()
    np.testing.assert_array_equal(out[zero], linear[zero])
    assert np.any(out[~zero] > linear[~zero])  # the net does add something in the highlights


def test_dequantization_range_and_refinement_relu():
    deq = DequantizationNet(**get_preset("lite")["dequantization"])
    x = _ldr(1, 20, 24)
    x[0, :4, :4] = [0.0, 1.0, 0.5]
    _perturb(deq)
    d = np.asarray(deq(x))
    assert d.shape == x.shape and d.min() >= 0 and d.max() <= 1
    ref = RefinementNet(**get_preset("lite")["refinement"])
    hal = _ldr(1, 20, 24, seed=2) * 3
    y = np.asarray(ref([hal, x, d]))
    assert y.shape == x.shape and y.min() >= 0


def test_dequantization_correction_is_bounded_and_sees_detail():
    config = get_preset("lite")["dequantization"]
    assert config["detail_input"] and config["residual_scale"] == 4 / 255
    deq = DequantizationNet(**config)
    x = _ldr(1, 20, 24)
    np.testing.assert_array_equal(np.asarray(deq(x)), x)  # zero head: starts as the identity
    _perturb(deq)
    assert deq.unet.stem[0].kernel.shape[2] == 6  # LDR and 255 (L - mean3x3(L))
    d = np.asarray(deq(x))
    assert np.abs(d - x).max() <= 4 / 255 + 1e-6 and np.abs(d - x).max() > 0


def test_given_inverse_crf_is_used(lite):
    x = _ldr(2, 24, 40, seed=3)
    given = np.stack([crf.GRID**2.2, crf.GRID**1.5]).astype(np.float32)
    estimated = lite(x)
    out = lite(x, inverse_crf=given)
    np.testing.assert_array_equal(np.asarray(out["inverse_crf"]), given)
    np.testing.assert_array_equal(np.asarray(out["dequantized"]), np.asarray(estimated["dequantized"]))
    expected_linear = np.asarray(hdr_ops.apply_curve(np.asarray(out["dequantized"]), given))
    np.testing.assert_allclose(np.asarray(out["linear"]), expected_linear, atol=1e-6)
    assert not np.allclose(np.asarray(out["linear"]), np.asarray(estimated["linear"]), atol=1e-3)
    np.testing.assert_array_equal(
        np.asarray(out["hallucinated"]), np.asarray(lite.hallucination(np.asarray(out["linear"])))
    )


def test_fresh_refinement_is_the_identity():
    model = SingleHDR.from_preset("lite")
    out = model(_ldr(1, 16, 16))
    np.testing.assert_array_equal(np.asarray(out["hdr"]), np.asarray(out["hallucinated"]))


def test_refine_switch(lite):
    x = _ldr(1, 16, 16)
    head = lite.refinement.unet.head
    head.kernel.assign(np.random.default_rng(0).normal(0, 0.05, head.kernel.shape).astype("float32"))
    refined = lite(x)
    assert not np.array_equal(np.asarray(refined["hdr"]), np.asarray(refined["hallucinated"]))
    lite.refine = False
    try:
        out = lite(x)
    finally:
        lite.refine = True
    np.testing.assert_array_equal(np.asarray(out["hdr"]), np.asarray(out["hallucinated"]))
    np.testing.assert_array_equal(np.asarray(out["hallucinated"]), np.asarray(refined["hallucinated"]))


# ----------------------------------------------------------------- configs, files


def _lite_models():
    config = get_preset("lite")
    unet = dict(config["dequantization"]["unet"])
    return {
        "UNet": (lambda: UNet(**unet), lambda: _ldr(1, 16, 32)),
        "Bottleneck": (lambda: Bottleneck(8, 32, stride=2, project=True), lambda: _ldr(1, 9, 11)),
        "DequantizationNet": (lambda: DequantizationNet(**config["dequantization"]), lambda: _ldr(1, 21, 19)),
        "LinearizationNet": (lambda: LinearizationNet(**config["linearization"]), lambda: _ldr(2, 21, 19)),
        "ContextHallucinationNet": (
            lambda: ContextHallucinationNet(**{k: v for k, v in config["hallucination"].items() if k != "architecture"}),
            lambda: _hallucination_input(21, 19),
        ),
        "RefinementNet": (
            lambda: RefinementNet(**config["refinement"]),
            lambda: [_ldr(1, 21, 19, seed=s) for s in range(3)],
        ),
        "SingleHDR": (lambda: SingleHDR(**config), lambda: _ldr(2, 21, 19)),
        "SingleHDR(no refinement)": (
            lambda: SingleHDR(**{k: v for k, v in config.items() if k != "refinement"}),
            lambda: _ldr(1, 21, 19),
        ),
    }


LITE_MODELS = _lite_models()


@pytest.mark.parametrize("name", list(LITE_MODELS))
def test_config_round_trip(name):
    make, _ = LITE_MODELS[name]
    model = make()
    config = model.get_config()
    clone = type(model).from_config(config)
    assert type(clone) is type(model)
    assert clone.get_config() == config


def test_paper_config_round_trip(paper):
    config = paper.get_config()
    assert SingleHDR.from_config(config).get_config() == config
    for stage in ("dequantization", "linearization", "hallucination", "refinement"):
        assert config[stage] == PRESETS["paper"][stage]


def _round_trip(model, inputs, path):
    before = model(inputs)
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    _assert_outputs_equal(before, loaded(inputs))
    return loaded


@pytest.mark.parametrize("name", [n for n in LITE_MODELS if n not in ("UNet", "Bottleneck")])
def test_keras_file_round_trip_lite(name, tmp_path):
    make, inputs = LITE_MODELS[name]
    model = make()
    x = inputs()
    model(x)
    _perturb(model, seed=2)
    loaded = _round_trip(model, x, tmp_path / "model.keras")
    assert loaded.get_config() == model.get_config()
    if name == "SingleHDR(no refinement)":
        assert loaded.refinement is None and loaded.get_config()["refinement"] is None
        out = loaded(x)
        np.testing.assert_array_equal(np.asarray(out["hdr"]), np.asarray(out["hallucinated"]))
    if name.startswith("SingleHDR"):
        other = _ldr(1, 13, 30, seed=9)  # another size after loading
        _assert_outputs_equal(model(other), loaded(other))


@pytest.mark.parametrize("stage", ["dequantization", "linearization", "refinement"])
def test_keras_file_round_trip_paper_stages(stage, paper, tmp_path):
    """The small paper stages (1-2M parameters each) on their own; the 25M-parameter
    Hallucination-Net is covered by the lite round trips, which use the same code."""
    cls = {"dequantization": DequantizationNet, "linearization": LinearizationNet, "refinement": RefinementNet}[stage]
    model = cls(**get_preset("paper")[stage])
    x = [_ldr(1, 20, 24, seed=s) for s in range(3)] if stage == "refinement" else _ldr(1, 20, 24)
    model(x)
    _perturb(model, seed=3)
    _round_trip(model, x, tmp_path / f"{stage}.keras")


def test_traced_model_equals_eager_with_the_shipped_weights():
    """The CPU graph optimiser rewrites traced models (fused convolutions); the result must not change.

    TensorFlow 2.21 fuses Conv2D + BiasAdd + Add + LeakyReLU into one op that loses the slope: a
    U-Net computed that way moved the dequantized output by 5e-3 (docs/design.md#stages).
    """
    import tensorflow as tf

    from hdr_keras import pretrained

    model = pretrained.build_model("lite", pretrained.resolve_weights("lite", None))
    x = np.round(_ldr(1, 72, 104, seed=5) * 255) / 255
    traced = tf.function(lambda ldr: model(ldr, training=False))(x)
    eager = model(x, training=False)
    for key in ("dequantized", "inverse_crf", "linear", "hdr"):
        np.testing.assert_allclose(np.asarray(traced[key]), np.asarray(eager[key]), atol=1e-4, rtol=1e-4, err_msg=key)
