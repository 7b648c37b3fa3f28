"""Speed of the whole-image Context Hallucination stage against the former tile-local HDRCNN one.

    python bench/bench_hallucination.py                 # 1 and 12 MP, median of 3, float32
    python bench/bench_hallucination.py --sizes 1 --runs 5

Both models are ``lite`` with the same Dequantization- and Linearization-Nets; ``hdrcnn`` swaps in
the Hallucination-Net of the previous release (``PREVIOUS_HALLUCINATION``, the HDRCNN layout at
lite widths). Each goes through :meth:`hdr_keras.engine.Engine.reconstruct` as ``predict`` runs it
(whole image up to 4 MP, in one pass up to 1536 px on the long side; above 4 MP, the curve on the
downscaled copy, 1024 px tiles, and the context stage once on the whole image). Random weights (timing does not depend on their values), one warm-up
call each, then timed alternately so that both see the same load; seconds are medians.
A script that reports numbers, not a test.
"""

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from hdr_keras.quiet import import_tensorflow  # noqa: E402

import_tensorflow()
from hdr_keras import presets  # noqa: E402
from hdr_keras.engine import Engine  # noqa: E402
from hdr_keras.models import SingleHDR  # noqa: E402

PREVIOUS_HALLUCINATION = {
    "encoder": [[16, 1], [32, 1], [64, 2], [96, 2], [128, 2]],
    "bottleneck_filters": 128,
    "decoder_filters": [128, 96, 64, 32, 16],
    "bn_epsilon": 1e-5,
    "gamma": 0.88,
}
SIZES = {0.25: (432, 576), 1: (768, 1024), 12: (3000, 4000)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,12", help="megapixels, from 0.25, 1, 12 (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per model and size (default: %(default)s)")
    args = parser.parse_args()
    sizes = [float(s) if "." in s else int(s) for s in args.sizes.split(",")]
    presets.PRESETS["lite_hdrcnn"] = {**presets.get_preset("lite"), "hallucination": PREVIOUS_HALLUCINATION}
    engines = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, preset in (("hdrcnn (previous)", "lite_hdrcnn"), ("context (this release)", "lite")):
            path = pathlib.Path(tmp) / f"{preset}.weights.h5"
            model = SingleHDR.from_preset(preset)
            model(np.zeros((1, 64, 64, 3), np.float32))
            model.save_weights(path)
            engines[name] = Engine(preset, path, dtype="float32", runtime="tensorflow")
    print(f"| size | {' | '.join(engines)} | ratio |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(0)
    for mp in sizes:
        image = rng.uniform(0.0, 1.0, (*SIZES[mp], 3)).astype(np.float32)
        image[: SIZES[mp][0] // 3] = 1.0  # a clipped band: a sky
        times = {name: [] for name in engines}
        for engine in engines.values():
            engine.reconstruct(image)
        for _ in range(args.runs):
            for name, engine in engines.items():
                start = time.perf_counter()
                engine.reconstruct(image)
                times[name].append(time.perf_counter() - start)
        medians = [statistics.median(times[name]) for name in engines]
        print(f"| {mp} MP | {' | '.join(f'{m:.2f} s' for m in medians)} | {medians[0] / medians[1]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
