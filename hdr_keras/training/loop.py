"""The training loop shared by ``train_stage.py`` and ``finetune.py``.

Custom ``tf.distribute`` loop: HDR crops come from :mod:`hdr_keras.data`; the camera model runs
inside the compiled step, on the training device. Checkpoints (model, optimizer, step) are kept in
``model_dir/checkpoints`` (the last ``keep_checkpoints``); a run started again with the same
``model_dir`` continues from the newest one that restores (:mod:`hdr_keras.training.checkpoints`:
unreadable newer ones are set aside, never written over) with the same data sequence. TensorBoard logs go to
``model_dir/train`` and ``model_dir/val``. SIGINT/SIGTERM save a checkpoint before exiting (on a
single host). Under a multi-worker ``TF_CONFIG`` only the chief writes into ``model_dir``
(:mod:`hdr_keras.training.cluster`); ``model_dir`` may be any ``tf.io.gfile`` path (``gs://``).
"""

import dataclasses
import logging
import os
import pathlib
import signal
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from hdr_keras import camera as camera_lib
from hdr_keras import crf, data
from hdr_keras.training import checkpoints, cluster, curve_plot, files
from hdr_keras.training import losses as losses_lib
from hdr_keras.training.tasks import WHOLE_WEIGHTS


@dataclasses.dataclass
class LoopConfig:
    """Everything the loop needs besides the task."""

    model_dir: str
    steps: int = 1000
    batch_size: int = 8
    crop: int = 256
    lr: float = 1e-4
    seed: int = 0
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    jpeg: bool = True
    sensor_noise: bool = True
    quiet: bool = False


def make_strategy(name, tpu=""):
    """A ``tf.distribute`` strategy by flag value: default, mirrored, multi_worker or tpu.

    With a multi-task ``TF_CONFIG`` (:func:`cluster.tf_config`), ``default`` and ``mirrored`` become
    ``multi_worker`` (which also mirrors over each worker's local GPUs).
    """
    if name in ("default", "mirrored") and cluster.tf_config() is not None:
        logging.info("TF_CONFIG names a cluster: MultiWorkerMirroredStrategy")
        name = "multi_worker"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}: use default, mirrored, multi_worker or tpu")


class _Interrupted(Exception):
    pass


def _raise_interrupt(signum, frame):
    raise _Interrupted(signal.Signals(signum).name)


def _to_display(images):
    """HDR or LDR NHWC -> [0, 1] images for TensorBoard: :func:`losses.log_tonemap`, clipped."""
    return tf.clip_by_value(losses_lib.log_tonemap(tf.cast(images, tf.float32)), 0.0, 1.0)


def _camera(curves, noise, **kwargs):
    """A :class:`CameraModel` over ``curves`` (forward, inverse); ``noise=False``: no sensor noise."""
    if not noise:
        kwargs.update(max_shot_std=0.0, max_read_std=0.0)
    return camera_lib.CameraModel(*curves, **kwargs)


def synthetic_batches(curves, crop, jpeg=True, noise=True, white_balance_stops=0.0, saturation_jitter=0.0, in_camera=None):
    """``make_batch`` for HDR crops: augmentation, then random cameras over ``curves`` (forward, inverse).

    ``noise=False`` renders without sensor noise; ``white_balance_stops``, ``saturation_jitter``:
    photometric augmentation of the linear crops (:func:`hdr_keras.data.augment_batch`; 0: off);
    ``in_camera``: the in-camera steps' maxima (``local_tone``, ``display_saturation``,
    ``sharpening``; :class:`hdr_keras.camera.CameraModel`).
    """
    camera = _camera(curves, noise, **(in_camera or {}))

    def make_batch(element, seed):
        hdr = data.augment_batch(*element, crop, white_balance_stops=white_balance_stops, saturation_jitter=saturation_jitter)
        return camera(hdr, seed, use_jpeg=jpeg)

    return make_batch


def pair_batches(crop):
    """``make_batch`` for real pairs [N, S, S, 6] (LDR, HDR): augmented together, then split."""

    def make_batch(element, seed):
        del seed
        stacked = data.augment_batch(*element, crop)
        return {"ldr": stacked[..., :3], "hdr": stacked[..., 3:], "loss_weight": tf.ones(tf.shape(stacked)[:1])}

    return make_batch


