"""The whole-image Hallucination stage (ContextHallucinationNet) and its tensor functions (hdr_keras.fill)."""

import keras
import numpy as np
import pytest

from hdr_keras import fill
from hdr_keras.models import ContextHallucinationNet

CONFIG = {
    "unet": {"stem_filters": 4, "stem_kernel": 3, "stage_filters": [4, 8], "stage_kernels": [3, 3], "head_initializer": "zeros"},
    "working_side": 64,
    "levels": 3,
    "gamma": 0.88,
}


def _scene(height=48, width=80, sky=(0.45, 0.6, 0.85)):
    """A bluish sky at 0.85 of the clip level, a clipped disk in it and a dark bar across the disk."""
    image = np.empty((1, height, width, 3), np.float32)
    image[:] = np.asarray(sky, np.float32)
    yy, xx = np.mgrid[:height, :width]
    disk = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (height / 4) ** 2
    image[0, disk] = 1.0
    image[0, height // 2 - 1 : height // 2 + 1, :] = 0.1
    return image, disk


def test_working_factor_and_area_downscale():
    assert fill.working_factor(100, 60, 64) == 2 and fill.working_factor(30, 20, 64) == 1
    x = np.arange(2 * 4 * 6, dtype=np.float32).reshape(1, 4, 6, 2)
    small = np.asarray(fill.area_downscale(x, 2))
    np.testing.assert_allclose(small, x.reshape(1, 2, 2, 3, 2, 2).mean(axis=(2, 4)), rtol=1e-6)
    odd = np.asarray(fill.area_downscale(np.ones((1, 5, 7, 3), np.float32), 2))
    assert odd.shape == (1, 3, 4, 3) and np.allclose(odd, 1.0)


def test_propagate_carries_trusted_values_into_the_rest():
    values = np.zeros((1, 16, 16, 2), np.float32)
    values[..., 0], values[..., 1] = 0.2, 0.7
    weights = np.ones((1, 16, 16, 1), np.float32)
    weights[0, 4:12, 4:12] = 0.0  # a hole of untrusted pixels
    values[0, 4:12, 4:12] = 5.0  # whose own values must not leak out
    filled, confidence = (np.asarray(t) for t in fill.propagate(values, weights, levels=3))
    np.testing.assert_allclose(filled[0, 8, 8], [0.2, 0.7], atol=1e-3)
    np.testing.assert_allclose(filled[0, 0, 0], [0.2, 0.7], atol=1e-3)
    assert confidence.min() >= 0 and confidence.max() <= 1 + 1e-6


def test_fill_is_never_darker_and_changes_nothing_far_from_a_clip():
    net = ContextHallucinationNet(**CONFIG)
    image, disk = _scene()
    out = np.asarray(net(image))
    assert out.shape == image.shape and np.isfinite(out).all()
    assert (out >= image - 1e-6).all()
    dark = np.full((1, 40, 30, 3), 0.4, np.float32)
    np.testing.assert_array_equal(np.asarray(net(dark)), dark)


def test_fill_takes_the_surroundings_colour_and_keeps_dark_detail():
    net = ContextHallucinationNet(**CONFIG)
    image, disk = _scene()
    out = np.asarray(net(image))[0]
    inside = out[disk & (np.abs(np.arange(48) - 24)[:, None] > 4)]
    # brighter than the clip level (the start gain is softplus(0) = log 2 deep inside the disk)
    assert inside.max(axis=-1).mean() > 1.2
    chroma = inside / inside.sum(axis=-1, keepdims=True)
    assert (chroma[:, 2] > chroma[:, 0] + 0.05).mean() > 0.95  # blue like the sky, not white
    bar = out[23:25]
    np.testing.assert_array_equal(bar[bar.max(axis=-1) < 0.2], image[0, 23:25][bar.max(axis=-1) < 0.2])


@pytest.mark.parametrize("size", [(37, 53), (130, 70), (200, 301)])
def test_any_size_keeps_shape(size):
    net = ContextHallucinationNet(**CONFIG)
    image = np.random.default_rng(0).uniform(0, 1.0, (1, *size, 3)).astype(np.float32)
    out = np.asarray(net(image))
    assert out.shape == image.shape and np.isfinite(out).all() and (out >= image - 1e-6).all()


def test_config_and_keras_file_round_trip(tmp_path):
    net = ContextHallucinationNet(**CONFIG)
    image, _ = _scene()
    net(image)
    rng = np.random.default_rng(1)
    for weight in net.weights:
        weight.assign(rng.normal(0, 0.1, weight.shape).astype("float32"))
    clone = ContextHallucinationNet.from_config(net.get_config())
    assert clone.get_config() == net.get_config()
    net.save(tmp_path / "hal.keras")
    loaded = keras.saving.load_model(tmp_path / "hal.keras")
    np.testing.assert_allclose(np.asarray(loaded(image)), np.asarray(net(image)), rtol=1e-5, atol=1e-6)
