"""Tests for hdr_keras.camera against a NumPy reference of docs/design.md#image-formation and #training."""

import numpy as np
import pytest
import tensorflow as tf

from hdr_keras import camera, crf

N, H, W = 4, 12, 10


@pytest.fixture(scope="module")
def curves():
    """Forward / inverse curves: the 10 DoRF test curves plus a plain gamma pair."""
    forward, inverse = crf.test_curves()
    gamma_f = (crf.GRID ** (1 / 2.2)).astype(np.float32)
    gamma_g = (crf.GRID**2.2).astype(np.float32)
    return np.concatenate([forward, gamma_f[None]]), np.concatenate([inverse, gamma_g[None]])


@pytest.fixture(scope="module")
def model(curves):
    return camera.CameraModel(*curves)


def _hdr(n=N, h=H, w=W, seed=0):
    """Positive radiance over ~3 decades, mean about 0.5, so that exposures clip some pixels."""
    rng = np.random.default_rng(seed)
    return (0.5 * 10.0 ** rng.uniform(-2, 1, size=(n, h, w, 3)) / 3.0).astype(np.float32)


def _smooth_ldr(n=2, h=48, w=40):
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0.2, 1, w)[None, :, None]
    image = np.clip(y * x * np.array([1.0, 0.7, 0.4]) + 0.1 * np.sin(6 * x), 0, 1)
    return np.stack([image**p for p in range(1, n + 1)]).astype(np.float32)


def _numpy_loss_weight(ldr):
    """docs/design.md#training: 0 when more than half of the grey pixels are <= 6/255 or >= 249/255, else 1."""
    grey = ldr.mean(axis=-1)
    bad = (grey <= 6 / 255) | (grey >= 249 / 255)
    return (bad.mean(axis=(1, 2)) <= 0.5).astype(np.float32)


def _numpy_camera(hdr, exposure, shot_std, read_std, shot_noise, read_noise, forward):
    """The camera model in float64 NumPy: exposure, noise + relu, clip, np.interp curve at x * 1023, Q."""
    hdr = hdr.astype(np.float64)
    exposed = hdr * exposure[:, None, None, None]
    noisy = np.maximum(exposed + shot_std * exposed * shot_noise + read_std * read_noise, 0.0)
    clipped = np.minimum(noisy, 1.0)
    grid = np.arange(crf.NUM_SAMPLES)
    pre = np.stack([np.interp(np.clip(x, 0, 1) * 1023.0, grid, f) for x, f in zip(clipped, forward)])
    ldr = np.floor(255.0 * pre + 0.5) / 255.0
    return {"hdr": exposed, "clipped": clipped, "pre_quantization": pre, "ldr": ldr}


# ------------------------------------------------------------------ the primitives


def test_clip_and_quantize():
    x = np.array([0.0, 0.5, 1.0, 1.5, 30.0, 0.1 / 255, 0.49 / 255, 0.51 / 255, 254.6 / 255], np.float32)
    np.testing.assert_array_equal(camera.clip(x).numpy(), np.minimum(x, 1.0))
    q = camera.quantize(x[x <= 1]).numpy()
    np.testing.assert_allclose(q, np.floor(255 * x[x <= 1].astype(np.float64) + 0.5) / 255, atol=1e-7)
    assert np.allclose(q * 255, np.round(q * 255), atol=1e-4)


def test_add_noise_zero_std_is_identity():
    x = _hdr(seed=1)
    zeros = np.zeros((N, 1, 1, 3), np.float32)
    np.testing.assert_array_equal(camera.add_noise(x, zeros, zeros, tf.constant([1, 2])).numpy(), x)


def test_add_noise_matches_numpy_with_the_same_draws():
    x = _hdr(seed=2)
    rng = np.random.default_rng(3)
    shot = rng.uniform(0, 0.08 / 6, (N, 1, 1, 3)).astype(np.float32)
    read = rng.uniform(0, 0.005, (N, 1, 1, 3)).astype(np.float32)
    seed = tf.constant([7, 11], tf.int32)
    # The draws add_noise takes: the seed split in two, one normal field each.
    seeds = tf.random.experimental.stateless_split(seed, 2)
    n1 = tf.random.stateless_normal(x.shape, seeds[0]).numpy().astype(np.float64)
    n2 = tf.random.stateless_normal(x.shape, seeds[1]).numpy().astype(np.float64)
    expected = np.maximum(x + shot * x * n1 + read * n2, 0.0)
    got = camera.add_noise(x, shot, read, seed).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert got.min() >= 0


