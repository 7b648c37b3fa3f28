"""Benchmark of ``python -m hdr_keras predict``: seconds and peak memory per image size and preset.

Usage (from the repository root)::

    python bench/bench_predict.py                       # lite and paper at 0.5, 1, 3 and 12 MP
    python bench/bench_predict.py --presets lite --sizes 0.5 12 --timeout 600
    python bench/bench_predict.py --presets lite --sizes 0.5 1 12 --dtypes float32 bfloat16

    python bench/bench_predict.py --writers             # the HDR-screen writers alone at 1 and 12 MP

Each (preset, size, dtype) runs in a fresh Python process, so its peak resident memory (``ru_maxrss``) is
its own. A synthetic 4:3 JPEG of each size is written first (not measured); the child builds the
model from a weights file of randomly initialised weights (timing does not depend on the weight values), runs
two tiny warm-up images so every inference function is traced, then times one
``predict.main([photo, --out_dir, ..., --quiet])`` call with the CLI defaults: reading, curve
estimate, inference (tiled above 4 MP), EXR (half) and sidecar writing, with ``--dtype`` set to
each of ``--dtypes`` (rows of one size next to each other, with the bfloat16 / float32 speed ratio).
It prints a table; this is a script that reports numbers, not a test.

``--writers`` times, in this process and without the model, the writers of ``--format exr``,
``uhdr`` and ``avif`` (CLI defaults) on the synthetic photo and an HDR made from it (the photo
linearised, its near-white pixels x 4): seconds, seconds per megapixel and file size.
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


def _bench_writers(sizes, tmp):
    """Prints a table of the exr / uhdr / avif writers' seconds on synthetic images of ``sizes`` MP."""
    import numpy as np

    from hdr_keras import io as hio
    from hdr_keras.display import avif, ultrahdr

    print("| MP | size (WxH) | exr half (s) | uhdr (s) | uhdr (s/MP) | uhdr (MB) | avif (s) | avif (s/MP) "
          "| avif (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for megapixels in sizes:
        height, width = _dimensions(megapixels)
        _photo(tmp / "photo.jpg", height, width)
        photo = hio.read_ldr(tmp / "photo.jpg")
        hdr = np.where(photo <= 0.04045, photo / 12.92, ((photo + 0.055) / 1.055) ** 2.4).astype(np.float32)
        hdr[photo.max(axis=-1) > 0.95] *= 4.0
        seconds = {}
        for name, write in [
            ("exr", lambda path: hio.write_exr(path, hdr)),
            ("uhdr", lambda path: ultrahdr.write(path, photo, hdr)),
            ("avif", lambda path: avif.write(path, hdr)),
        ]:
            start = time.perf_counter()
            write(tmp / f"out.{name}")
            seconds[name] = time.perf_counter() - start
        mp = height * width / 1e6
        size = {name: (tmp / f"out.{name}").stat().st_size / 1e6 for name in ("uhdr", "avif")}
        print(
            f"| {megapixels:g} | {width}x{height} | {seconds['exr']:.2f} | {seconds['uhdr']:.2f} "
            f"| {seconds['uhdr'] / mp:.2f} | {size['uhdr']:.1f} | {seconds['avif']:.2f} | {seconds['avif'] / mp:.2f} "
            f"| {size['avif']:.1f} |",
            flush=True,
        )


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _child_make_weights(preset, path):
    import keras

    from hdr_keras import pretrained

    keras.utils.set_random_seed(0)
    pretrained.build_model(preset).save_weights(path)


def _child_run(preset, megapixels, dtype, weights, workdir):
    """One measurement in this (fresh) process; prints one JSON line."""
    workdir = pathlib.Path(workdir)
    height, width = _dimensions(megapixels)
    photo = workdir / f"photo_{height}x{width}.jpg"  # written by the parent process
    rss_start = _peak_rss_mb()

    start = time.perf_counter()
    from hdr_keras import predict

    common = ["--weights", str(weights), "--preset", preset, "--dtype", dtype, "--quiet", "--overwrite"]
    warm = [str(workdir / "warm_small.jpg"), str(workdir / "warm_wide.jpg")]
    assert predict.main(warm + ["--out_dir", str(workdir / "warm"), *common]) == 0
    load_seconds = time.perf_counter() - start
    rss_loaded = _peak_rss_mb()

    out_dir = workdir / f"out_{preset}_{megapixels}_{dtype}"
    start = time.perf_counter()
    status = predict.main([str(photo), "--out_dir", str(out_dir), *common])
    seconds = time.perf_counter() - start
    meta = json.loads((out_dir / f"{photo.stem}.json").read_text()) if status == 0 else {}
    print(
        json.dumps(
            {
                "preset": preset,
                "megapixels": megapixels,
                "dtype": dtype,
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
    parser.add_argument(
        "--sizes", nargs="+", type=float, help="megapixels (default: 0.5 1 3 12; with --writers 1 12)"
    )
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32"], choices=["float32", "bfloat16"],
        help="predict --dtype of each row (default: float32)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per measurement (default: 900)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--writers", action="store_true", help="time the exr / uhdr / avif writers alone (sizes default: 1 12)"
    )
    parser.add_argument(
        "--child", nargs=5, metavar=("PRESET", "MP", "DTYPE", "WEIGHTS", "WORKDIR"), help=argparse.SUPPRESS
    )
    parser.add_argument("--make_weights", nargs=2, metavar=("PRESET", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--make_photo", nargs=3, metavar=("HEIGHT", "WIDTH", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [1.0, 12.0] if args.writers else list(SIZES_MP)
    if args.make_weights:
        return _child_make_weights(*args.make_weights)
    if args.make_photo:
        return _photo(args.make_photo[2], int(args.make_photo[0]), int(args.make_photo[1]))
    if args.child:
        preset, megapixels, dtype, weights, workdir = args.child
        return _child_run(preset, float(megapixels), dtype, weights, workdir)

    print(f"machine: {_machine()}")
    if args.writers:
        with tempfile.TemporaryDirectory(prefix="bench_writers_") as tmp:
            _bench_writers(args.sizes, pathlib.Path(tmp))
        return 0
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
            _spawn(["--make_photo", str(height), str(width), str(tmp / name)], args.timeout).check_returncode()
        for preset in args.presets:
            weights = tmp / f"{preset}.weights.h5"
            made = _spawn(["--make_weights", preset, str(weights)], args.timeout)
            if made.returncode != 0:
                print(f"{preset}: cannot make weights:\n{made.stderr[-2000:]}")
                continue
            for megapixels in args.sizes:
                float32_seconds = None
                for dtype in args.dtypes:
                    row = {"preset": preset, "megapixels": megapixels, "dtype": dtype}
                    try:
                        child = ["--child", preset, str(megapixels), dtype, str(weights), str(tmp)]
                        done = _spawn(child, args.timeout)
                        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                        if done.returncode == 0 and lines:
                            row = json.loads(lines[-1])
                        else:
                            row["error"] = (done.stderr.strip().splitlines() or ["failed"])[-1]
                    except subprocess.TimeoutExpired:
                        row["error"] = f"timeout (> {args.timeout:.0f} s)"
                    if dtype == "float32" and "error" not in row:
                        float32_seconds = row["seconds"]
                    elif dtype != "float32" and float32_seconds and "error" not in row:
                        row["speedup_vs_float32"] = round(float32_seconds / row["seconds"], 2)
                    results.append(row)
                    _print_row(row, header=len(results) == 1)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"machine": _machine(), "results": results}, indent=2))
    return 0


def _print_row(row, header=False):
    if header:
        print("| preset | MP | dtype | size (WxH) | tiles | model load + trace (s) | image (s) | vs float32 "
              "| peak RSS (MiB) |")
        print("|---|---|---|---|---|---|---|---|---|")
    if "error" in row:
        print(f"| {row['preset']} | {row['megapixels']:g} | {row['dtype']} | | | | {row['error']} | | |")
    else:
        speedup = f"{row['speedup_vs_float32']:.2f}x" if "speedup_vs_float32" in row else ""
        print(
            f"| {row['preset']} | {row['megapixels']:g} | {row['dtype']} | {row['width']}x{row['height']} "
            f"| {row['tiles']} | {row['load_seconds']:.1f} | {row['seconds']:.1f} | {speedup} | {row['peak_rss_mb']} |",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
