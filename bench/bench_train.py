"""Training throughput: data supply vs consumption, per stage of a preset. Prints a table.

    python bench/bench_train.py                      # lite, batch 8, 256x256, this machine
    python bench/bench_train.py --stages deq,lin --steps 20

Measures, on the TensorFlow devices of this machine:
- supply: cached crops per second from :func:`hdr_keras.data.training_dataset` (the tf.data part);
- on-device preparation: augmentation and camera model alone, images per second (in the step);
- training: steps per second of each stage's compiled step (augmentation and camera included);
- ratio: supply / consumption (crops/s over steps/s x batch). Above 1 the accelerator never waits
  for the pipeline.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from hdr_keras import crf, data, paths  # noqa: E402
from hdr_keras.pretrained import build_model  # noqa: E402
from hdr_keras.training import loop  # noqa: E402
from hdr_keras.training.tasks import TASKS  # noqa: E402


def rate(fn, steps, warmup=2):
    """Calls ``fn`` ``warmup`` then ``steps`` times; returns calls per second of the timed part."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--stages", default="deq,lin,hal,joint")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--data_dir", default=str(paths.DEFAULT_TRAIN_DIR))
    parser.add_argument("--crf_dir", default=str(crf.DEFAULT_CRF_DIR))
    args = parser.parse_args()

    crops = data.load_crops(args.data_dir)
    curves = crf.training_curves(args.crf_dir)
    devices = [d.device_type + ":" + d.name.split(":")[-1] for d in tf.config.list_logical_devices()]
    print(f"devices: {', '.join(devices)}; preset {args.preset}, batch {args.batch_size}, {args.crop}x{args.crop}")

    iterator = iter(data.training_dataset(crops, args.batch_size, seed=0))
    supply = rate(lambda: next(iterator), args.steps * 4, warmup=4) * args.batch_size
    make_batch = loop.synthetic_batches(curves, args.crop)
    element = next(iterator)
    prepare = tf.function(lambda e, s: make_batch(e, s)["ldr"])
    prepared = rate(lambda: prepare(element, tf.constant([0, 1])).numpy(), args.steps) * args.batch_size
    print(f"supply (tf.data, cached crops): {supply:8.1f} crops/s")
    print(f"on-device preparation (augmentation + camera model with JPEG): {prepared:8.1f} images/s")

    strategy = tf.distribute.get_strategy()
    model = build_model(args.preset)
    distributed = iter(strategy.experimental_distribute_dataset(data.training_dataset(crops, args.batch_size)))
    print(f"{'stage':6} {'steps/s':>8} {'images/s':>9} {'supply/consumption':>19}")
    for stage in args.stages.split(","):
        task = TASKS[stage](model)
        optimizer = loop.make_optimizer(task, strategy, 1e-4)
        step = loop.make_train_step(task, strategy, optimizer, make_batch, seed=0)
        steps = rate(lambda: step(distributed)["loss"].numpy(), args.steps)
        consumed = steps * args.batch_size
        print(f"{stage:6} {steps:8.2f} {consumed:9.1f} {supply / consumed:19.1f}")
    print(f"numpy {np.__version__}, tensorflow {tf.__version__}")


if __name__ == "__main__":
    main()
