"""Deployment exports of :class:`~hdr_keras.models.SingleHDR`: SavedModel (TF Serving) and TFLite.

SavedModel (``export_dir/<version>/``, the layout TF Serving loads), two signatures:

- ``serving_default``: ``ldr`` float32 [N, H, W, 3] in [0, 1], any N, H and W ->
  ``hdr`` float32 [N, H, W, 3] (linear radiance, >= 0) and ``inverse_crf`` float32 [N, 1024].
- ``serving_bytes``: ``image_bytes`` string [N] (encoded JPEG / PNG / BMP / GIF; all images of
  one request the same size) -> the same outputs, decoded as :func:`hdr_keras.io.read_ldr`
  does (see :func:`decode_image_bytes`) except that EXIF orientation is not applied.

TFLite: the same computation with batch 1, ``ldr`` [1, H, W, 3] (H and W dynamic unless a size
is fixed), one ``serving_default`` signature, TFLite builtin ops only (no Flex / Select TF
ops, so the Python LiteRT runtime and phones run it without the Flex delegate). Variants:
``fp32``; ``fp16`` (float16 weights, float32 compute); ``int8`` (dynamic-range quantisation:
int8 weights, float32 activations quantised on the fly).

Client helpers build the TF Serving request bodies (REST JSON in row ``instances`` and columnar
``inputs`` forms, gRPC ``PredictRequest``) and decode the responses.
"""

import base64
import os
import pathlib
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from hdr_keras import pretrained

SIGNATURE_KEY = "serving_default"
BYTES_SIGNATURE_KEY = "serving_bytes"
INPUT_KEY = "ldr"
BYTES_INPUT_KEY = "image_bytes"
OUTPUT_KEYS = ("hdr", "inverse_crf")
TFLITE_VARIANTS = ("fp32", "fp16", "int8")

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


# --------------------------------------------------------------------------- serving module


def decode_image_bytes(data):
    """One encoded image (scalar string tensor) -> float32 [H, W, 3] in [0, 1], RGB.

    Decodes as :func:`hdr_keras.io.read_ldr` does, bit for bit on PNG, JPEG and BMP: PNG at 16
    bits divided by 65535 (an 8-bit PNG decodes to ``v * 257``, so that is exactly ``v / 255``),
    JPEG with the accurate integer IDCT (Pillow's), other formats (BMP, GIF: first frame) at
    8 bits divided by 255. Grey is repeated to 3 channels and alpha dropped. Unlike read_ldr,
    EXIF orientation is not applied: send pixels in displayed orientation.
    """

    def png():
        return tf.cast(tf.io.decode_png(data, channels=3, dtype=tf.uint16), tf.float32) / 65535.0

    def jpeg():
        image = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
        return tf.cast(image, tf.float32) / 255.0

    def other():
        image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
        return tf.cast(image, tf.float32) / 255.0

    head = tf.strings.substr(data, 0, len(_PNG_MAGIC))
    is_png = tf.equal(head, _PNG_MAGIC)
    is_jpeg = tf.equal(tf.strings.substr(head, 0, len(_JPEG_MAGIC)), _JPEG_MAGIC)
    image = tf.cond(is_png, png, lambda: tf.cond(is_jpeg, jpeg, other))
    return tf.ensure_shape(image, [None, None, 3])


class ServingModule(tf.Module):
    """A ``tf.Module`` with the serving signatures of a built SingleHDR as ``tf.function`` s.

    ``serve(ldr)`` takes float32 ``ldr`` of ``input_shape`` (default [None, None, None, 3]) and
    returns ``{"hdr", "inverse_crf"}`` with BatchNorm in inference mode; ``serve_bytes`` (only
    with ``bytes_signature``) takes string [None] encoded images.

    Only the ``tf.Variable`` s that the traced functions read are tracked (``model_variables``),
    not the Keras model object: a SavedModel that tracks the Keras 3 variable objects converts to
    a TFLite model whose variables are not frozen (``VAR_HANDLE`` / ``READ_VARIABLE`` ops) and
    that fails at run time, while this one freezes to constants.
    """

    def __init__(self, model, input_shape=(None, None, None, 3), bytes_signature=True, name=None):
        super().__init__(name=name)

        def serve(ldr):
            outputs = model(ldr, training=False)
            return {key: tf.identity(outputs[key], name=key) for key in OUTPUT_KEYS}

        def serve_bytes(image_bytes):
            spec = tf.TensorSpec([None, None, 3], tf.float32)
            return self.serve(tf.map_fn(decode_image_bytes, image_bytes, fn_output_signature=spec))

        self.serve = tf.function(
            serve, input_signature=[tf.TensorSpec(list(input_shape), tf.float32, name=INPUT_KEY)], autograph=False
        )
        functions = [self.serve]
        if bytes_signature:
            self.serve_bytes = tf.function(
                serve_bytes, input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT_KEY)], autograph=False
            )
            functions.append(self.serve_bytes)
        variables = {}
        for function in functions:
            for variable in function.get_concrete_function().variables:
                variables.setdefault(id(variable), variable)
        self.model_variables = list(variables.values())

    def signatures(self):
        """``{signature key: concrete function}`` for ``tf.saved_model.save``."""
        signatures = {SIGNATURE_KEY: self.serve.get_concrete_function()}
        if hasattr(self, "serve_bytes"):
            signatures[BYTES_SIGNATURE_KEY] = self.serve_bytes.get_concrete_function()
        return signatures


