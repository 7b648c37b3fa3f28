"""Tests for hdr_keras.ops and hdr_keras.layers against NumPy and TensorFlow references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hdr_keras import crf
from hdr_keras import ops as hdr_ops
from hdr_keras.layers import (
    ApplyCurve,
    LegacyBilinearUpsample2x,
    BatchNormalization,
    MonotonicCRF,
    SkipFuse,
    SobelEdges,
    SoftHistogram,
)

SIZES = [(1, 1), (1, 5), (2, 3), (7, 4), (9, 13)]


def _rand(*shape, seed=0, low=0.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


def _np_curve(images, curves):
    """docs/design.md#curves in NumPy: linear interpolation at x * 1023, x clamped to [0, 1]."""
    grid = np.arange(crf.NUM_SAMPLES, dtype=np.float64)
    return np.stack(
        [np.interp(np.clip(img.astype(np.float64), 0, 1) * 1023, grid, c.astype(np.float64)) for img, c in zip(images, curves)]
    )


# ------------------------------------------------------------------------- curves


def test_apply_curve_matches_numpy_interp():
    rng = np.random.default_rng(1)
    images = rng.uniform(-0.2, 1.2, size=(3, 9, 11, 3)).astype(np.float32)  # out of range: clamped
    images[0, 0, :3, 0] = [0.0, 1.0, 0.5]  # the ends and a grid midpoint exactly
    images[1, 0, :2, 1] = [1023 / 1023, 1022 / 1023]
    curves = crf.monotone_projection(rng.normal(size=(3, crf.NUM_SAMPLES)).cumsum(-1)).astype(np.float32)
    curves[2] = np.sqrt(crf.GRID)
    got = np.asarray(hdr_ops.apply_curve(images, curves))
    assert got.shape == images.shape
    np.testing.assert_allclose(got, _np_curve(images, curves), atol=2e-6, rtol=0)
    # One curve per image: the layer gives the same, and swapping curves swaps results.
    layer = np.asarray(ApplyCurve()([images, curves]))
    np.testing.assert_array_equal(layer, got)
    swapped = np.asarray(hdr_ops.apply_curve(images, curves[::-1]))
    np.testing.assert_allclose(swapped, _np_curve(images, curves[::-1]), atol=2e-6, rtol=0)
    # A batch of one (no per-image offsets into the table) gives the same.
    np.testing.assert_array_equal(np.asarray(hdr_ops.apply_curve(images[1:2], curves[1:2])), got[1:2])


def test_apply_curve_identity_and_dynamic_shape():
    images = _rand(2, 5, 7, 3, seed=2)
    identity = np.tile(crf.GRID.astype(np.float32), (2, 1))
    np.testing.assert_allclose(np.asarray(hdr_ops.apply_curve(images, identity)), images, atol=1e-6)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None, 1024])])
    def fn(x, c):
        return hdr_ops.apply_curve(x, c)

    np.testing.assert_allclose(fn(images, identity).numpy(), images, atol=1e-6)


def test_monotone_curve_matches_numpy_projection():
    rng = np.random.default_rng(4)
    curves = np.concatenate(
        [rng.normal(size=(4, crf.NUM_SAMPLES)).cumsum(-1) * 0.01, np.tile(crf.GRID**0.45, (1, 1)), -np.tile(crf.GRID, (1, 1))]
    ).astype(np.float32)
    got = np.asarray(hdr_ops.monotone_curve(curves))
    np.testing.assert_allclose(got, crf.monotone_projection(curves), atol=2e-5, rtol=0)
    assert np.all(got[:, 0] == 0) and np.all(got[:, -1] == 1) and np.all(np.diff(got, axis=-1) >= 0)


# --------------------------------------------------------------------- resampling


