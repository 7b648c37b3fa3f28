"""Training: data cache and pipeline, every task for a few steps, resume, SIGINT, TensorBoard, pairs."""

import glob
import os
import signal
import subprocess
import sys
import time
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

from hdr_keras import crf, data, io, metrics, pretrained
from hdr_keras.pretrained import build_model
from hdr_keras.training import loop, run
from hdr_keras.training.tasks import STAGE_MODELS, TASKS, WHOLE_WEIGHTS, LossWeights

from conftest import hdr_scene

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.usefixtures("graph_optimizer_off")  # tracing-bound: conftest.py


def _flags(hdr_set, tmp_path, **overrides):
    values = dict(
        strategy="default",
        tpu="",
        mixed_precision="off",
        curve_sets=["dorf"],
        modern_repeat=1,
        data_dir=str(hdr_set / "train"),
        val_dir=str(hdr_set / "val"),
        cache_dir=str(tmp_path / "cache"),
        crf_dir=str(crf.DEFAULT_CRF_DIR),
        num_emor_curves=20,
        seed=0,
        vgg_weights=None,
        preset="lite",
        init_weights=None,
        stage_weights_dir=None,
        model_dir=str(tmp_path / "run"),
        steps=2,
        batch_size=2,
        crop=32,
        lr=1e-4,
        log_every=1,
        eval_every=2,
        checkpoint_every=1,
        keep_checkpoints=2,
        jpeg=True,
        sensor_noise=True,
        white_balance_stops=0.0,
        saturation_jitter=0.0,
        local_tone=0.0,
        display_saturation=0.0,
        sharpening=0.0,
        quiet=True,
    )
    values.update(overrides)
    return types.SimpleNamespace(**values)


def _event_tags(folder):
    tags = set()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.fixture(scope="module")
def stage_weights(tmp_path_factory, lite_model):
    """A folder with (random) weights of the three first stages, as stage runs leave them."""
    folder = tmp_path_factory.mktemp("stages")
    for name in ("dequantization", "linearization", "hallucination"):
        getattr(lite_model, name).save_weights(folder / f"{name}.weights.h5")
    return folder


