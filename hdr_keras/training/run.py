"""Builds a training run from flags: strategy, data, model, task; then runs the loop."""

import keras
from absl import logging

from hdr_keras import data, precision, pretrained
from hdr_keras.training import loop
from hdr_keras.training.losses import PerceptualLoss
from hdr_keras.training.tasks import TASKS, LossWeights


def run(task_name, flags_values, loss_weights=None, refine=True, pairs_dir=None):
    """Trains ``task_name`` (a key of ``tasks.TASKS``) as configured by the absl flag values.

    With ``pairs_dir`` (joint task only) it trains on real LDR/HDR pairs instead of synthetic ones.
    """
    f = flags_values
    strategy = loop.make_strategy(f.strategy, f.tpu)
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
        make_batch = loop.synthetic_batches(
            curves, f.crop, jpeg, f.sensor_noise, f.white_balance_stops, f.saturation_jitter
        )
    val_batch = loop.validation_batch(val_crops, val_curves, config)
    weights = loop.train(task, strategy, config, train_crops, make_batch, val_batch, f.mixed_precision == "float16")
    print(f"wrote {weights}")
    return weights
