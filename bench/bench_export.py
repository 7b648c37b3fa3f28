"""Latency of the deployment exports on this CPU, and their file sizes.

    python bench/bench_export.py                      # lite, 512x512 and 1024x1024 (1 MP)
    python bench/bench_export.py --sizes 512x512 --runs 5 --threads 2

Exports the model (shipped weights of --preset, else --weights, else random initial weights:
latency does not depend on the values) to a temporary directory, then times one image
(batch 1) through: the Keras model called eagerly, the same wrapped in a ``tf.function``,
the reloaded SavedModel's ``serving_default`` signature, and each TFLite variant under the
LiteRT interpreter (XNNPACK, ``--threads`` threads). Prints the median and minimum of ``--runs``
timed runs after one warm-up (the runs of all runtimes interleaved, round-robin, so that load
from other processes spreads over all of them), the max relative difference of ``hdr`` from
Keras on that input, and the file sizes. On a shared machine the numbers are noisy: compare
rows of one run.
"""

import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from hdr_keras.presets import PRESETS  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("preset", "lite", sorted(PRESETS), "Model preset.")
flags.DEFINE_string("weights", None, "Weights file; default: shipped weights, else random initial weights.")
flags.DEFINE_list("sizes", ["512x512", "1024x1024"], "Image sizes HxW to time.")
flags.DEFINE_integer("runs", 3, "Timed runs per case (after one warm-up).")
flags.DEFINE_integer("threads", os.cpu_count() or 1, "TFLite interpreter threads.")
flags.DEFINE_list("tflite", ["fp32", "fp16", "int8"], "TFLite variants.")
flags.DEFINE_string("work_dir", None, "Where the exports go (kept); default: a temporary directory (removed).")


def _time_round_robin(cases, runs):
    """{name: fn} -> {name: (median ms, min ms, outputs)}, the runs of all cases interleaved.

    One warm-up call each (tracing, allocation, XNNPACK weight packing), then ``runs`` rounds
    that time every case once, so that load from other processes spreads over all cases.
    """
    outputs = {name: fn() for name, fn in cases.items()}
    times = {name: [] for name in cases}
    for _ in range(runs):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (np.median(t) * 1e3, np.min(t) * 1e3, outputs[name]) for name, t in times.items()}


def _cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _bench(work_dir):
    import keras
    import tensorflow as tf

    from hdr_keras import export, pretrained

    weights = FLAGS.weights or pretrained.shipped_weights(FLAGS.preset)
    keras.utils.set_random_seed(0)
    model = pretrained.build_model(FLAGS.preset, weights=weights)
    print(f"preset {FLAGS.preset}, weights {weights or 'random initial (latency only)'}")
    print(f"CPU: {_cpu_name()}, {os.cpu_count()} logical cores; TFLite threads {FLAGS.threads}")
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")

    sizes = {}
    weights_path = work_dir / f"{FLAGS.preset}.weights.h5"
    model.save_weights(weights_path)
    sizes["Keras .weights.h5"] = weights_path.stat().st_size
    savedmodel = export.export_savedmodel(model, work_dir / "savedmodel", 1, overwrite=True)
    sizes["SavedModel (directory)"] = export.file_size(savedmodel)
    tflite_paths = {}
    for variant, content in export.convert_tflite(model, FLAGS.tflite).items():
        path = work_dir / f"hdr_{FLAGS.preset}_{variant}.tflite"
        path.write_bytes(content)
        tflite_paths[variant] = path
        sizes[f"TFLite {variant}"] = len(content)
    serve = tf.saved_model.load(str(savedmodel)).signatures[export.SIGNATURE_KEY]
    compiled = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    interpreters = {
        v: export.tflite_interpreter(model_path=str(p), num_threads=FLAGS.threads) for v, p in tflite_paths.items()
    }

    rows = []
    for size_text in FLAGS.sizes:
        height, width = export.parse_size(size_text)
        ldr = np.random.default_rng(0).random((1, height, width, 3), dtype=np.float32)
        tensor = tf.constant(ldr)
        cases = {
            "Keras (eager call)": lambda: model(tensor, training=False),
            "Keras (tf.function)": lambda: compiled(tensor),
            "SavedModel serving_default": lambda: serve(ldr=tensor),
        }
        for variant, interpreter in interpreters.items():
            cases[f"TFLite {variant}"] = lambda i=interpreter: export.run_tflite(i, ldr)
        reference = None
        for name, (median, best, outputs) in _time_round_robin(cases, FLAGS.runs).items():
            hdr = np.asarray(outputs["hdr"])
            if reference is None:
                reference = hdr
            error = export.max_relative_error(hdr, reference)
            rows.append((f"{height}x{width}", name, median, best, error))
            print(f"  {height}x{width} {name:<28} median {median:9.1f} ms  min {best:9.1f} ms  hdr rel. err {error:.2g}")

    print("\n| size | runtime | median ms | min ms | hdr max rel. diff. vs Keras |")
    print("|---|---|---:|---:|---:|")
    for size, name, median, best, error in rows:
        print(f"| {size} | {name} | {median:.0f} | {best:.0f} | {error:.1g} |")
    print("\n| file | size |")
    print("|---|---:|")
    for name, size in sizes.items():
        print(f"| {name} | {size / 1e6:.1f} MB |")


def main(argv):
    del argv
    if FLAGS.work_dir:
        work_dir = pathlib.Path(FLAGS.work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        _bench(work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
            _bench(pathlib.Path(tmp))


if __name__ == "__main__":
    app.run(main)