def validation_batch(val_crops, val_curves, config):
    """A fixed synthetic batch from validation crops, rendered with the test curves (7 exposure levels).

    JPEG and sensor noise follow ``config``, as in training.
    """
    camera = _camera(val_curves, config.sensor_noise, exposure_levels=7)
    hdr = tf.constant(data.validation_batch(val_crops, config.crop))
    return camera(hdr, tf.constant([config.seed, 0]), use_jpeg=config.jpeg)


def make_train_step(task, strategy, optimizer, make_batch, seed):
    """A compiled step: next element of a distributed iterator -> batch on the device -> update.

    Returns the replica-averaged losses. The camera seed is ``(seed * 1000 + replica, step)``.
    """
    variables = task.trained.trainable_variables
    replicas = strategy.num_replicas_in_sync

    @tf.function
    def train_step(iterator):
        def step_fn(element):
            context = tf.distribute.get_replica_context()
            step_seed = tf.stack([seed * 1000 + context.replica_id_in_sync_group, tf.cast(optimizer.iterations, tf.int32)])
            batch = make_batch(element, step_seed)
            with tf.GradientTape() as tape:
                losses, _ = task(batch, training=True)
                scaled = optimizer.scale_loss(losses["loss"] / replicas)
            optimizer.apply(tape.gradient(scaled, variables), variables)
            return losses

        per_replica = strategy.run(step_fn, args=(next(iterator),))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

    return train_step


def model_checkpoint(model, **extra):
    """A ``tf.train.Checkpoint`` of every weight of ``model`` (plus ``extra`` trackables, e.g. the optimizer).

    Keras 3 layers kept in Python lists are not tracked under ``model``; the explicit list of
    weights puts every variable in the checkpoint. Restore a training checkpoint into a fresh
    model with ``model_checkpoint(model).restore(path).expect_partial()``.
    """
    return tf.train.Checkpoint(model=model, weights=list(model.weights), **extra)


def make_optimizer(task, strategy, lr, loss_scaling=False):
    """Adam (wrapped for loss scaling, which float16 needs), built for the task's trained variables."""
    with strategy.scope():
        optimizer = keras.optimizers.Adam(lr)
        if loss_scaling:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(task.trained.trainable_variables)
    return optimizer


def train(task, strategy, config, train_crops, make_batch, val_batch, loss_scaling=False):
    """Runs ``task`` to ``config.steps``; returns the path of the trained weights file.

    A stage run also writes the whole chain (its other stages as loaded) to
    ``model_dir/single_hdr.weights.h5``, ready for ``predict``/``evaluate --weights``.

    ``train_crops`` [M, S, S, C] feed :func:`hdr_keras.data.training_dataset`; ``make_batch(element,
    seed)`` turns a replica's share of it into the task's batch on the device (see
    :func:`synthetic_batches`, :func:`pair_batches`); ``val_batch`` is a fixed batch dict. The
    task must have been built inside ``strategy.scope()``. On a cluster every worker calls it; the
    returned path is the chief's.
    """
    model_dir = str(config.model_dir)
    with cluster.write_dir(strategy, model_dir) as out_dir:
        name = _train(task, strategy, config, out_dir, train_crops, make_batch, val_batch, loss_scaling)
    return pathlib.Path(model_dir, name) if files.is_local(model_dir) else os.path.join(model_dir, name)


def _distributed_batches(strategy, train_crops, config, start):
    """An iterator of per-replica elements: each worker gathers the global batch of a step and keeps its share."""
    dataset = data.training_dataset(train_crops, config.batch_size, config.seed, start * config.batch_size)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))


def _check_same_start(strategy, start):
    """Stops when the workers of a cluster restored different steps (a ``model_dir`` not all of them read)."""
    # equal starts x_i iff n * sum(x_i^2) == sum(x_i)^2 (only SUM and MEAN reduce across workers)
    values = strategy.experimental_distribute_values_from_function(lambda context: tf.constant([1, start, start**2], tf.int64))
    count, total, squares = (int(v) for v in strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None))
    if count * squares != total**2:
        raise checkpoints.CheckpointError(
            f"the workers resumed from different steps (this one from {start}): --model_dir must be storage "
            "every worker reads (gs://, NFS)"
        )