@pytest.mark.parametrize("task", ["deq", "lin", "hal", "ref", "joint"])
def test_each_task_writes_checkpoint_events_and_weights(task, hdr_set, stage_weights, tmp_path):
    flags = _flags(hdr_set, tmp_path, stage_weights_dir=str(stage_weights) if task in ("ref", "joint") else None)
    weights = run.run(task, flags)
    run_dir = tmp_path / "run"
    assert weights == run_dir / TASKS[task].weights_name and weights.is_file()
    whole = build_model("lite", run_dir / WHOLE_WEIGHTS)  # what predict/evaluate --weights load
    if task != "joint":
        stage = getattr(build_model("lite"), STAGE_MODELS[task])
        stage.load_weights(weights)
        for a, b in zip(getattr(whole, STAGE_MODELS[task]).get_weights(), stage.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("-2")
    assert "loss/loss" in _event_tags(run_dir / "train")
    val_tags = _event_tags(run_dir / "val")
    assert {"loss/loss", "psnr_tonemapped", "input", "prediction", "target"} <= val_tags
    if task in ("lin", "joint"):
        assert {"crf_rmse", "inverse_crf"} <= val_tags


def test_ref_needs_the_stage_weights(hdr_set, tmp_path):
    with pytest.raises(FileNotFoundError, match="dequantization stage are needed"):
        run.run("ref", _flags(hdr_set, tmp_path, stage_weights_dir=str(tmp_path)))


def test_a_stage_file_of_another_stage_is_refused(hdr_set, stage_weights, tmp_path):
    folder = tmp_path / "stages"
    folder.mkdir()
    (folder / "dequantization.weights.h5").write_bytes((stage_weights / "hallucination.weights.h5").read_bytes())
    with pytest.raises(pretrained.WeightsError, match="holds the hallucination stage alone of preset 'lite', expected the dequantization"):
        run.run("ref", _flags(hdr_set, tmp_path, stage_weights_dir=str(folder)))


def test_ref_starts_from_a_whole_chain_file_on_the_command_line(hdr_set, tmp_path):
    """``train_stage.py --stage=ref --init_weights=<whole chain>``: no stage folder needed, no C++ log noise."""
    model_dir = tmp_path / "ref"
    command = [
        sys.executable, "train_stage.py", "--stage=ref", f"--init_weights={pretrained.shipped_weights('lite')}",
        f"--model_dir={model_dir}", "--steps=1", "--crop=32", "--batch_size=1", "--quiet", "--num_emor_curves=0",
        f"--data_dir={hdr_set / 'train'}", f"--val_dir={hdr_set / 'val'}", f"--cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (model_dir / "refinement.weights.h5").is_file() and (model_dir / WHOLE_WEIGHTS).is_file()
    for noise in ("oneDNN", "cpu_feature_guard", "remapper", "absl::InitializeLog"):
        assert noise not in result.stdout + result.stderr


def test_restart_continues_from_the_last_checkpoint(hdr_set, tmp_path):
    run.run("lin", _flags(hdr_set, tmp_path, steps=2))
    run.run("lin", _flags(hdr_set, tmp_path, steps=4))
    checkpoint = tf.train.load_checkpoint(str(tmp_path / "run" / "checkpoints"))
    iterations = [k for k in checkpoint.get_variable_to_shape_map() if "iteration" in k]
    assert iterations and int(checkpoint.get_tensor(iterations[0])) == 4
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("-4")


def test_checkpoint_holds_every_model_weight(hdr_set, tmp_path):
    """A checkpoint restores the trained stage into a fresh model without the optimizer."""
    weights = run.run("deq", _flags(hdr_set, tmp_path, steps=1))
    restored, saved = build_model("lite"), build_model("lite")
    checkpoint = loop.model_checkpoint(restored)
    checkpoint.restore(tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))).expect_partial()
    saved.dequantization.load_weights(weights)
    for a, b in zip(restored.dequantization.weights, saved.dequantization.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_sigint_saves_and_the_same_command_resumes(hdr_set, tmp_path):
    model_dir = tmp_path / "cli"
    command = [
        sys.executable, "train_stage.py", "--stage=lin", f"--model_dir={model_dir}", "--steps=100000",
        "--crop=32", "--batch_size=2", "--checkpoint_every=100000", "--eval_every=100000", "--quiet",
        f"--data_dir={hdr_set / 'train'}", f"--val_dir={hdr_set / 'val'}", f"--cache_dir={tmp_path / 'cache'}",
        "--num_emor_curves=10",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (model_dir / "train").is_dir():
        time.sleep(1)
    time.sleep(8)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "checkpoint saved" in stderr
    step = int(tf.train.latest_checkpoint(str(model_dir / "checkpoints")).rsplit("-", 1)[1])
    assert step > 0
    resumed = subprocess.run(command[:4] + [f"--steps={step + 2}"] + command[5:], cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {model_dir / 'checkpoints' / f'ckpt-{step}'}" in resumed.stderr
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith(f"-{step + 2}")


def test_loss_falls_on_a_fixed_batch():
    model = build_model("lite")
    head = model.dequantization.unet.head.kernel  # moved off the identity start, so there is a lot to learn
    head.assign(tf.random.stateless_normal(head.shape, [7, 8], stddev=0.5))
    task = TASKS["deq"](model, LossWeights())
    forward, inverse = crf.test_curves()
    camera = loop.camera_lib.CameraModel(forward, inverse)
    rng = np.random.default_rng(1)
    hdr = tf.constant(np.stack([hdr_scene(rng, 64)[:, :64] for _ in range(4)]))
    batch = camera(hdr, tf.constant([3, 4]), use_jpeg=False)
    optimizer = keras.optimizers.Adam(1e-3)
    variables = task.trained.trainable_variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = task(batch, training=True)[0]["loss"]
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    losses = [float(step()) for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_dequantization_gradients_clear_adams_epsilon():
    """Near the identity the deq L2 is ~1e-6 in [0, 1] units, and Adam's epsilon would swamp its gradients."""
    model = build_model("lite")  # the lite head starts at zero: the net starts as the identity
    head = model.dequantization.unet.head
    task = TASKS["deq"](model, LossWeights())
    camera = loop.camera_lib.CameraModel(*crf.test_curves(), max_shot_std=0.0, max_read_std=0.0)
    hdr = tf.constant(np.stack([hdr_scene(np.random.default_rng(i), 64)[:, :64] for i in range(2)]))
    batch = camera(hdr, tf.constant([5, 6]), use_jpeg=False)
    with tf.GradientTape() as tape:
        losses = task(batch, training=True)[0]
    np.testing.assert_allclose(float(losses["loss"]), 255.0**2 * float(losses["deq_l2"]), rtol=1e-5)
    assert float(losses["deq_l2"]) < 1e-5
    gradient = tape.gradient(losses["loss"], head.kernel)
    assert float(tf.sqrt(tf.reduce_mean(tf.square(gradient)))) > 10 * keras.optimizers.Adam().epsilon


def test_validation_batch_follows_the_noise_flag():
    crops = np.stack([hdr_scene(np.random.default_rng(i), 64)[:, :64] for i in range(2)]).astype(np.float16)
    curves = crf.test_curves()
    for noise in (True, False):
        config = loop.LoopConfig(model_dir="unused", crop=32, jpeg=False, sensor_noise=noise)
        batch = loop.validation_batch(crops, curves, config)
        noiseless = np.minimum(batch["hdr"].numpy(), 1.0)
        assert np.array_equal(batch["clipped"].numpy(), noiseless) != noise


def test_unusable_files_are_skipped_with_one_warning_each(tmp_path):
    good = np.full((40, 56, 3), 0.5, np.float32)
    io.write_exr(tmp_path / "good.exr", good)
    io.write_exr(tmp_path / "nan.exr", np.where(good > 0, np.nan, good), half=False)
    io.write_exr(tmp_path / "zero.exr", np.zeros_like(good))
    io.write_exr(tmp_path / "negative.exr", -good)
    (tmp_path / "empty.hdr").write_bytes(b"")
    (tmp_path / "corrupt.exr").write_bytes(b"\x76\x2f\x31\x01garbage")
    warnings = []
    crops = data.load_crops(tmp_path, tmp_path / "cache", crop_size=32, log=warnings.append)
    assert crops.shape == (2, 32, 32, 3) and np.isfinite(crops.astype(np.float32)).all()
    assert len(warnings) == 5
    for name in ("nan.exr", "zero.exr", "negative.exr", "empty.hdr", "corrupt.exr"):
        assert sum(name in w for w in warnings) == 1


def test_two_workers_building_one_crop_cache_at_once_both_get_it(tmp_path, monkeypatch):
    """Multi-worker training: every worker builds the same cache file; one's write must not pull the
    other's temporary file away (each writes its own, the renames publish the same crops)."""
    io.write_exr(tmp_path / "good.exr", np.full((40, 56, 3), 0.5, np.float32))
    real_save, other = np.save, []

    def save_while_another_worker_saves(path, array):
        real_save(path, array)
        if not other:
            other.append(None)
            monkeypatch.setattr(os, "getpid", lambda: 4194302)
            other[0] = data.load_crops(tmp_path, tmp_path / "cache", crop_size=32)

    monkeypatch.setattr(np, "save", save_while_another_worker_saves)
    crops = data.load_crops(tmp_path, tmp_path / "cache", crop_size=32)
    np.testing.assert_array_equal(crops, other[0])
    assert [p.suffixes for p in (tmp_path / "cache").iterdir()] == [[".npy"]]  # no temporary file left


def test_no_usable_file_is_a_clear_error(tmp_path):
    (tmp_path / "empty.hdr").write_bytes(b"")
    with pytest.raises(ValueError, match="no usable HDR"):
        data.load_crops(tmp_path, tmp_path / "cache", crop_size=32, log=lambda message: None)


def test_crops_are_normalised_and_panoramas_lose_their_poles():
    rng = np.random.default_rng(0)
    panorama = rng.uniform(0.1, 2.0, (64, 128, 3)).astype(np.float32)
    panorama[:8] = 1000.0
    crops = data.crops_from_image(panorama, crop_size=32)
    assert crops.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(crops.mean(axis=(1, 2, 3)), 0.5, rtol=1e-5)
    assert crops.max() < 100


def test_augmentation_geometry_is_a_resampled_view_or_a_rotation_flip():
    rng = np.random.default_rng(0)
    crops = rng.uniform(0, 2, (6, 32, 32, 3)).astype(np.float32)
    seeds = np.arange(12, dtype=np.int32).reshape(6, 2)
    same = np.asarray(data.augment_batch(crops, seeds, 32, scale_range=(1.0, 1.0)))
    found = set()
    for crop, view in zip(crops, same):  # scale 1, view = crop size: exactly one of the 8 rotations / flips
        options = [np.rot90(crop, r) for r in range(4)] + [np.rot90(crop[:, ::-1], r) for r in range(4)]
        errors = [np.abs(view - o).max() for o in options]
        assert min(errors) < 1e-6
        found.add(int(np.argmin(errors)))
    assert len(found) > 2
    flat = np.full((2, 48, 48, 3), 0.7, np.float32)  # resampling keeps a constant image constant
    np.testing.assert_allclose(data.augment_batch(flat, seeds[:2], 32), 0.7, rtol=1e-5)


def test_photometric_augmentation_ranges():
    grey = np.full((8, 32, 32, 3), 0.5, np.float32)
    seeds = np.arange(16, dtype=np.int32).reshape(8, 2)
    balanced = np.asarray(data.augment_batch(grey, seeds, 32, white_balance_stops=0.3))
    ratios = balanced[:, 0, 0] / balanced[:, 0, 0, 1:2]  # [N, 3]: R/G, 1, B/G
    np.testing.assert_allclose(balanced[..., 1], 0.5, rtol=1e-5)  # G is the reference
    assert (np.abs(np.log2(ratios[:, [0, 2]])) <= 0.3 + 1e-5).all() and np.ptp(ratios[:, 0]) > 0.05
    np.testing.assert_allclose(data.augment_batch(grey, seeds, 32, saturation_jitter=0.4), 0.5, rtol=1e-5)  # grey stays grey
    colour = np.broadcast_to(np.array([0.8, 0.4, 0.2], np.float32), (8, 32, 32, 3))
    saturated = np.asarray(data.augment_batch(colour, seeds, 32, saturation_jitter=0.4))[:, 0, 0]
    luma = colour[0, 0, 0] @ np.array(metrics.REC709_LUMA, np.float32)
    factor = (saturated - luma) / (colour[0, 0, 0] - luma)  # the same blend factor on every channel
    np.testing.assert_allclose(factor, factor[:, :1].repeat(3, axis=1), rtol=1e-4)
    assert (factor >= 0.6 - 1e-4).all() and (factor <= 1.4 + 1e-4).all() and np.ptp(factor[:, 0]) > 0.1
    # Both off by default: only the resampling remains, whose rows sum to 1 in float32, so a constant
    # image stays constant within a few ulps (1 ulp apart on AVX2 vs AVX-512 matmul kernels).
    np.testing.assert_allclose(data.augment_batch(colour, seeds, 32), colour, rtol=1e-6)


def test_dataset_is_deterministic_and_resumes_mid_sequence():
    crops = np.random.default_rng(0).uniform(0, 2, (3, 48, 48, 3)).astype(np.float16)

    def views(dataset, count):
        return [data.augment_batch(c, s, 32).numpy() for c, s in dataset.take(count)]

    first = views(data.training_dataset(crops, 2, seed=5), 3)
    again = views(data.training_dataset(crops, 2, seed=5), 3)
    resumed = views(data.training_dataset(crops, 2, seed=5, start=4), 1)[0]
    other = views(data.training_dataset(crops, 2, seed=6), 1)[0]
    assert first[0].shape == (2, 32, 32, 3) and (first[0] >= 0).all()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(resumed, first[2])
    assert not np.array_equal(other, first[0])


def test_finetune_on_real_pairs(hdr_set, stage_weights, tmp_path):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    rng = np.random.default_rng(2)
    for i in range(2):
        hdr = hdr_scene(rng)
        io.write_exr(pairs / f"p{i}.exr", hdr)
        io.write_png(pairs / f"p{i}.png", (np.clip(hdr, 0, 1) ** (1 / 2.2) * 255).round().astype(np.uint8))
    (pairs / "lonely.png").write_bytes((pairs / "p0.png").read_bytes())
    flags = _flags(hdr_set, tmp_path, stage_weights_dir=str(stage_weights))
    weights = run.run("joint", flags, pairs_dir=str(pairs))
    assert weights.is_file()


@pytest.mark.parametrize("mixed_precision", ["float16", "bfloat16"])
def test_mirrored_strategy_with_mixed_precision(hdr_set, stage_weights, tmp_path, mixed_precision):
    flags = _flags(
        hdr_set, tmp_path, strategy="mirrored", mixed_precision=mixed_precision, stage_weights_dir=str(stage_weights)
    )
    try:
        weights = run.run("joint", flags)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert weights.is_file()
    assert "loss/crf_l2" in _event_tags(tmp_path / "run" / "train")