@pytest.mark.parametrize("size", SIZES)
def test_legacy_bilinear_matches_tf1_resize(size):
    h, w = size
    images = _rand(2, h, w, 3, seed=h * 31 + w)
    expected = tf.compat.v1.image.resize_bilinear(images, (2 * h, 2 * w), align_corners=False, half_pixel_centers=False)
    got = LegacyBilinearUpsample2x()(images)
    assert tuple(got.shape) == (2, 2 * h, 2 * w, 3)
    np.testing.assert_allclose(np.asarray(got), expected.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(np.asarray(hdr_ops.upsample2x_legacy_bilinear(images)), np.asarray(got))
    # bfloat16 takes the convolution form (few channels): the same up to bfloat16 rounding.
    rounded = tf.cast(tf.cast(images, tf.bfloat16), tf.float32)
    expected = tf.compat.v1.image.resize_bilinear(rounded, (2 * h, 2 * w), align_corners=False, half_pixel_centers=False)
    half = hdr_ops.upsample2x_legacy_bilinear(tf.cast(images, tf.bfloat16))
    assert half.dtype == tf.bfloat16 and tuple(half.shape) == (2, 2 * h, 2 * w, 3)
    np.testing.assert_allclose(tf.cast(half, tf.float32).numpy(), expected.numpy(), atol=4e-3, rtol=0)


@pytest.mark.parametrize("size", SIZES)
def test_upsample_conv_phases_equal_nearest_upsampling_then_reflect_padded_conv(size):
    """The Hallucination-Net decoder's conv at the input resolution is the authors' upsample-pad-conv."""
    h, w = size
    images = _rand(2, h, w, 5, seed=h * 17 + w, low=-1)
    kernel, bias = _rand(3, 3, 5, 4, seed=3, low=-1), _rand(4, seed=4, low=-1)
    upsampled = tf.image.resize(images, (2 * h, 2 * w), method="nearest")
    expected = tf.nn.conv2d(tf.pad(upsampled, [[0, 0], [1, 1], [1, 1], [0, 0]], "REFLECT"), kernel, 1, "VALID") + bias
    phases = hdr_ops.upsample2x_nearest_conv3x3(images, kernel, bias)
    assert tuple(phases.shape) == (2, h, w, 16)
    got = hdr_ops.phases_to_space(phases)
    np.testing.assert_allclose(np.asarray(got), expected.numpy(), atol=1e-5, rtol=0)


def test_concat_conv_equals_conv_of_concatenation():
    a, b = _rand(2, 6, 7, 3, seed=1, low=-1), _rand(2, 6, 7, 5, seed=2, low=-1)
    kernel, bias = _rand(3, 3, 8, 4, seed=3, low=-1), _rand(4, seed=4)
    expected = tf.nn.conv2d(np.concatenate([a, b], -1), kernel, 1, "SAME") + bias
    got = hdr_ops.concat_conv([a, b], kernel, bias, padding="same")
    np.testing.assert_allclose(np.asarray(got), expected.numpy(), atol=1e-5, rtol=0)


def test_upsampling_compute_output_shape():
    assert LegacyBilinearUpsample2x().compute_output_shape((None, 5, None, 3)) == (None, 10, None, 3)


# ------------------------------------------------------------------------- padding


@pytest.mark.parametrize(
    "size,pads",
    [
        ((5, 7), (1, 1, 1, 1)),
        ((5, 7), (0, 11, 0, 9)),  # wider than the image: folds again
        ((3, 2), (7, 5, 6, 9)),
        ((1, 4), (2, 3, 0, 6)),  # a size-1 axis repeats its element
        ((6, 6), (0, 0, 0, 0)),
    ],
)
def test_reflect_pad_matches_numpy(size, pads):
    top, bottom, left, right = pads
    images = _rand(2, *size, 3, seed=sum(pads))
    expected = np.pad(images, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="reflect")
    got = np.asarray(hdr_ops.reflect_pad(images, top, bottom, left, right))
    np.testing.assert_array_equal(got, expected)


def test_reflect_pad_matches_tf_pad_and_dynamic_amounts():
    images = _rand(1, 6, 9, 2, seed=3)
    expected = tf.pad(images, [[0, 0], [2, 3], [4, 1], [0, 0]], mode="REFLECT").numpy()

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 2]), tf.TensorSpec([4], tf.int32)])
    def fn(x, p):
        return hdr_ops.reflect_pad(x, p[0], p[1], p[2], p[3])

    np.testing.assert_array_equal(fn(images, tf.constant([2, 3, 4, 1])).numpy(), expected)