def _train(task, strategy, config, out_dir, train_crops, make_batch, val_batch, loss_scaling):
    """:func:`train` writing its files into ``out_dir``; returns the trained weights' file name."""
    tf.io.gfile.makedirs(out_dir)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(f"--batch_size {config.batch_size} must be a multiple of the {replicas} replicas")
    chief, workers = cluster.is_chief(strategy), cluster.num_workers(strategy)

    optimizer = make_optimizer(task, strategy, config.lr, loss_scaling)
    with strategy.scope():
        checkpoint = model_checkpoint(task.model, optimizer=optimizer)
    checkpoint_dir = os.path.join(str(config.model_dir), "checkpoints")
    resumed = checkpoints.restore_newest(checkpoint, checkpoint_dir, read_only=not chief)
    if resumed is not None:
        logging.info("resumed from %s", resumed)
        optimizer.learning_rate = config.lr  # the checkpoint holds the old rate: a changed --lr takes effect
    start = int(optimizer.iterations.numpy())
    if workers > 1:
        _check_same_start(strategy, start)

    iterator = _distributed_batches(strategy, train_crops, config, start)
    train_step = make_train_step(task, strategy, optimizer, make_batch, config.seed)
    val_step = tf.function(lambda batch: task(batch, training=False))
    train_writer = tf.summary.create_file_writer(os.path.join(out_dir, "train"))
    val_writer = tf.summary.create_file_writer(os.path.join(out_dir, "val"))

    def validate(step):
        losses, outputs = val_step(val_batch)
        with val_writer.as_default(step=step):
            for name, value in losses.items():
                tf.summary.scalar(f"loss/{name}", value)
            prediction, target = outputs["prediction"], outputs["target"]
            mse = tf.reduce_mean(tf.square(_to_display(prediction) - _to_display(target)))
            tf.summary.scalar("psnr_tonemapped", -10.0 * np.log10(max(float(mse), 1e-12)))
            for name in ("input", "prediction", "target"):
                tf.summary.image(name, _to_display(outputs[name][:4]), max_outputs=4)
            if "inverse_crf" in outputs:
                pred_curve, true_curve = outputs["inverse_crf"].numpy(), outputs["true_inverse_crf"].numpy()
                tf.summary.scalar("crf_rmse", float(np.sqrt(np.mean((pred_curve - true_curve) ** 2, axis=1)).mean()))
                tf.summary.image("inverse_crf", curve_plot.plot_curves(pred_curve[:4], true_curve[:4]), max_outputs=4)
        val_writer.flush()

    def save(step):
        checkpoints.save(checkpoint, os.path.join(out_dir, "checkpoints"), step, config.keep_checkpoints)

    previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    step = start
    progress = tqdm(total=config.steps, initial=start, disable=config.quiet, unit="step", dynamic_ncols=True)
    try:
        while step < config.steps:
            tic = time.perf_counter()
            losses = train_step(iterator)
            step += 1
            progress.update(1)
            if step % config.log_every == 0 or step == config.steps:
                values = {k: float(v) for k, v in losses.items()}
                if not np.isfinite(values["loss"]):
                    raise FloatingPointError(f"loss became {values['loss']} at step {step}")
                progress.set_postfix(loss=f"{values['loss']:.4g}")
                with train_writer.as_default(step=step):
                    for name, value in values.items():
                        tf.summary.scalar(f"loss/{name}", value)
                    tf.summary.scalar("steps_per_second", 1.0 / max(time.perf_counter() - tic, 1e-9))
            if step % config.eval_every == 0 or step == config.steps:
                validate(step)
            if step % config.checkpoint_every == 0 or step == config.steps:
                save(step)
    except _Interrupted as signame:
        progress.close()
        if workers > 1:  # a save runs collectives the other workers are not in: resume from the last periodic one
            logging.warning("%s at step %d: restart the cluster's workers to resume from the last checkpoint", signame, step)
            raise KeyboardInterrupt from None
        save(step)
        logging.warning("%s at step %d: checkpoint saved; run the same command again to resume", signame, step)
        raise KeyboardInterrupt from None
    finally:
        progress.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    files.save_weights(task.trained, os.path.join(out_dir, task.weights_name))
    if task.trained is not task.model:
        files.save_weights(task.model, os.path.join(out_dir, WHOLE_WEIGHTS))
    return task.weights_name


def curve_tables(crf_dir, curve_sets=crf.CURVE_SETS, modern_repeat=1, num_emor=0, seed=0):
    """(training tables, validation tables): the training curves (:func:`hdr_keras.crf.training_curves`),
    and the test curves of the same sets (the 10 DoRF test curves, then the 12 modern ones)."""
    training = crf.training_curves(crf_dir, num_emor, seed, curve_sets, modern_repeat)
    tests = [crf.test_curves(crf_dir, name) for name in curve_sets]
    return training, tuple(np.concatenate(parts) for parts in zip(*tests))
