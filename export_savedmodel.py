"""Exports SingleHDR for deployment: a SavedModel for TF Serving and TFLite models for phones.

    python export_savedmodel.py --preset lite --export_dir export/hdr_lite --version 1

writes

- ``<export_dir>/<version>/``: SavedModel (the layout TF Serving loads), signatures
  ``serving_default`` (``ldr`` float32 [N, H, W, 3] in [0, 1], any N, H, W -> ``hdr``,
  ``inverse_crf``) and ``serving_bytes`` (``image_bytes`` string [N], encoded JPEG/PNG; a request
  declaring more than ``--max_megapixels`` in all is refused from the headers, before decoding);
- ``<tflite_dir>/hdr_<preset>_<variant>.tflite`` for each of ``--tflite`` (fp32 and fp16 by
  default; dynamic-range int8 on request only, it is far off with the shipped weights): builtin
  ops only, input ``ldr`` [1, H, W, 3] with H and W dynamic (``interpreter.resize_tensor_input``
  / the signature runner resizes) or fixed by ``--tflite_size HxW``.

``--overwrite`` swaps the new version in atomically: a kill at any moment leaves the old or the
new one, complete. Then (``--verify``, default on) it reloads every file and compares it with the
Keras model on a random odd-sized image. Weights default to the preset's shipped weights; with none shipped,
pass ``--weights`` or, for a smoke test only, ``--allow_random_weights``. See the README's Deploy section.
"""

import pathlib
import sys

import numpy as np
from absl import app, flags

from hdr_keras.presets import PRESETS
from hdr_keras.quiet import import_tensorflow

FLAGS = flags.FLAGS
flags.DEFINE_enum("preset", "lite", sorted(PRESETS), "Model preset (hdr_keras/presets.py).")
flags.DEFINE_string(
    "weights", None, "Keras .weights.h5 of the whole SingleHDR. Default: the weights shipped for --preset."
)
flags.DEFINE_boolean(
    "allow_random_weights",
    False,
    "Export random initial weights when no --weights is given and none are shipped for the preset "
    "(smoke tests only: the outputs are meaningless). Without it such an export stops with an error.",
)
flags.DEFINE_boolean("refine", True, "Include the Refinement-Net (--norefine: hdr is the Hallucination-Net output).")
flags.DEFINE_string("export_dir", None, "Model base path for TF Serving. Default: export/hdr_<preset>.")
flags.DEFINE_integer("version", 1, "Version subdirectory (a positive integer; TF Serving serves the highest).")
flags.DEFINE_boolean("overwrite", False, "Replace an existing <export_dir>/<version>.")
flags.DEFINE_boolean("bytes_signature", True, "Add the serving_bytes signature (encoded JPEG/PNG input).")
flags.DEFINE_float(
    "max_megapixels",
    16.0,
    "serving_bytes refuses (InvalidArgument) a request whose images declare more than this many "
    "megapixels in all, read from their headers before decoding. Fixed in the SavedModel.",
    lower_bound=0.0,
)
flags.DEFINE_list(
    "tflite",
    ["fp32", "fp16"],  # = hdr_keras.export.DEFAULT_TFLITE_VARIANTS (not imported here: --help stays light)
    "TFLite variants to write (fp32, fp16, int8); empty: none. int8 (dynamic range) only on request: "
    "with the shipped weights its hdr is far off (README, 'Accuracy against Keras').",
)
flags.DEFINE_string("tflite_size", "", "Fix the TFLite input to HxW (e.g. 512x768). Default: H and W dynamic.")
flags.DEFINE_string("tflite_dir", None, "Where the .tflite files go. Default: <export_dir>/tflite.")
flags.DEFINE_boolean("verify", True, "Reload the exports and compare them with the Keras model.")

# Max relative differences (max|x - keras| / max|keras|) --verify accepts; int8 is only reported.
# fp16: the whole-image Hallucination stage's exp(gain) amplifies the rounding of float16 weights
# (measured 0.033 with random weights at 37x53, the test export; fp32 stays at 1e-5).
TOLERANCES = {"savedmodel": 1e-5, "fp32": 1e-4, "fp16": 5e-2}


