"""Benchmark of ``python -m hdr_keras predict``: seconds and peak memory per image size and preset.

Usage (from the repository root)::

    python bench/bench_predict.py                       # lite and paper at 0.5, 1, 3 and 12 MP
    python bench/bench_predict.py --presets lite --sizes 0.5 12 --timeout 600

Each (preset, size) runs in a fresh Python process, so its peak resident memory (``ru_maxrss``) is
its own. A synthetic 4:3 JPEG of each size is written first (not measured); the child builds the
model from a weights file of randomly initialised weights (timing does not depend on the weight values), runs
two tiny warm-up images so every inference function is traced, then times one
``predict.main([photo, --out-dir, ..., --quiet])`` call with the CLI defaults: reading, curve
estimate, inference (tiled above 4 MP), EXR (half) and sidecar writing. It prints a table; this is
a script that reports numbers, not a test.
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
SIZES_MP = (0.5, 1.0, 3.0, 12.0)


def _dimensions(megapixels):
    """(height, width) of a 4:3 landscape image of about ``megapixels`` (12 MP -> 3000 x 4000)."""
    height = round((megapixels * 1e6 * 3 / 4) ** 0.5)
    return height, round(height * 4 / 3)


def _photo(path, height, width):
    """A smooth synthetic photo with a blown-out highlight and noise, written as JPEG quality 92."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 4 / 3, width, dtype=np.float32)[None, :]
    img = np.empty((height, width, 3), np.float32)
    for c, gain in enumerate((1.0, 0.8, 0.6)):
        img[..., c] = 0.4 + 0.3 * gain * np.sin(6 * x + 2 * y) + 0.15 * np.cos(11 * y - 3 * x)
        img[..., c] += rng.normal(0, 0.02, (height, width)).astype(np.float32)
    img[(x - 0.8) ** 2 + (y - 0.3) ** 2 < 0.01] = 1.0
    Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path, quality=92)


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _child_make_weights(preset, path):
    import keras

    from hdr_keras import pretrained

    keras.utils.set_random_seed(0)
    pretrained.build_model(preset).save_weights(path)


def _child_run(preset, megapixels, weights, workdir):
    """One measurement in this (fresh) process; prints one JSON line."""
    workdir = pathlib.Path(workdir)
    height, width = _dimensions(megapixels)
    photo = workdir / f"photo_{height}x{width}.jpg"  # written by the parent process
    rss_start = _peak_rss_mb()

    start = time.perf_counter()
    from hdr_keras import predict

    common = ["--weights", str(weights), "--preset", preset, "--quiet", "--overwrite"]
    warm = [str(workdir / "warm_small.jpg"), str(workdir / "warm_wide.jpg")]
    assert predict.main(warm + ["--out-dir", str(workdir / "warm"), *common]) == 0
    load_seconds = time.perf_counter() - start
    rss_loaded = _peak_rss_mb()

    out_dir = workdir / f"out_{preset}_{megapixels}"
    start = time.perf_counter()
    status = predict.main([str(photo), "--out-dir", str(out_dir), *common])
    seconds = time.perf_counter() - start
    meta = json.loads((out_dir / f"{photo.stem}.json").read_text()) if status == 0 else {}
    print(
        json.dumps(
            {
                "preset": preset,
                "megapixels": megapixels,
                "height": height,
                "width": width,
                "status": status,
                "load_seconds": round(load_seconds, 2),
                "seconds": round(seconds, 2),
                "sidecar_seconds": meta.get("seconds"),
                "tiles": meta.get("tiles"),
                "peak_rss_mb": round(_peak_rss_mb()),
                "rss_after_load_mb": round(rss_loaded),
                "rss_before_import_mb": round(rss_start),
            }
        )
    )


def _machine():
    cpu = platform.processor() or "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        with open("/proc/meminfo") as f:
            mem_gb = int(f.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        mem_gb = float("nan")
    load = os.getloadavg()
    return f"{cpu}, {os.cpu_count()} logical CPUs, {mem_gb:.0f} GiB RAM; load average at start {load[0]:.1f}"


def _spawn(argv, timeout):
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, str(pathlib.Path(__file__).resolve()), *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["lite", "paper"], help="presets (default: lite paper)")
    parser.add_argument("--sizes", nargs="+", type=float, default=list(SIZES_MP), help="megapixels (default: 0.5 1 3 12)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per measurement (default: 900)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--child", nargs=4, metavar=("PRESET", "MP", "WEIGHTS", "WORKDIR"), help=argparse.SUPPRESS)
    parser.add_argument("--make-weights", nargs=2, metavar=("PRESET", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--make-photo", nargs=3, metavar=("HEIGHT", "WIDTH", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make_weights:
        return _child_make_weights(*args.make_weights)
    if args.make_photo:
        return _photo(args.make_photo[2], int(args.make_photo[0]), int(args.make_photo[1]))
    if args.child:
        preset, megapixels, weights, workdir = args.child
        return _child_run(preset, float(megapixels), weights, workdir)

    print(f"machine: {_machine()}")
    print("weights: randomly initialised (timings do not depend on the weight values); CLI defaults")
    print("(EXR half, refine on, 1024 px tiles with 128 px overlap above 4 MP); each row a fresh process.")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        tmp = pathlib.Path(tmp)
        # Photos are made in their own processes: a child's ru_maxrss starts from the peak of the
        # process that spawned it (Linux keeps it across fork + exec), so this one must stay small.
        for height, width, name in [(64, 64, "warm_small.jpg"), (48, 1056, "warm_wide.jpg")] + [
            (*_dimensions(mp), "photo_{}x{}.jpg".format(*_dimensions(mp))) for mp in args.sizes
        ]:
            _spawn(["--make-photo", str(height), str(width), str(tmp / name)], args.timeout).check_returncode()
        for preset in args.presets:
            weights = tmp / f"{preset}.weights.h5"
            made = _spawn(["--make-weights", preset, str(weights)], args.timeout)
            if made.returncode != 0:
                print(f"{preset}: cannot make weights:\n{made.stderr[-2000:]}")
                continue
            for megapixels in args.sizes:
                row = {"preset": preset, "megapixels": megapixels}
                try:
                    done = _spawn(["--child", preset, str(megapixels), str(weights), str(tmp)], args.timeout)
                    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                    if done.returncode == 0 and lines:
                        row = json.loads(lines[-1])
                    else:
                        row["error"] = (done.stderr.strip().splitlines() or ["failed"])[-1]
                except subprocess.TimeoutExpired:
                    row["error"] = f"timeout (> {args.timeout:.0f} s)"
                results.append(row)
                _print_row(row, header=len(results) == 1)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"machine": _machine(), "results": results}, indent=2))
    return 0


def _print_row(row, header=False):
    if header:
        print("| preset | MP | size (WxH) | tiles | model load + trace (s) | image (s) | peak RSS (MiB) |")
        print("|---|---|---|---|---|---|---|")
    if "error" in row:
        print(f"| {row['preset']} | {row['megapixels']:g} | | | | {row['error']} | |")
    else:
        print(
            f"| {row['preset']} | {row['megapixels']:g} | {row['width']}x{row['height']} | {row['tiles']} "
            f"| {row['load_seconds']:.1f} | {row['seconds']:.1f} | {row['peak_rss_mb']} |",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
