"""Forward-pass speed and weight size of each preset. Prints a table.

    python bench/bench_model.py                    # lite and paper at 1024x768
    python bench/bench_model.py --presets lite --size 1024x768 --runs 5

Times ``SingleHDR`` (refinement included) inside a ``tf.function`` with a dynamic-size signature,
as ``predict`` runs it: median of ``--runs`` calls after one warm-up (tracing) call.
"""

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from hdr_keras.pretrained import build_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="lite,paper")
    parser.add_argument("--size", default="1024x768", help="WxH")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    image = np.random.default_rng(0).uniform(0, 1, (1, height, width, 3)).astype(np.float32)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}")
    print(f"{'preset':8} {'params':>10} {'MB fp32':>8} {'s/image':>8}  ({width}x{height}, median of {args.runs})")
    for preset in args.presets.split(","):
        model = build_model(preset)
        forward = tf.function(
            lambda x, m=model: m(x, training=False)["hdr"], input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)]
        )
        forward(image)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            forward(image).numpy()
            times.append(time.perf_counter() - start)
        params = sum(int(np.prod(w.shape)) for w in model.weights)
        print(f"{preset:8} {params:>10,} {params * 4 / 1e6:8.1f} {np.median(times):8.3f}")


if __name__ == "__main__":
    main()