def _verify(model, savedmodel_path, tflite_paths, size):
    import tensorflow as tf

    from hdr_keras import export

    height, width = size or (37, 53)
    ldr = np.random.default_rng(0).random((1, height, width, 3), dtype=np.float32)
    expected = {key: np.asarray(value) for key, value in model(ldr, training=False).items()}
    results = {}
    serve = tf.saved_model.load(str(savedmodel_path)).signatures[export.SIGNATURE_KEY]
    outputs = serve(**{export.INPUT_KEY: tf.constant(ldr)})
    results["savedmodel"] = max(export.max_relative_error(outputs[k], expected[k]) for k in export.OUTPUT_KEYS)
    for variant, path in tflite_paths.items():
        outputs = export.run_tflite(export.tflite_interpreter(model_path=str(path)), ldr)
        results[variant] = max(export.max_relative_error(outputs[k], expected[k]) for k in export.OUTPUT_KEYS)
    print(f"verify on a random {height}x{width} image: max|x - keras| / max|keras| (hdr and inverse_crf)")
    failed = []
    for name, error in results.items():
        limit = TOLERANCES.get(name)
        verdict = "reported only" if limit is None else ("ok" if error <= limit else "FAILED")
        print(f"  {name:<10} {error:.3g}  (limit {limit if limit is not None else '-'}: {verdict})")
        if limit is not None and error > limit:
            failed.append(name)
    return failed


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import_tensorflow()  # first import of TensorFlow: without its C++ start-up noise
    from hdr_keras import export, pretrained

    try:
        size = export.parse_size(FLAGS.tflite_size)
        variants = [v.strip() for v in FLAGS.tflite if v.strip()]
        unknown = sorted(set(variants) - set(export.TFLITE_VARIANTS))
        if unknown:
            raise ValueError(f"unknown --tflite variant(s) {unknown}; known: {', '.join(export.TFLITE_VARIANTS)}")
        weights = pretrained.resolve_weights(
            FLAGS.preset, FLAGS.weights, FLAGS.allow_random_weights, random_flag="--allow_random_weights"
        )
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"export_savedmodel.py: error: {e}")

    export_dir = pathlib.Path(FLAGS.export_dir or f"export/hdr_{FLAGS.preset}")
    tflite_dir = pathlib.Path(FLAGS.tflite_dir) if FLAGS.tflite_dir else export_dir / "tflite"
    print(f"preset {FLAGS.preset}, refine {FLAGS.refine}, weights {weights or 'RANDOM (smoke test)'}")
    try:
        model = pretrained.build_model(FLAGS.preset, weights=weights, refine=FLAGS.refine)
    except pretrained.WeightsError as e:
        sys.exit(f"export_savedmodel.py: error: {e}")

    try:
        path = export.export_savedmodel(
            model,
            export_dir,
            FLAGS.version,
            bytes_signature=FLAGS.bytes_signature,
            overwrite=FLAGS.overwrite,
            max_pixels=round(FLAGS.max_megapixels * 1e6),
        )
    except (OSError, ValueError) as e:  # FileExistsError, a full disk, a read-only folder
        sys.exit(f"export_savedmodel.py: error: {e}")
    print(f"SavedModel  {path}  ({export.file_size(path) / 1e6:.1f} MB)")

    tflite_paths = {}
    if variants:
        tflite_dir.mkdir(parents=True, exist_ok=True)
        suffix = "" if size is None else f"_{size[0]}x{size[1]}"
        for variant, content in export.convert_tflite(model, variants, size=size).items():
            tflite_path = tflite_dir / f"hdr_{FLAGS.preset}{'' if FLAGS.refine else '_norefine'}_{variant}{suffix}.tflite"
            partial = tflite_path.with_name(f".{tflite_path.name}.partial")
            partial.write_bytes(content)
            partial.replace(tflite_path)  # never a truncated .tflite, even if killed
            tflite_paths[variant] = tflite_path
            ops = export.tflite_ops(content)
            extra = export.non_builtin_ops(ops)
            if extra:  # cannot happen with builtins-only conversion; kept as a guard
                sys.exit(f"export_savedmodel.py: error: {tflite_path} has non-builtin ops {extra}")
            shape = "1x{}x{}x3".format(*(size or ("H", "W")))
            print(f"TFLite {variant:<4} {tflite_path}  ({len(content) / 1e6:.1f} MB, ldr {shape}, {len(ops)} builtin op types)")

    if FLAGS.verify:
        failed = _verify(model, path, tflite_paths, size)
        if failed:
            sys.exit(f"export_savedmodel.py: error: {', '.join(failed)} differ from the Keras model beyond tolerance")


if __name__ == "__main__":
    app.run(main)
