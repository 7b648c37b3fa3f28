"""Inference speed of each preset in float32 and bfloat16, side by side in one run. Prints tables.

    python bench/bench_model.py                             # lite at 0.5, 1 and 12 MP, median of 3
    python bench/bench_model.py --presets lite,paper --sizes 1 --runs 5

For each preset and size, the image goes through :meth:`hdr_keras.engine.Engine.reconstruct` as
``predict`` runs it (CLI defaults: refinement on unless it is the identity; one pass up to 4 MP,
above that the curve on the <= 1024 px downscaled copy and 1024 px tiles with 128 px overlap, so
12 MP is measured tiled, as predict runs it). Both dtypes' predictors are built in this process
from the same weights (shipped ones where the preset has them, else random: timing does not
depend on the weight values), traced by one warm-up call each, then timed alternately (float32,
bfloat16, float32, ...) so both see the same load: seconds is the median of ``--runs``.

FLOPs are counted by the TensorFlow profiler on the graphs traced at each shape that runs (the
whole model, or the curve estimate plus every tile), multiply-add = 2 FLOPs. The conv limit is a
3x3 64->64 convolution on a 1000x1000 image (73.7 GFLOP) in each dtype, timed in the same rounds
as each row's model calls (so under the same load); the effective GFLOP/s of every row is also
given as a fraction of that row's bfloat16 limit. The CPU's bfloat16 instruction sets
(:func:`hdr_keras.precision.cpu_bf16_flags`) are printed first.
A script that reports numbers, not a test.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from hdr_keras.quiet import import_tensorflow  # noqa: E402

tf = import_tensorflow()
from hdr_keras import engine, precision, pretrained, tiling  # noqa: E402
from bench_runtime import graph_flops  # noqa: E402  (bench/ is on sys.path: the script's folder)

DTYPES = ("float32", "bfloat16")
CONV_SIDE, CONV_CHANNELS = 1000, 64


def _dimensions(megapixels):
    """(height, width) of a 4:3 landscape image of about ``megapixels`` (12 MP -> 3000 x 4000)."""
    height = round((megapixels * 1e6 * 3 / 4) ** 0.5)
    return height, round(height * 4 / 3)


class FlopCounter:
    """FLOPs of :meth:`Engine.reconstruct` on an image of a given size, cached per traced shape."""

    def __init__(self, predictor):
        self.predictor, self.cache = predictor, {}

    def _at(self, kind, height, width):
        key = (kind, height, width)
        if key not in self.cache:
            model, image = self.predictor.runtime.model, tf.TensorSpec([1, height, width, 3], tf.float32)

            def curve(x):
                return model.linearization(model.dequantization(x, training=False), training=False)["inverse_crf"]

            if kind == "full":
                self.cache[key] = graph_flops(lambda x: model(x, training=False)["hdr"], image)
            elif kind == "curve":
                self.cache[key] = graph_flops(curve, image)
            else:
                with_curve = tf.TensorSpec([1, 1024], tf.float32)
                self.cache[key] = graph_flops(
                    lambda x, c: model(x, training=False, inverse_crf=c)["hdr"], image, with_curve
                )
        return self.cache[key]

    def __call__(self, height, width):
        """(FLOPs, number of tiles), following the branches of :meth:`Engine.reconstruct`."""
        p = self.predictor
        tiles = engine.plan(height, width, engine.DEFAULT_TILE, engine.DEFAULT_OVERLAP,
                            engine.DEFAULT_TILE_ABOVE_MP, p.align)
        if len(tiles) <= 1 and max(height, width) <= engine.CURVE_SIDE:
            return self._at("full", height, width), 1
        flops = self._at("curve", *engine.curve_size(height, width))
        windows = tiles or [tiling.Tile(0, height, 0, width, 0, 0)]
        return flops + sum(self._at("with_curve", t.y1 - t.y0, t.x1 - t.x0) for t in windows), len(windows)


def _alternate(calls, runs):
    """``calls`` {name: fn}: each called once (warm-up), then ``runs`` rounds in turn; median seconds each."""
    for fn in calls.values():
        fn()
    times = {name: [] for name in calls}
    for _ in range(runs):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def conv_calls():
    """({"conv float32": fn, "conv bfloat16": fn}, FLOPs): a 3x3 64->64 convolution on a 1000x1000 image."""
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, CONV_SIDE, CONV_SIDE, CONV_CHANNELS), np.float32)
    kernel = rng.standard_normal((3, 3, CONV_CHANNELS, CONV_CHANNELS), np.float32) * 0.05
    conv = tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"))
    calls = {}
    for dtype in DTYPES:
        x, k = tf.constant(image, dtype), tf.constant(kernel, dtype)
        calls["conv " + dtype] = lambda x=x, k=k: conv(x, k).numpy()
    return calls, 2 * 9 * CONV_CHANNELS * CONV_CHANNELS * CONV_SIDE * CONV_SIDE


def _weights(preset, tmp):
    """The shipped weights of ``preset``, or a file of random ones written under ``tmp``."""
    try:
        return pretrained.resolve_weights(preset, None), "shipped"
    except pretrained.MissingWeightsError:
        path = pathlib.Path(tmp) / f"{preset}.weights.h5"
        pretrained.build_model(preset).save_weights(path)
        return path, "random"


def _cpu_name():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="lite")
    parser.add_argument("--sizes", default="0.5,1,12", help="megapixels, comma-separated (4:3 images)")
    parser.add_argument("--runs", type=int, default=3, help="timed calls per dtype and size (median)")
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",")]
    tf.get_logger().setLevel("ERROR")  # the v1 profiler's deprecation notes
    flags = precision.cpu_bf16_flags()
    load = os.getloadavg()[0]
    print(f"{_cpu_name()}, {os.cpu_count()} logical CPUs; bfloat16 instructions: {', '.join(flags) or 'none'}; "
          f"load average {load:.1f}; TensorFlow {tf.__version__}")

    conv, conv_flops = conv_calls()
    print(f"conv limit: 3x3 {CONV_CHANNELS}->{CONV_CHANNELS} convolution, {CONV_SIDE}x{CONV_SIDE}, "
          f"{conv_flops / 1e9:.1f} GFLOP, timed in each row's rounds\n")
    print(f"| preset | MP | size (WxH) | tiles | GFLOP | GFLOP/MP | dtype | s/image | images/s | GFLOP/s "
          f"| conv limit (GFLOP/s) | of bf16 conv limit | bf16 / f32 speed |  (median of {args.runs})")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench_model_") as tmp:
        for preset in args.presets.split(","):
            weights, origin = _weights(preset, tmp)
            predictors = {dtype: engine.Engine(preset, weights, dtype=dtype) for dtype in DTYPES}
            count = FlopCounter(predictors["float32"])
            for megapixels in sizes:
                height, width = _dimensions(megapixels)
                image = rng.uniform(0, 1, (height, width, 3)).astype(np.float32)
                flops, tiles = count(height, width)
                calls = {d: lambda p=p: p.reconstruct(image) for d, p in predictors.items()}
                seconds = _alternate({**calls, **conv}, args.runs)
                limit = {d: conv_flops / seconds["conv " + d] / 1e9 for d in DTYPES}
                for dtype in DTYPES:
                    rate = flops / seconds[dtype] / 1e9
                    ratio = f"{seconds['float32'] / seconds['bfloat16']:.2f}x" if dtype == "bfloat16" else ""
                    print(f"| {preset} | {megapixels:g} | {width}x{height} | {tiles} | {flops / 1e9:.0f} "
                          f"| {flops / 1e9 / (height * width / 1e6):.1f} | {dtype} | {seconds[dtype]:.2f} "
                          f"| {1 / seconds[dtype]:.2f} | {rate:.0f} | {limit[dtype]:.0f} "
                          f"| {rate / limit['bfloat16']:.2f} | {ratio} |", flush=True)
            refinement = "on" if predictors["float32"].refine else "off (identity)"
            print(f"({preset}: {origin} weights, refinement {refinement})")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
