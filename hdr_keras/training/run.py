"""Builds a training run from flags: strategy, data, model, task; then runs the loop."""

import pathlib

import keras
from absl import logging

from hdr_keras import data
from hdr_keras.pretrained import build_model
from hdr_keras.training import loop
from hdr_keras.training.losses import PerceptualLoss
from hdr_keras.training.tasks import STAGE_MODELS, TASKS, LossWeights


def load_stage_weights(model, folder, required=()):
    """Loads every ``<stage>.weights.h5`` found in ``folder`` into its stage; ``required`` stages must exist."""
    folder = pathlib.Path(folder) if folder else None
    for stage, attribute in STAGE_MODELS.items():
        path = folder / f"{attribute}.weights.h5" if folder else None
        if path is not None and path.is_file() and getattr(model, attribute) is not None:
            getattr(model, attribute).load_weights(path)
            logging.info("loaded %s", path)
        elif stage in required:
            raise FileNotFoundError(f"{path or '--stage_weights_dir'}: weights of stage {stage!r} are needed to start")


def run(task_name, flags_values, loss_weights=None, refine=True, pairs_dir=None):
    """Trains ``task_name`` (a key of ``tasks.TASKS``) as configured by the absl flag values.

    With ``pairs_dir`` (joint task only) it trains on real LDR/HDR pairs instead of synthetic ones.
    """
    f = flags_values
    strategy = loop.make_strategy(f.strategy, f.tpu)
    if f.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    train_crops = data.load_crops(f.data_dir, f.cache_dir, log=logging.warning)
    val_crops = data.load_crops(f.val_dir, f.cache_dir, log=logging.warning)
    curves, val_curves = loop.curve_tables(f.crf_dir, f.num_emor_curves, f.seed)
    perceptual = None
    if f.vgg_weights:
        perceptual = PerceptualLoss(f.vgg_weights)
    elif task_name in ("hal", "ref", "joint"):
        logging.warning("perceptual loss term off: no --vgg_weights given (ImageNet VGG16 cannot be downloaded here)")
    with strategy.scope():
        model = build_model(f.preset, f.init_weights, refine=refine)
        required = {"ref": ("deq", "lin", "hal")}.get(task_name, ())
        load_stage_weights(model, f.stage_weights_dir, required)
        task = TASKS[task_name](model, loss_weights or LossWeights(), perceptual)
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
        jpeg=f.jpeg,
        sensor_noise=f.sensor_noise,
        quiet=f.quiet,
    )
    if pairs_dir:
        train_crops, make_batch = data.load_pairs(pairs_dir, log=logging.warning), loop.pair_batches(f.crop)
    else:
        make_batch = loop.synthetic_batches(curves, f.crop, f.jpeg, f.sensor_noise)
    val_batch = loop.validation_batch(val_crops, val_curves, config)
    weights = loop.train(task, strategy, config, train_crops, make_batch, val_batch, f.mixed_precision)
    print(f"wrote {weights}")
    return weights
