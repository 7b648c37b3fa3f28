"""Training throughput per stage in float32 and bfloat16, side by side in one run. Prints tables.

    python bench/bench_train.py                      # lite, batch 8, 256x256, every stage
    python bench/bench_train.py --stages lin,hal --crop 128 --steps 5

Measures, on the TensorFlow devices of this machine:
- supply: cached crops per second from :func:`hdr_keras.data.training_dataset` (the tf.data part);
- data part: augmentation and camera model with JPEG alone, batches per second (it runs inside the
  step, in float32 whatever the policy: it does not speed up with bfloat16); a stage whose losses
  do not see the LDR (``lin``) renders without JPEG, as training does;
- per stage and dtype: steps per second of the stage's compiled step as training runs it
  (:func:`hdr_keras.training.loop.make_train_step`: data part included), and of the model part
  alone (forward, gradients and Adam on a fixed, already made batch), with the bfloat16 / float32
  ratio of each. The two models (``mixed_bfloat16`` policy and float32, same weights) are built in
  this process and their steps timed in turn, one call each per round, so both see the same load;
  each rate is one over the median seconds of ``--steps`` calls after two warm-up calls.
"""

import argparse
import os
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from hdr_keras.quiet import import_tensorflow  # noqa: E402

tf = import_tensorflow()
from hdr_keras import crf, data, paths, precision, pretrained  # noqa: E402
from hdr_keras.training import loop  # noqa: E402
from hdr_keras.training.tasks import TASKS  # noqa: E402

DTYPES = ("float32", "bfloat16")


def rate(fn, steps, warmup=2):
    """Calls ``fn`` ``warmup`` then ``steps`` times; returns calls per second of the timed part."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return steps / (time.perf_counter() - start)


def alternate_rates(calls, steps, warmup=2):
    """``calls`` {name: fn}, each warmed up, then called in turn ``steps`` rounds: {name: 1 / median seconds}."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in calls}
    for _ in range(steps):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1.0 / float(np.median(t)) for name, t in times.items()}


def model_step(task, optimizer):
    """A compiled step on a given batch: the model part of a training step alone (no data part)."""
    variables = task.trained.trainable_variables

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            losses, _ = task(batch, training=True)
        optimizer.apply(tape.gradient(losses["loss"], variables), variables)
        return losses["loss"]

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--stages", default="deq,lin,hal,ref,joint")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement (median)")
    parser.add_argument("--data_dir", default=str(paths.DEFAULT_TRAIN_DIR))
    parser.add_argument("--crf_dir", default=str(crf.DEFAULT_CRF_DIR))
    args = parser.parse_args(argv)

    crops = data.load_crops(args.data_dir)
    curves = crf.training_curves(args.crf_dir)
    devices = [d.device_type + ":" + d.name.split(":")[-1] for d in tf.config.list_logical_devices()]
    flags = precision.cpu_bf16_flags()
    print(f"devices: {', '.join(devices)}; bfloat16 instructions: {', '.join(flags) or 'none'}; "
          f"load average {os.getloadavg()[0]:.1f}; preset {args.preset}, batch {args.batch_size}, "
          f"{args.crop}x{args.crop}")

    iterator = iter(data.training_dataset(crops, args.batch_size, seed=0))
    supply = rate(lambda: next(iterator), args.steps * 4, warmup=4) * args.batch_size
    make_batch = loop.synthetic_batches(curves, args.crop)
    element = next(iterator)
    prepare = tf.function(make_batch)
    seed = tf.constant([0, 1])
    data_part = rate(lambda: prepare(element, seed)["ldr"].numpy(), args.steps)
    batch = prepare(element, seed)
    print(f"supply (tf.data, cached crops): {supply:8.1f} crops/s")
    print(f"data part (augmentation + camera model with JPEG, in the step): {data_part:6.2f} batches/s "
          f"({1 / data_part:.2f} s per step)\n")

    strategy = tf.distribute.get_strategy()
    weights = pretrained.resolve_weights(args.preset, None, allow_random=True)
    models = {}
    for dtype in DTYPES:
        with precision.policy_scope(dtype):
            models[dtype] = pretrained.build_model(args.preset, weights)
    distributed = iter(strategy.experimental_distribute_dataset(data.training_dataset(crops, args.batch_size)))
    print("| stage | float32 steps/s | bfloat16 steps/s | bf16 / f32 | model part f32 | model part bf16 "
          "| bf16 / f32 | data part of a bf16 step |")
    print("|---|---|---|---|---|---|---|---|")
    for stage in args.stages.split(","):
        calls = {}
        for dtype, model in models.items():
            task = TASKS[stage](model)
            optimizer = loop.make_optimizer(task, strategy, 1e-4)
            stage_batches = make_batch if task.uses_ldr else loop.synthetic_batches(curves, args.crop, jpeg=False)
            step = loop.make_train_step(task, strategy, optimizer, stage_batches, seed=0)
            alone = model_step(task, optimizer)
            calls[dtype] = lambda step=step: step(distributed)["loss"].numpy()
            calls[dtype + " model"] = lambda alone=alone: alone(batch).numpy()
        r = alternate_rates(calls, args.steps)
        print(f"| {stage} | {r['float32']:.2f} | {r['bfloat16']:.2f} | {r['bfloat16'] / r['float32']:.2f}x "
              f"| {r['float32 model']:.2f} | {r['bfloat16 model']:.2f} "
              f"| {r['bfloat16 model'] / r['float32 model']:.2f}x | {r['bfloat16'] / data_part:.0%} |", flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}; numpy {np.__version__}, tensorflow {tf.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
