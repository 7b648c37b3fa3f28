"""Inference speed per runtime and dtype on this CPU, with GFLOP/s, the share of the CPU's peak and
the GFLOP of each stage. Prints Markdown tables (the README's speed rows come from them).

    python bench/bench_runtime.py                          # lite at 0.25, 1 and 12 MP, median of 3
    python bench/bench_runtime.py --sizes 1 --runs 5 --startup

Rows: every runtime and dtype this CPU runs (:mod:`hdr_keras.runtimes`): ``tensorflow`` float32,
``tensorflow`` bfloat16 only where the CPU has AMX or AVX512-BF16, ``litert`` float32; and the one
``--runtime auto`` picks here. Each engine is built in this process from the same weights (the
shipped ones), warmed up by one call per size, then the images go through
:meth:`hdr_keras.engine.Engine.reconstruct` as ``predict`` runs them (curve on the <= 1024 px copy,
1024 px tiles with 128 px overlap above 4 MP), the engines called in turn (round robin) so that all
see the same load. Seconds: median of ``--runs`` wall times; CPU seconds: the process's user +
system time per image (all threads), which a loaded machine inflates less than the wall time.

GFLOP: TensorFlow profiler on each stage's graph at each shape that runs (multiply-add = 2 FLOPs);
both runtimes run the same graph. Peak: cores x clock x float32 FLOPs per cycle and core (two FMA
units x SIMD lanes x 2: 32 with AVX2, 64 with AVX-512), clock as /proc/cpuinfo reports it (the
nominal one in a VM), so the share is an estimate.

``--startup``: one ``python -m hdr_keras predict`` of a 1 MP JPEG per runtime, each in a fresh
process (the LiteRT file already built): wall time, the sidecar's ``seconds`` (the image's own
time) and their difference, the one-photo overhead (imports, model loading, writing). A script
that reports numbers, not a test.
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from hdr_keras.quiet import import_tensorflow  # noqa: E402

tf = import_tensorflow()
from hdr_keras import engine, precision, pretrained, runtimes  # noqa: E402

STAGES = ("curve", "linearize", "hallucinate", "refine")


def dimensions(megapixels):
    """(height, width) of a 4:3 landscape image of about ``megapixels`` (12 MP -> 3000 x 4000)."""
    height = round((megapixels * 1e6 * 3 / 4) ** 0.5)
    return height, round(height * 4 / 3)


def cpu():
    """(name, cores, GHz, float32 FLOPs per cycle and core, SIMD name) from /proc/cpuinfo."""
    name, mhz, flags = "unknown CPU", 0.0, set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                name = value.strip()
            elif key == "cpu MHz":
                mhz = max(mhz, float(value))
            elif key == "flags":
                flags = set(value.split())
    if "avx512f" in flags:
        simd, per_cycle = "AVX-512", 64
    elif {"avx2", "fma"} <= flags:
        simd, per_cycle = "AVX2+FMA", 32
    else:
        simd, per_cycle = "SSE", 8
    return name, len(os.sched_getaffinity(0)), mhz / 1000, per_cycle, simd


def graph_flops(fn, *specs):
    """FLOPs of ``fn`` traced at the fully known ``specs`` (TensorFlow profiler)."""
    graph = tf.function(fn).get_concrete_function(*specs).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


class StageFlops:
    """FLOPs of each stage of a built SingleHDR at a given input size, cached per shape."""

    def __init__(self, model, align):
        self.model, self.align, self.cache = model, align, {}
        m = model
        self.functions = {
            "curve": lambda x: m.linearization(m.dequantization(x, training=False), training=False)["inverse_crf"],
            "linearize": lambda x, c: m.linearization.apply_curve([m.dequantization(x, training=False), c]),
            "dequantize": lambda x: m.dequantization(x, training=False),
            "hallucinate": lambda x: m.hallucination(x, training=False),
            "refine": lambda x, l, h: m.refinement([h, l, m.dequantization(x, training=False)], training=False),
        }

    def __call__(self, stage, height, width):
        key = (stage, height, width)
        if key not in self.cache:
            image = tf.TensorSpec([1, height, width, 3], tf.float32)
            specs = {"curve": [image], "linearize": [image, tf.TensorSpec([1, 1024], tf.float32)],
                     "dequantize": [image], "hallucinate": [image], "refine": [image] * 3}[stage]
            self.cache[key] = graph_flops(self.functions[stage], *specs)
        return self.cache[key]

    def per_image(self, height, width, whole_image, refines):
        """{stage: FLOPs} of Engine.reconstruct on an image of (height, width), and the number of tiles."""
        tiles = engine.plan(
            height, width, engine.DEFAULT_TILE, engine.DEFAULT_OVERLAP, engine.DEFAULT_TILE_ABOVE_MP, self.align
        )
        windows = [(t.y1 - t.y0, t.x1 - t.x0) for t in tiles] or [(height, width)]
        flops = {"curve": self("curve", *engine.curve_size(height, width))}
        if not tiles and engine.curve_size(height, width) == (height, width):  # one Dequantization pass
            flops["curve"] -= self("dequantize", height, width)
        flops["linearize"] = sum(self("linearize", *w) for w in windows)
        flops["hallucinate"] = self("hallucinate", height, width) if whole_image else sum(
            self("hallucinate", *w) for w in windows)
        if refines:
            flops["refine"] = sum(self("refine", *w) for w in windows)
        return flops, max(1, len(tiles))


def round_robin(calls, runs):
    """``calls`` {name: fn}: each called once (warm-up), then ``runs`` rounds in turn.
    Returns {name: (median wall seconds, median process CPU seconds)}."""
    for fn in calls.values():
        fn()
    wall, cpu_time = {name: [] for name in calls}, {name: [] for name in calls}
    for _ in range(runs):
        for name, fn in calls.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu_time[name].append(time.process_time() - start_cpu)
    return {name: (float(np.median(wall[name])), float(np.median(cpu_time[name]))) for name in calls}


def configurations():
    """[(runtime, dtype)] this CPU runs, and the one ``auto`` picks."""
    rows = [("tensorflow", "float32")]
    if precision.cpu_bf16_flags():
        rows.append(("tensorflow", "bfloat16"))
    rows.append(("litert", "float32"))
    return rows, runtimes.pick("auto", "auto")


def photo(path, height, width):
    """A smooth synthetic 4:3 photo with noise and a blown-out highlight, JPEG quality 92."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 4 / 3, width, dtype=np.float32)[None, :]
    image = np.stack([0.4 + 0.3 * g * np.sin(6 * x + 2 * y) + 0.15 * np.cos(11 * y - 3 * x) for g in (1.0, 0.8, 0.6)], -1)
    image = image + rng.normal(0, 0.02, image.shape)
    image[(x - 0.8) ** 2 + (y - 0.3) ** 2 < 0.01] = 1.0
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path, quality=92)