def test_add_noise_statistics():
    """Signal-dependent std: Var(noise) = (s x)^2 + c^2 per channel."""
    x = np.full((1, 200, 200, 3), 0.5, np.float32)
    shot = np.array([0.0, 0.02, 0.0], np.float32).reshape(1, 1, 1, 3)
    read = np.array([0.01, 0.0, 0.005], np.float32).reshape(1, 1, 1, 3)
    noise = camera.add_noise(x, shot, read, tf.constant([3, 4])).numpy() - x
    expected_std = np.sqrt((shot * 0.5) ** 2 + read**2).ravel()
    np.testing.assert_allclose(noise.std(axis=(0, 1, 2)), expected_std, rtol=0.03)
    np.testing.assert_allclose(noise.mean(axis=(0, 1, 2)), 0.0, atol=3e-4)


def test_jpeg_quality_100_is_close_and_quality_is_per_image():
    images = _smooth_ldr()
    q100 = camera.jpeg(images, tf.constant([100, 100])).numpy()
    assert q100.shape == images.shape and q100.dtype == np.float32
    assert np.abs(q100 - images).mean() < 2 / 255
    mixed = camera.jpeg(images, tf.constant([100, 5])).numpy()
    np.testing.assert_array_equal(mixed[0], q100[0])
    assert np.abs(mixed[1] - images[1]).mean() > np.abs(q100[1] - images[1]).mean()


def test_loss_weight_rule():
    mid = 128 / 255

    def image(dark=0, bright=0, total=16):
        grey = np.full(total, mid, np.float32)
        grey[:dark] = 3 / 255
        grey[dark : dark + bright] = 252 / 255
        return np.repeat(grey.reshape(4, 4, 1), 3, axis=-1)

    hint = np.full((4, 4, 3), mid, np.float32)
    hint[:3, :3] = [0.0, 0.0, 30 / 255]  # two dark channels, but the grey level 10/255 is not dark
    batch = np.stack(
        [
            image(),
            image(dark=8),  # exactly half: kept
            image(dark=9),  # more than half: dropped
            image(bright=9),
            image(dark=5, bright=4),  # dark and bright count together
            image(dark=4, bright=4),
            hint,
            np.full((4, 4, 3), 6 / 255 - 1e-4, np.float32),
            np.full((4, 4, 3), 249 / 255 + 1e-4, np.float32),
            np.full((4, 4, 3), 7 / 255, np.float32),
            np.full((4, 4, 3), 248 / 255, np.float32),
        ]
    )
    got = camera.loss_weight(batch).numpy()
    np.testing.assert_array_equal(got, [1, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1])
    random = np.random.default_rng(0).choice([2 / 255, 0.5, 252 / 255], size=(64, 5, 5, 3), p=[0.3, 0.4, 0.3])
    np.testing.assert_array_equal(camera.loss_weight(random.astype(np.float32)).numpy(), _numpy_loss_weight(random))


# ------------------------------------------------------------------ the camera model


def test_sample_ranges(model, curves):
    params = model.sample(512, tf.constant([5, 6]))
    stops = np.log2(params["exposure"].numpy().astype(np.float64))
    assert stops.min() >= -3 - 1e-5 and stops.max() <= 3 + 1e-5
    levels = (stops + 3) / 6 * 599  # 600 levels over [-3, 3]
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
    assert len(np.unique(np.round(levels))) > 200
    shot, read = params["shot_std"].numpy(), params["read_std"].numpy()
    assert shot.shape == read.shape == (512, 1, 1, 3)
    assert shot.min() >= 0 and shot.max() <= 0.08 / 6 and shot.max() > 0.9 * 0.08 / 6
    assert read.min() >= 0 and read.max() <= 0.005 and read.max() > 0.9 * 0.005
    quality, curve = params["quality"].numpy(), params["curve"].numpy()
    assert set(quality.tolist()) == set(range(70, 99))
    compressed = params["compressed"].numpy()
    assert 0.65 < compressed.mean() < 0.85  # jpeg_fraction 0.75
    assert set(curve.tolist()) == set(range(len(curves[0])))


def test_test_exposures_have_seven_levels(curves):
    test_model = camera.CameraModel(*curves, exposure_levels=7)
    stops = np.log2(test_model.sample(256, tf.constant([1, 1]))["exposure"].numpy())
    assert set(np.round(stops, 4).tolist()) == {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0}


