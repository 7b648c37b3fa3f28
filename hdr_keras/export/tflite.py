"""TFLite export (builtin ops only) and running it with LiteRT; output and size comparisons for the reports."""

import os
import pathlib
import tempfile

import numpy as np
import tensorflow as tf

from hdr_keras.export.serving import INPUT_KEY, OUTPUT_KEYS, SIGNATURE_KEY, ServingModule

TFLITE_VARIANTS = ("fp32", "fp16", "int8")
DEFAULT_TFLITE_VARIANTS = ("fp32", "fp16")
"""What the export writes unless told otherwise: the variants that are usable with the shipped weights."""


def parse_size(text):
    """``"HxW"`` -> (H, W) ints; empty or None -> None (dynamic size)."""
    if not text:
        return None
    try:
        height, width = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like HxW (e.g. 512x768), got {text!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {text!r}")
    return height, width


def tflite_converter(saved_model_dir, variant="fp32", signature_keys=(SIGNATURE_KEY,)):
    """A ``TFLiteConverter`` for ``signature_keys`` of a SavedModel (default ``serving_default``), builtin ops only."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=list(signature_keys))
    # Builtins only: a graph that would need a Select TF (Flex) op fails to convert.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no dataset: dynamic-range int8
    elif variant != "fp32":
        raise ValueError(f"unknown TFLite variant {variant!r}; known: {', '.join(TFLITE_VARIANTS)}")
    return converter


def convert_tflite(model, variants=DEFAULT_TFLITE_VARIANTS, size=None):
    """TFLite flatbuffers of ``model``: ``{variant: bytes}`` for each of ``variants``.

    Input ``ldr`` float32 [1, H, W, 3]; ``size=(H, W)`` fixes H and W, None leaves them
    dynamic (resize the input tensor before running). Builtin ops only: raises the
    converter's error if any op would need the Flex delegate.
    """
    variants = [variants] if isinstance(variants, str) else list(variants)
    for variant in variants:
        if variant not in TFLITE_VARIANTS:
            raise ValueError(f"unknown TFLite variant {variant!r}; known: {', '.join(TFLITE_VARIANTS)}")
    height, width = (None, None) if size is None else size
    module = ServingModule(model, input_shape=(1, height, width, 3), bytes_signature=False)
    with tempfile.TemporaryDirectory(prefix="hdr_tflite_") as tmp:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        return {variant: tflite_converter(tmp, variant).convert() for variant in variants}


def tflite_ops(model_content):
    """Sorted names of the operators in a TFLite flatbuffer (custom ops, e.g. ``Flex*``, by name).

    Reads the flatbuffer only, so it also works on models that an interpreter cannot load.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_content))
    ops = set()
    for code in model.operatorCodes:
        name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")
        ops.add(code.customCode.decode() if name == "CUSTOM" and code.customCode is not None else name)
    return sorted(ops)


def non_builtin_ops(ops):
    """The ops of ``ops`` (from :func:`tflite_ops`) that are not TFLite builtins (Flex or custom)."""
    from tensorflow.lite.python import schema_py_generated as schema

    builtins = {k for k in vars(schema.BuiltinOperator) if not k.startswith("_")} - {"CUSTOM", "DELEGATE"}
    return sorted(op for op in ops if op not in builtins)


def tflite_interpreter(model_content=None, model_path=None, num_threads=None):
    """An ``ai_edge_litert`` Interpreter (``tf.lite.Interpreter`` if LiteRT is not installed)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - LiteRT is in requirements.txt
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_content=model_content, model_path=model_path, num_threads=num_threads)


def run_tflite(interpreter, ldr):
    """Runs the ``serving_default`` signature on ``ldr`` [1, H, W, 3] (any H, W for a dynamic model).

    Returns ``{"hdr": [1, H, W, 3], "inverse_crf": [1, 1024]}`` as NumPy arrays.
    """
    runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    ldr = np.ascontiguousarray(ldr, np.float32)
    signature = [int(s) for s in runner.get_input_details()[INPUT_KEY]["shape_signature"]]
    if len(signature) != ldr.ndim or any(s not in (-1, n) for s, n in zip(signature, ldr.shape)):
        # The runner resizes dynamic dimensions itself; a fixed one gets a clear message here.
        shape = tuple(None if s == -1 else s for s in signature)
        raise ValueError(f"this TFLite model takes ldr of shape {shape}, got {ldr.shape}")
    outputs = runner(**{INPUT_KEY: ldr})
    return {key: np.asarray(outputs[key]) for key in OUTPUT_KEYS}


def max_relative_error(actual, expected):
    """``max|actual - expected| / max|expected|`` (the absolute error on outputs scaled to max 1)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"shape mismatch: {actual.shape} vs {expected.shape}")
    return float(np.max(np.abs(actual - expected)) / max(float(np.max(np.abs(expected))), 1e-30))


def file_size(path):
    """Size in bytes of a file, or of all files under a directory."""
    path = pathlib.Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(os.path.getsize(p) for p in path.rglob("*") if p.is_file())
