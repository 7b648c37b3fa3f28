"""Per-photo cost of each step of ``hdr-keras beam`` on one CPU core: the numbers behind the sizing
of docs/distributed.md ("Sizing on paper").

    python bench/bench_pipeline.py                          # a 12 MP photo, TensorFlow runtime, 1 core
    python bench/bench_pipeline.py --runtimes tensorflow litert --megapixels 12 --repeats 2

A synthetic 4:3 JPEG (quality 92, photo-like noise and highlights) of ``--megapixels`` is written
first. Then, for each runtime, the steps the Beam workers run are timed on it as the pipeline runs
them (:mod:`hdr_keras.beam_pipeline`): read the bytes and hash them (SHA-256), decode
(:func:`hdr_keras.io.read_ldr`), reconstruct (:meth:`hdr_keras.engine.Engine.reconstruct`, CLI
defaults: tiled above 4 MP), write the output unit (half EXR + sidecar, :func:`hdr_keras.outputs.write`)
and publish it (copy under a temporary name, fsync, rename). TensorFlow, OpenCV and LiteRT run on
``--cores`` cores (the process's CPU affinity; 1: the cost per core, as a Beam worker runs one SDK
process per core).
Reported per step: CPU seconds of this process (``time.process_time``: what the step costs, even on
a loaded machine) and wall seconds, the minimum over ``--repeats``; plus the one-off model load.
"""

import argparse
import hashlib
import json
import os
import pathlib
import platform
import shutil
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _photo(path, megapixels):
    import numpy as np
    from PIL import Image

    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.45 + 0.3 * np.sin(x / 301.0)[..., None] * np.cos(y / 207.0)[..., None]
    image = base * np.array([1.0, 0.9, 0.8], np.float32) + rng.normal(0, 0.03, (height, width, 3)).astype(np.float32)
    image[height // 5 : height // 3, width // 4 : width // 2] = 1.0
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path, quality=92)
    return width, height


def _engine(runtime):
    from hdr_keras import engine, runtimes

    if runtime in runtimes.RUNTIMES:
        return engine.Engine(runtime=runtime, dtype="float32")
    from hdr_keras.runtimes import litert  # not registered yet: its Runtime in a TensorFlow engine's place

    eng = engine.Engine(dtype="float32")
    eng.runtime, eng.runtime_name = litert.Runtime(eng.preset, eng.weights, refine=True), runtime
    return eng


def _timed(step, times, fn):
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    cost = (time.process_time() - cpu, time.perf_counter() - wall)
    times[step] = tuple(min(a, b) for a, b in zip(times.get(step, cost), cost))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtimes", nargs="+", default=["tensorflow"])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))  # TF, OpenCV, LiteRT size their pools by it
    from hdr_keras import io as hio
    from hdr_keras import outputs as units
    from hdr_keras import engine

    work = pathlib.Path(tempfile.mkdtemp(prefix="bench_pipeline-"))
    photo = work / "photo.jpg"
    width, height = _photo(photo, args.megapixels)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; photo {width}x{height} ({width * height / 1e6:.1f} MP, "
          f"{photo.stat().st_size / 1e6:.1f} MB JPEG); on {args.cores} core(s)")  # fmt: skip
    rows = {}
    for runtime in args.runtimes:
        times = {}
        eng = _timed("load model", times, lambda: _engine(runtime))
        eng.reconstruct(hio.read_ldr(photo, max_pixels=None))  # traces the functions: not counted
        for _ in range(args.repeats):
            _timed("read + SHA-256", times, lambda: hashlib.sha256(photo.read_bytes()).hexdigest())
            image = _timed("decode", times, lambda: hio.read_ldr(photo, min_size=engine.MIN_SIZE, max_pixels=None))
            result = _timed("reconstruct", times, lambda: eng.reconstruct(image))
            out = work / runtime
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            outputs = units.output_paths(out, "photo", ["exr"], False)
            meta = {"input": str(photo), "formats": ["exr"], "width": width, "height": height}
            _timed("write EXR + sidecar", times, lambda: units.write(outputs, result, None, meta, time.perf_counter()))
            published = work / f"{runtime}-published"
            published.mkdir(exist_ok=True)

            def publish():
                for path in outputs.values():
                    tmp = published / f".{path.name}.tmp"
                    shutil.copyfile(path, tmp)
                    fd = os.open(tmp, os.O_RDONLY)
                    os.fsync(fd)
                    os.close(fd)
                    os.replace(tmp, published / path.name)

            _timed("publish (copy, fsync, rename)", times, publish)
        rows[runtime] = times
        exr = outputs["exr"].stat().st_size / 1e6
        print(f"\n{runtime}: EXR {exr:.1f} MB; tiles {result.info['tiles']}")
        print("| step | CPU s | wall s |\n|---|---:|---:|")
        total = [0.0, 0.0]
        for step, (cpu, wall) in times.items():
            print(f"| {step} | {cpu:.2f} | {wall:.2f} |")
            if step != "load model":
                total = [total[0] + cpu, total[1] + wall]
        print(f"| per photo (all but the load) | {total[0]:.2f} | {total[1]:.2f} |")
    print(json.dumps({r: {k: [round(v, 3) for v in t] for k, t in times.items()} for r, times in rows.items()}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