def test_camera_matches_numpy_reference(model, curves):
    forward, inverse = curves
    hdr = _hdr(seed=4)
    seed = tf.constant([21, 42], tf.int32)
    out = model(hdr, seed, use_jpeg=False)
    # Reproduce the seeds as CameraModel.__call__ / render / add_noise split them.
    sample_seed, noise_seed = tf.random.experimental.stateless_split(seed, 2)
    params = model.sample(N, sample_seed)
    shot_seed, read_seed = tf.random.experimental.stateless_split(noise_seed, 2)
    n1 = tf.random.stateless_normal(hdr.shape, shot_seed).numpy().astype(np.float64)
    n2 = tf.random.stateless_normal(hdr.shape, read_seed).numpy().astype(np.float64)
    index = params["curve"].numpy()
    ref = _numpy_camera(
        hdr,
        params["exposure"].numpy().astype(np.float64),
        params["shot_std"].numpy().astype(np.float64),
        params["read_std"].numpy().astype(np.float64),
        n1,
        n2,
        forward[index].astype(np.float64),
    )
    for key in ("hdr", "clipped", "ldr", "pre_quantization", "inverse_crf", "exposure", "loss_weight"):
        assert key in out
    for key in ("hdr", "clipped", "pre_quantization", "ldr"):
        assert out[key].shape == hdr.shape and out[key].dtype == tf.float32
    np.testing.assert_allclose(out["exposure"].numpy(), params["exposure"].numpy())
    np.testing.assert_allclose(out["hdr"].numpy(), ref["hdr"], rtol=1e-6)
    np.testing.assert_allclose(out["clipped"].numpy(), ref["clipped"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["pre_quantization"].numpy(), ref["pre_quantization"], atol=1e-5)
    # Q applied to the model's own F(C): exact; against the float64 reference: a rare rounding flip.
    pre = out["pre_quantization"].numpy()
    np.testing.assert_allclose(out["ldr"].numpy(), np.floor(255 * pre.astype(np.float64) + 0.5) / 255, atol=1e-6)
    diff = np.abs(out["ldr"].numpy() - ref["ldr"])
    assert diff.max() <= 1 / 255 + 1e-6 and (diff > 1e-6).mean() < 1e-2
    np.testing.assert_array_equal(out["inverse_crf"].numpy(), inverse[index])
    np.testing.assert_array_equal(out["loss_weight"].numpy(), _numpy_loss_weight(out["ldr"].numpy()))
    # The draws do what they should: some pixels clip, C <= 1, LDR on the 8-bit grid.
    clipped = out["clipped"].numpy()
    assert clipped.max() == 1.0 and clipped.min() >= 0
    ldr = out["ldr"].numpy()
    assert ldr.min() >= 0 and ldr.max() <= 1
    np.testing.assert_allclose(ldr * 255, np.round(ldr * 255), atol=1e-4)


def test_loss_weight_drops_over_and_under_exposed_samples(curves):
    """A very dark and a very bright exposure of the same image are dropped; a medium one is kept."""
    dark = camera.CameraModel(*curves, exposure_stops=(-12.0, -12.0), exposure_levels=1)
    bright = camera.CameraModel(*curves, exposure_stops=(8.0, 8.0), exposure_levels=1)
    medium = camera.CameraModel(*curves, exposure_stops=(0.0, 0.0), exposure_levels=1)
    hdr = _hdr(n=2, seed=5)
    weights = [m(hdr, tf.constant([1, 2]), use_jpeg=False)["loss_weight"].numpy() for m in (dark, bright, medium)]
    np.testing.assert_array_equal(weights, [[0, 0], [0, 0], [1, 1]])


def test_deterministic_for_a_fixed_seed(model):
    hdr = _hdr(seed=6)
    a = model(hdr, tf.constant([3, 9]))
    b = model(hdr, tf.constant([3, 9]))
    c = model(hdr, tf.constant([3, 10]))
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    assert not np.array_equal(a["ldr"].numpy(), c["ldr"].numpy())
    # Same in a tf.function (graph mode) as eagerly.
    graph = tf.function(lambda x, s: model(x, s))(hdr, tf.constant([3, 9]))
    for key in a:  # graph-mode fusion may round the curve interpolation differently (~6e-8)
        np.testing.assert_allclose(a[key].numpy(), graph[key].numpy(), rtol=0, atol=1e-6)


def test_usable_inside_tf_data_map(model):
    hdrs = np.stack([_hdr(n=2, seed=s) for s in range(3)])  # 3 batches of 2
    seeds = np.array([[1, 2], [3, 4], [5, 6]], np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((hdrs, seeds)).map(
        lambda hdr, seed: model(hdr, seed), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    results = list(dataset)
    assert len(results) == 3
    for (hdr, seed), result in zip(zip(hdrs, seeds), results):
        eager = model(hdr, tf.constant(seed))
        assert result["ldr"].shape == (2, H, W, 3)
        for key in eager:  # tf.data traces a graph: its fusions may round as in test_deterministic_for_a_fixed_seed
            np.testing.assert_allclose(result[key].numpy(), eager[key].numpy(), rtol=0, atol=1e-6)


def test_jpeg_in_render_keeps_range(model):
    hdr = _hdr(seed=7)
    with_jpeg = model(hdr, tf.constant([8, 8]))
    without = model(hdr, tf.constant([8, 8]), use_jpeg=False)
    np.testing.assert_array_equal(with_jpeg["pre_quantization"].numpy(), without["pre_quantization"].numpy())
    ldr = with_jpeg["ldr"].numpy()
    assert ldr.min() >= 0 and ldr.max() <= 1
    np.testing.assert_allclose(ldr * 255, np.round(ldr * 255), atol=1e-3)


# ------------------------------------------------------------------ in-camera steps


def _strength(values):
    return tf.constant(values, tf.float32, [len(values), 1, 1, 1])


def test_local_tone_lifts_shadows_holds_highlights_and_is_off_at_zero():
    x = np.full((2, 96, 96, 3), 0.05, np.float32)
    x[:, :, 48:] = 2.0  # a dark half and a bright half
    np.testing.assert_allclose(camera.local_tone(tf.constant(x), _strength([0.0, 0.0])), x, rtol=1e-5)
    toned = camera.local_tone(tf.constant(x), _strength([0.5, 0.5])).numpy()
    assert (toned[:, :, :10] > 1.5 * x[:, :, :10]).all()  # far from the edge: lifted
    assert (toned[:, :, -10:] < x[:, :, -10:]).all()  # held down
    gain = toned / x  # within two stops, grey stays grey
    assert gain.min() >= 0.25 - 1e-6 and gain.max() <= 4.0 + 1e-5
    np.testing.assert_allclose(toned[..., 0], toned[..., 2], rtol=1e-6)


def test_display_finish_saturates_sharpens_and_is_off_at_zero():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.2, 0.8, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(camera.display_finish(tf.constant(x), _strength([0, 0]), _strength([0, 0])), x, atol=1e-6)
    grey = np.repeat(x[..., :1], 3, axis=-1)
    np.testing.assert_allclose(camera.display_finish(tf.constant(grey), _strength([0.5, 0.5]), _strength([0, 0])), grey, atol=1e-6)
    saturated = camera.display_finish(tf.constant(x), _strength([0.5, 0.5]), _strength([0, 0])).numpy()
    spread = lambda a: (a.max(-1) - a.min(-1)).mean()
    assert spread(saturated) > 1.2 * spread(x)
    sharp = camera.display_finish(tf.constant(x), _strength([0, 0]), _strength([1.0, 1.0])).numpy()
    detail = lambda a: np.abs(np.diff(a, axis=2)).mean()
    assert detail(sharp) > 1.3 * detail(x)
    assert sharp.min() >= 0.0 and sharp.max() <= 1.0


def test_in_camera_steps_leave_the_other_draws_unchanged(curves):
    plain = camera.CameraModel(*curves)
    steps = camera.CameraModel(*curves, local_tone=0.3, display_saturation=0.3, sharpening=1.0)
    assert not plain.in_camera and steps.in_camera
    hdr, seed = _hdr(seed=4), tf.constant([7, 8])
    a, b = plain(hdr, seed, use_jpeg=False), steps(hdr, seed, use_jpeg=False)
    for key in ("exposure", "inverse_crf"):
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    assert not np.allclose(a["pre_quantization"].numpy(), b["pre_quantization"].numpy(), atol=1e-3)
    graph = tf.function(lambda x, s: steps(x, s, use_jpeg=False))(hdr, seed)  # as in the training step
    np.testing.assert_allclose(graph["pre_quantization"].numpy(), b["pre_quantization"].numpy(), rtol=0, atol=1e-5)
    params = steps.sample(256, tf.constant([1, 2]))
    for name, top in (("local_tone", 0.3), ("display_saturation", 0.3), ("sharpening", 1.0)):
        values = params[name].numpy()
        assert values.shape == (256, 1, 1, 1) and values.min() >= 0.0 and values.max() <= top and values.max() > 0.8 * top