def startup(configs, repeats):
    """Prints the one-photo overhead of ``python -m hdr_keras predict`` per runtime (fresh processes)."""
    print(f"\n| runtime | dtype | wall (s) | sidecar seconds | overhead (s) | child CPU (s) |  (1 MP JPEG, median of {repeats})")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench_runtime_") as tmp:
        tmp = pathlib.Path(tmp)
        photo(tmp / "photo.jpg", *dimensions(1))
        for runtime, dtype in configs:
            rows = []
            for i in range(repeats):
                out = tmp / f"{runtime}-{dtype}-{i}"
                command = [sys.executable, "-m", "hdr_keras", "predict", str(tmp / "photo.jpg"), "--out_dir", str(out),
                           "--runtime", runtime, "--dtype", dtype, "--quiet"]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run(command, cwd=REPO, check=True)
                wall = time.perf_counter() - start
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                seconds = json.loads((out / "photo.json").read_text())["seconds"]
                rows.append((wall, seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
            wall, seconds, child = np.median(np.array(rows), axis=0)
            print(f"| {runtime} | {dtype} | {wall:.2f} | {seconds:.2f} | {wall - seconds:.2f} | {child:.2f} |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--sizes", default="0.25,1,12", help="megapixels, comma-separated (4:3 images)")
    parser.add_argument("--runs", type=int, default=3, help="timed calls per engine and size (median)")
    parser.add_argument("--startup", action="store_true", help="also time one-photo predict in fresh processes")
    parser.add_argument("--startup_runs", type=int, default=3)
    args = parser.parse_args(argv)
    tf.get_logger().setLevel("ERROR")  # the v1 profiler's deprecation notes
    name, cores, ghz, per_cycle, simd = cpu()
    peak = cores * ghz * per_cycle
    configs, auto = configurations()
    print(f"{name}, {cores} cores at {ghz:.2f} GHz, {simd}: peak {peak:.0f} GFLOP/s float32 "
          f"({cores} x {ghz:.2f} GHz x {per_cycle} FLOP/cycle); bfloat16 instructions: "
          f"{', '.join(precision.cpu_bf16_flags()) or 'none'}; auto picks {auto[0]} {auto[1]}; "
          f"load average {os.getloadavg()[0]:.1f}; TensorFlow {tf.__version__}\n")
    weights = pretrained.resolve_weights(args.preset, None)
    engines = {(r, d): engine.Engine(args.preset, weights, dtype=d, runtime=r) for r, d in configs}
    reference = next(e for (r, d), e in engines.items() if r == "tensorflow" and d == "float32")
    counter = StageFlops(reference.runtime.model, reference.align)
    rng = np.random.default_rng(0)
    stage_rows = []
    print(f"| runtime | dtype | MP | size (WxH) | tiles | GFLOP | s/image | CPU s/image | GFLOP/s | of peak "
          f"| vs tensorflow float32 |  (median of {args.runs})")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for megapixels in (float(s) for s in args.sizes.split(",")):
        height, width = dimensions(megapixels)
        image = rng.uniform(0, 1, (height, width, 3)).astype(np.float32)
        flops, tiles = counter.per_image(height, width, reference.runtime.whole_image, reference.refine)
        total = sum(flops.values())
        stage_rows.append((megapixels, width, height, flops))
        calls = {key: (lambda e=e: e.reconstruct(image)) for key, e in engines.items()}
        times = round_robin(calls, args.runs)
        base = times[("tensorflow", "float32")][0]
        for (runtime, dtype), (wall, cpu_seconds) in times.items():
            rate = total / wall / 1e9
            print(f"| {runtime} | {dtype} | {megapixels:g} | {width}x{height} | {tiles} | {total / 1e9:.1f} "
                  f"| {wall:.2f} | {cpu_seconds:.2f} | {rate:.0f} | {rate / peak:.0%} | {base / wall:.2f}x |", flush=True)
    print("\n| MP | size (WxH) | " + " | ".join(f"{s} GFLOP" for s in STAGES) + " | GFLOP per MP |")
    print("|---:|---|" + "---:|" * (len(STAGES) + 1))
    for megapixels, width, height, flops in stage_rows:
        cells = " | ".join(f"{flops[s] / 1e9:.2f}" if s in flops else "-" for s in STAGES)
        print(f"| {megapixels:g} | {width}x{height} | {cells} | {sum(flops.values()) / 1e9 / (width * height / 1e6):.1f} |")
    print(f"({args.preset}: shipped weights; Hallucination {'whole image' if reference.runtime.whole_image else 'per tile'}; "
          f"refinement {'on' if reference.refine else 'off (identity)'}; load average at the end {os.getloadavg()[0]:.1f})")
    if args.startup:
        startup(configs, args.startup_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