@pytest.mark.parametrize("multiple", [1, 4, 16, 32])
def test_pad_to_multiple_and_crop(multiple):
    images = _rand(2, 5, 11, 3, seed=multiple)
    padded, size = hdr_ops.pad_to_multiple(images, multiple)
    h, w = -(-5 // multiple) * multiple, -(-11 // multiple) * multiple
    assert tuple(padded.shape) == (2, h, w, 3)
    expected = np.pad(images, ((0, 0), (0, h - 5), (0, w - 11), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(np.asarray(padded), expected)
    np.testing.assert_array_equal(np.asarray(hdr_ops.crop_to(padded, size)), images)


# --------------------------------------------------------------------------- Sobel


@pytest.mark.parametrize("shape", [(2, 9, 11, 3), (1, 2, 2, 3), (1, 16, 5, 1)])
def test_sobel_layout_matches_tf_image_sobel_edges(shape):
    images = _rand(*shape, seed=shape[1])
    expected = tf.image.sobel_edges(tf.constant(images)).numpy()  # [N, H, W, C, 2]: dy then dx
    got = np.asarray(SobelEdges()(images))
    assert got.shape == shape[:3] + (2 * shape[3],)
    np.testing.assert_allclose(got, expected.reshape(got.shape), atol=1e-5, rtol=0)
    # Explicitly: channel 2c is the vertical response of colour c, 2c + 1 the horizontal one.
    np.testing.assert_allclose(got[..., 0::2], expected[..., 0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(got[..., 1::2], expected[..., 1], atol=1e-5, rtol=0)


def test_sobel_orientation():
    ramp_down = np.tile(np.arange(6, dtype=np.float32)[:, None], (1, 7))[None, :, :, None]  # grows with y
    edges = np.asarray(SobelEdges()(ramp_down))
    assert np.all(edges[0, 1:-1, :, 0] == pytest.approx(8.0)) and np.all(edges[0, :, :, 1] == 0)


# ----------------------------------------------------------------------- histogram


@pytest.mark.parametrize("bins", [(4, 8, 16), (1, 3), (5,)])
def test_soft_histogram_sums_to_one_per_scale(bins):
    images = _rand(2, 6, 7, 3, seed=len(bins))
    images[0, 0, :4, 0] = [0.0, 1.0, 0.25, 0.5]  # the ends and exact bin centres
    layer = SoftHistogram(bins)
    out = np.asarray(layer(images))
    channels = 3
    assert out.shape == (2, 6, 7, channels * sum(b + 1 for b in bins))
    assert layer.compute_output_shape((2, 6, 7, 3)) == out.shape
    offset = 0
    for b in bins:
        block = out[..., offset : offset + channels * (b + 1)].reshape(2, 6, 7, channels, b + 1)
        offset += channels * (b + 1)
        np.testing.assert_allclose(block.sum(-1), 1.0, atol=1e-5)  # per pixel, channel and scale
        centres = np.arange(b + 1) / b
        expected = np.maximum(1.0 - np.abs(images[..., None] - centres) * b, 0.0)  # docs/design.md#stages
        np.testing.assert_allclose(block, expected, atol=1e-5)
        assert (block > 0).sum(-1).max() <= 2  # triangular: at most two neighbouring bins


def test_default_features_are_93_histogram_channels():
    assert SoftHistogram().compute_output_shape((1, 4, 4, 3))[-1] == 93
    assert 3 + 6 + 93 == 102


# ----------------------------------------------------------------------- SkipFuse


def test_skip_fuse_starts_as_sum():
    x, skip = _rand(2, 5, 6, 8, seed=1, low=-1), _rand(2, 5, 6, 8, seed=2, low=-1)
    fuse = SkipFuse()
    np.testing.assert_allclose(np.asarray(fuse([x, skip])), x + skip, atol=1e-6)
    # 1x1 conv 2C -> C with bias: 2C * C + C weights, all trainable.
    assert sum(int(np.prod(w.shape)) for w in fuse.trainable_weights) == 16 * 8 + 8
    assert fuse.compute_output_shape([(2, 5, 6, 8), (2, 5, 6, 8)]) == (2, 5, 6, 8)


def test_skip_fuse_scale_applies_to_the_skip_only():
    x, skip = _rand(2, 5, 6, 4, seed=1, low=-1), _rand(2, 5, 6, 4, seed=2, low=-1)
    np.testing.assert_allclose(np.asarray(SkipFuse(skip_scale=0.25)([x, skip])), x + 0.25 * skip, atol=1e-6)


# ------------------------------------------------------------------ BatchNormalization


def _trained_norm(channels, seed=0):
    """A BatchNormalization with non-trivial statistics and parameters (negative gammas too)."""
    norm = BatchNormalization(epsilon=1e-3)
    norm.build((None, None, None, channels))
    rng = np.random.default_rng(seed)
    norm.set_weights([rng.uniform(-2, 2, channels), rng.uniform(-1, 1, channels), rng.uniform(-1, 1, channels),
                      rng.uniform(0.1, 2, channels)])  # fmt: skip
    return norm


def test_batch_norm_inference_matches_keras_and_keeps_weight_paths():
    norm = _trained_norm(6)
    reference = keras.layers.BatchNormalization(epsilon=1e-3)
    reference.build((None, None, None, 6))
    reference.set_weights(norm.get_weights())
    x = _rand(2, 5, 7, 6, seed=5, low=-3, high=3)
    np.testing.assert_allclose(np.asarray(norm(x)), np.asarray(reference(x)), atol=1e-5)
    # Training (on TensorFlow one fused op): same output and the same moving-average update.
    np.testing.assert_allclose(
        np.asarray(norm(x, training=True)), np.asarray(reference(x, training=True)), atol=1e-5
    )
    for ours, theirs in zip(norm.non_trainable_weights, reference.non_trainable_weights):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5, atol=1e-6)
    # The class name sets the weights-file path ("batch_normalization"), so files of keras' layer load.
    assert keras.src.utils.naming.to_snake_case(type(norm).__name__) == "batch_normalization"


def test_batch_norm_after_conv_folds_the_affine():
    conv = keras.layers.Conv2D(6, 3, padding="same")
    x = _rand(2, 8, 9, 4, seed=6, low=-1)
    conv(x)
    norm = _trained_norm(6, seed=1)
    np.testing.assert_allclose(np.asarray(norm.after_conv(conv, x)), np.asarray(norm(conv(x))), atol=1e-5)


def test_batch_norm_phases_match_the_space_image():
    norm = _trained_norm(3, seed=2)
    phases = _rand(2, 4, 5, 12, seed=7, low=-2, high=2)
    image = hdr_ops.phases_to_space(phases)
    got = hdr_ops.phases_to_space(norm.phases(phases, 4))
    np.testing.assert_allclose(np.asarray(got), np.asarray(norm(image)), atol=1e-5)
    trained = hdr_ops.phases_to_space(norm.phases(phases, 4, training=True))
    np.testing.assert_allclose(np.asarray(trained), np.asarray(_trained_norm(3, seed=2)(image, training=True)), atol=1e-5)


# -------------------------------------------------------------------------- configs


LAYERS = [
    lambda: ApplyCurve(name="curve"),
    lambda: MonotonicCRF(num_basis=7, name="crf7"),
    lambda: MonotonicCRF(),
    lambda: SobelEdges(),
    lambda: SkipFuse(name="fuse"),
    lambda: SoftHistogram(bins=(2, 5)),
    lambda: SoftHistogram(),
    lambda: LegacyBilinearUpsample2x(dtype="float32"),
    lambda: SkipFuse(skip_scale=1 / 255),
    lambda: BatchNormalization(epsilon=1e-5, name="norm"),
]


@pytest.mark.parametrize("make", LAYERS)
def test_layer_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == config
    # Registered: serialisation by name works too.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_monotonic_crf_rejects_bad_num_basis():
    with pytest.raises(ValueError, match="num_basis"):
        MonotonicCRF(num_basis=12)(np.zeros((1, 12), np.float32))
    curves = np.asarray(MonotonicCRF(num_basis=3)(np.zeros((2, 3), np.float32)))
    np.testing.assert_allclose(curves, np.tile(crf.monotone_projection(crf.inverse_basis_asset()[0]), (2, 1)), atol=2e-6)
