"""Builds a training run from flags: strategy, data, model, task; then runs the loop.

The run (its chief, on a cluster) holds a lock on ``--model_dir`` (``training.lock``, local folders)
for its whole time and, once its inputs have loaded, writes its settings there
(:mod:`hdr_keras.training.settings`) before the first step.
Remote inputs (``gs://`` data, curves, weights) are copied under ``--cache_dir`` once.
"""

import contextlib
import os
import types

import keras
from absl import logging

from hdr_keras import data, filelock, precision, pretrained
from hdr_keras.training import cluster, files, loop, settings
from hdr_keras.training.losses import PerceptualLoss
from hdr_keras.training.tasks import TASKS, LossWeights


def run(task_name, flags_values, loss_weights=None, refine=True, pairs_dir=None):
    """Trains ``task_name`` (a key of ``tasks.TASKS``) as configured by the absl flag values.

    With ``pairs_dir`` (joint task only) it trains on real LDR/HDR pairs instead of synthetic ones.
    """
    strategy = loop.make_strategy(flags_values.strategy, flags_values.tpu)
    chief = cluster.is_chief(strategy)
    with _model_dir_lock(flags_values.model_dir) if chief else contextlib.nullcontext():
        return _run(task_name, flags_values, strategy, chief, loss_weights, refine, pairs_dir)


class ModelDirInUse(RuntimeError):
    """Another live training holds the ``--model_dir`` lock."""


LOCK_FILE = "training.lock"


@contextlib.contextmanager
def _model_dir_lock(model_dir):
    """Holds ``model_dir/training.lock`` (local folders; object stores have no locks) or raises :class:`ModelDirInUse`."""
    if not files.is_local(model_dir):
        yield
        return
    os.makedirs(model_dir, exist_ok=True)
    try:
        with filelock.claim(os.path.join(model_dir, LOCK_FILE), log=logging.warning):
            yield
    except filelock.LockHeld as held:
        raise ModelDirInUse(
            f"{model_dir}: another training (process {held.pid}) is running in this --model_dir; "
            "wait for it, stop it, or choose another folder"
        ) from None


def _local_inputs(flags_values):
    """A copy of the flag values whose remote input paths (gs://...) name local copies (:func:`files.local_copy`)."""
    values = dict(settings.flag_values(flags_values))
    for key in ("data_dir", "val_dir", "crf_dir", "stage_weights_dir", "init_weights", "vgg_weights"):
        if values.get(key):
            values[key] = files.local_copy(values[key], values["cache_dir"])
    return types.SimpleNamespace(**values)


def _run(task_name, flags_values, strategy, chief, loss_weights, refine, pairs_dir):
    """:func:`run` once the lock is held."""
    f = _local_inputs(flags_values)
    pairs_dir = files.local_copy(pairs_dir, f.cache_dir)
    if f.mixed_precision != "off":
        keras.mixed_precision.set_dtype_policy(precision.POLICIES[f.mixed_precision])
    train_crops = data.load_crops(f.data_dir, f.cache_dir, log=logging.warning)
    val_crops = data.load_crops(f.val_dir, f.cache_dir, log=logging.warning)
    curves, val_curves = loop.curve_tables(f.crf_dir, f.curve_sets, f.modern_repeat, f.num_emor_curves, f.seed)
    perceptual = None
    if f.vgg_weights:
        perceptual = PerceptualLoss(f.vgg_weights)
    elif task_name in ("hal", "ref", "joint"):
        logging.warning("perceptual loss term off: no --vgg_weights given (ImageNet VGG16 cannot be downloaded here)")
    with strategy.scope():
        model = pretrained.build_model(f.preset, f.init_weights, refine=refine)
        # ref trains on the frozen chain: it needs trained deq, lin, hal (whole file or stage files)
        required = ("dequantization", "linearization", "hallucination") if task_name == "ref" and not f.init_weights else ()
        for path in pretrained.load_stage_weights(model, f.stage_weights_dir, f.preset, required):
            logging.info("loaded %s", path)
        task = TASKS[task_name](model, loss_weights or LossWeights(), perceptual)
    jpeg = f.jpeg and task.uses_ldr
    config = loop.LoopConfig(
        model_dir=f.model_dir,
        steps=f.steps,
        batch_size=f.batch_size,
        crop=f.crop,
        lr=f.lr,
        seed=f.seed,
        log_every=f.log_every,
        eval_every=f.eval_every,
        checkpoint_every=f.checkpoint_every,
        keep_checkpoints=f.keep_checkpoints,
        jpeg=jpeg,
        sensor_noise=f.sensor_noise,
        quiet=f.quiet,
    )
    if pairs_dir:
        train_crops, make_batch = data.load_pairs(pairs_dir, log=logging.warning), loop.pair_batches(f.crop)
    else:
        in_camera = {"local_tone": f.local_tone, "display_saturation": f.display_saturation, "sharpening": f.sharpening}
        make_batch = loop.synthetic_batches(
            curves, f.crop, jpeg, f.sensor_noise, f.white_balance_stops, f.saturation_jitter, in_camera
        )
    val_batch = loop.validation_batch(val_crops, val_curves, config)
    if chief:
        settings.record(f.model_dir, settings.collect(flags_values), logging.warning)
    weights = loop.train(task, strategy, config, train_crops, make_batch, val_batch, f.mixed_precision == "float16")
    if chief:
        print(f"wrote {weights}")
    return weights