def export_savedmodel(model, export_dir, version=1, bytes_signature=True, overwrite=False):
    """Writes ``model`` as a SavedModel at ``export_dir/<version>/``; returns that path.

    ``version`` must be a positive integer (TF Serving loads numeric subdirectories only and
    serves the highest by default). An existing version directory raises FileExistsError
    unless ``overwrite``.
    """
    version = int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    path = pathlib.Path(export_dir) / str(version)
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} already exists (pass overwrite=True / --overwrite to replace it)")
        shutil.rmtree(path)
    module = ServingModule(model, bytes_signature=bytes_signature)
    tf.saved_model.save(module, str(path), signatures=module.signatures())
    return path


# --------------------------------------------------------------------------- weights


class MissingWeightsError(ValueError):
    """No weights given, none shipped for the preset, and random weights not allowed."""


def resolve_weights(preset, weights=None, allow_random_weights=False):
    """The weights file to export: ``weights`` if given, else the preset's shipped weights.

    Returns None (random initial weights) only with ``allow_random_weights``; otherwise a
    preset without shipped weights raises :class:`MissingWeightsError` saying what to pass.
    A given ``weights`` file that does not exist raises FileNotFoundError naming it.
    """
    if weights:
        weights = pathlib.Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: weights file not found")
        return weights
    shipped = pretrained.shipped_weights(preset)
    if shipped is not None:
        return shipped
    if allow_random_weights:
        return None
    raise MissingWeightsError(
        f"no weights are shipped for preset {preset!r} (expected {pretrained.WEIGHTS_DIR / (preset + '.weights.h5')}); "
        "pass --weights PATH to a .weights.h5 file of the whole SingleHDR, or --allow_random_weights "
        "for a smoke test with random initial weights (its outputs are meaningless)"
    )


# --------------------------------------------------------------------------- TFLite


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


def tflite_converter(saved_model_dir, variant="fp32"):
    """A ``TFLiteConverter`` for the ``serving_default`` signature of a SavedModel, builtin ops only."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[SIGNATURE_KEY])
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


def convert_tflite(model, variants=TFLITE_VARIANTS, size=None):
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


# --------------------------------------------------------------------------- serving clients


def rest_request(ldr, form="instances", signature_name=SIGNATURE_KEY):
    """TF Serving REST ``:predict`` body (a JSON-ready dict) for ``ldr`` [N, H, W, 3].

    ``form="instances"`` (row format: one [H, W, 3] list per image; the response has
    ``"predictions": [{"hdr": ..., "inverse_crf": ...}, ...]``) or ``"inputs"`` (columnar:
    ``{"ldr": [N, H, W, 3]}``; the response has ``"outputs": {"hdr": ..., "inverse_crf": ...}``).
    """
    ldr = np.asarray(ldr, np.float32)
    if ldr.ndim != 4 or ldr.shape[-1] != 3:
        raise ValueError(f"ldr must be [N, H, W, 3], got {ldr.shape}")
    values = ldr.tolist()
    if form == "instances":
        return {"signature_name": signature_name, "instances": values}
    if form == "inputs":
        return {"signature_name": signature_name, "inputs": {INPUT_KEY: values}}
    raise ValueError(f"form must be 'instances' or 'inputs', got {form!r}")


def rest_bytes_request(images):
    """REST body for the ``serving_bytes`` signature from encoded images (a list of bytes)."""
    return {
        "signature_name": BYTES_SIGNATURE_KEY,
        "instances": [{"b64": base64.b64encode(data).decode("ascii")} for data in images],
    }


def parse_rest_response(body):
    """A REST ``:predict`` response (parsed JSON) -> ``{"hdr": [N, H, W, 3], "inverse_crf": [N, 1024]}``."""
    if "error" in body:
        raise RuntimeError(f"TF Serving error: {body['error']}")
    if "predictions" in body:
        rows = body["predictions"]
        return {key: np.asarray([row[key] for row in rows], np.float32) for key in OUTPUT_KEYS}
    return {key: np.asarray(body["outputs"][key], np.float32) for key in OUTPUT_KEYS}


def predict_request(ldr=None, model_name="hdr", signature_name=SIGNATURE_KEY, version=None, images=None):
    """gRPC ``tensorflow.serving.PredictRequest`` for ``ldr`` [N, H, W, 3] float32 or encoded ``images``.

    Needs ``tensorflow-serving-api`` (install it with ``pip install --no-deps``: it depends on
    the ``tensorflow`` package, which would replace ``tensorflow-cpu``).
    """
    from tensorflow_serving.apis import predict_pb2

    if (ldr is None) == (images is None):
        raise ValueError("pass exactly one of ldr and images")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    if version is not None:
        request.model_spec.version.value = int(version)
    if images is not None:
        request.model_spec.signature_name = BYTES_SIGNATURE_KEY
        request.inputs[BYTES_INPUT_KEY].CopyFrom(tf.make_tensor_proto(list(images), dtype=tf.string))
    else:
        request.model_spec.signature_name = signature_name
        request.inputs[INPUT_KEY].CopyFrom(tf.make_tensor_proto(np.asarray(ldr, np.float32)))
    return request


def parse_predict_response(response):
    """gRPC ``PredictResponse`` -> ``{"hdr": ..., "inverse_crf": ...}`` NumPy arrays."""
    return {key: tf.make_ndarray(response.outputs[key]) for key in OUTPUT_KEYS}


def grpc_channel_options(max_message_bytes=256 << 20):
    """gRPC channel options raising the client's 4 MiB receive limit (an HDR of 1 MP is 12 MB)."""
    return [
        ("grpc.max_send_message_length", int(max_message_bytes)),
        ("grpc.max_receive_message_length", int(max_message_bytes)),
    ]


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
