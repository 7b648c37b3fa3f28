"""Deployment exports of :class:`~hdr_keras.models.SingleHDR`: SavedModel (TF Serving) and TFLite.

SavedModel (``export_dir/<version>/``, the layout TF Serving loads), three signatures:

- ``serving_default``: ``ldr`` float32 [N, H, W, 3] in [0, 1], any N, H and W ->
  ``hdr`` float32 [N, H, W, 3] (linear radiance, >= 0) and ``inverse_crf`` float32 [N, 1024].
  A request that is empty, has a side below :data:`MIN_SIDE`, more than ``max_pixels`` pixels
  in all, NaN or Inf, or values outside [0, 1] fails with InvalidArgument before the model runs
  (:func:`check_ldr`).
- ``serving_bytes``: ``image_bytes`` string [N] (encoded JPEG / PNG / BMP / GIF; all images of
  one request the same size) -> the same outputs, decoded as :func:`hdr_keras.io.read_ldr`
  does (see :func:`decode_image_bytes`) except that EXIF orientation is not applied. The sizes
  the images declare in their headers are read before anything is decoded: a request above
  ``max_pixels`` in all (fixed at export, default :data:`DEFAULT_MAX_PIXELS`) or in another
  format fails with InvalidArgument, so a tiny file declaring a huge image cannot exhaust memory.
- ``serving_curve``: ``ldr`` as ``serving_default`` and ``inverse_crf`` float32 [N, 1024] (a camera
  profile's curve, :mod:`hdr_keras.profiles`: non-decreasing, 0 at 0, 1 at 1) -> the same outputs,
  the Linearization-Net skipped: the Dequantization and Hallucination stages take the given curve,
  which comes back as ``inverse_crf``. Bad images fail as in ``serving_default``, and so does a
  curve that is not finite, in [0, 1] and non-decreasing, or not one per image (:func:`check_inverse_crf`).

:func:`export_savedmodel` writes a version into a hidden sibling folder and swaps it in with a
rename, so a kill at any moment leaves the old version or the new one, complete.

TFLite: the same computation with batch 1, ``ldr`` [1, H, W, 3] (H and W dynamic unless a size
is fixed), one ``serving_default`` signature, TFLite builtin ops only (no Flex / Select TF
ops, so the Python LiteRT runtime and phones run it without the Flex delegate). Variants:
``fp32``; ``fp16`` (float16 weights, float32 compute); ``int8`` (dynamic-range quantisation:
int8 weights, float32 activations quantised on the fly), written only on request: with the
shipped weights its ``hdr`` is far off (README, "Accuracy against Keras").

Client helpers build the TF Serving request bodies (REST JSON in row ``instances`` and columnar
``inputs`` forms, gRPC ``PredictRequest``) and decode the responses.
"""

import base64
import ctypes
import errno
import os
import pathlib
import shutil
import tempfile
import uuid

import numpy as np
import tensorflow as tf

from hdr_keras import filelock

SIGNATURE_KEY = "serving_default"
BYTES_SIGNATURE_KEY = "serving_bytes"
INPUT_KEY = "ldr"
BYTES_INPUT_KEY = "image_bytes"
OUTPUT_KEYS = ("hdr", "inverse_crf")
CURVE_SIGNATURE_KEY = "serving_curve"
CURVE_INPUT_KEY = "inverse_crf"
TFLITE_VARIANTS = ("fp32", "fp16", "int8")
DEFAULT_TFLITE_VARIANTS = ("fp32", "fp16")
"""What the export writes unless told otherwise: the variants that are usable with the shipped weights."""
DEFAULT_MAX_PIXELS = 16_000_000
"""Default cap on the pixels (summed over the images) of one request: 16 MP."""
MIN_SIDE = 8
"""Smallest height and width a SavedModel serves (as :func:`hdr_keras.io.read_ldr` reads by default)."""

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_BMP_MAGIC = b"BM"
_GIF_MAGIC = b"GIF8"


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


def declared_size(data):
    """(height, width) int64 [2] an encoded image (scalar string) declares, without decoding it.

    Read from the PNG IHDR chunk, the JPEG SOF marker (``tf.image.extract_jpeg_shape``), the
    BMP info header or the GIF logical screen; [-1, -1] for any other format.
    """
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 32), b"\0" * 32]), 0, 32)
    octets = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)

    def number(offset, count, big_endian):
        order = range(count) if big_endian else reversed(range(count))
        value = tf.constant(0, tf.int64)
        for i in order:
            value = value * 256 + octets[offset + i]
        return value

    def signed32(value):
        return tf.abs(tf.where(value >= 2**31, value - 2**32, value))

    def png():
        return tf.stack([number(20, 4, True), number(16, 4, True)])

    def jpeg():
        return tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)

    def bmp():
        return tf.stack([signed32(number(22, 4, False)), signed32(number(18, 4, False))])

    def gif():
        return tf.stack([number(8, 2, False), number(6, 2, False)])

    def unknown():
        return tf.constant([-1, -1], tf.int64)

    magics = (_PNG_MAGIC, _JPEG_MAGIC, _BMP_MAGIC, _GIF_MAGIC)
    matches = tf.stack([tf.equal(tf.strings.substr(data, 0, len(m)), m) for m in magics] + [True])
    index = tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)
    return tf.switch_case(index, [png, jpeg, bmp, gif, unknown])


def check_request_size(image_bytes, max_pixels=DEFAULT_MAX_PIXELS):
    """Assertions that ``image_bytes`` (string [N]) are PNG/JPEG/BMP/GIF declaring <= ``max_pixels`` in all.

    Only the headers are read. Run the decoding under ``tf.control_dependencies`` of the
    returned ops: a failing request raises InvalidArgument with the declared sizes.
    """
    sizes = tf.map_fn(declared_size, image_bytes, fn_output_signature=tf.TensorSpec([2], tf.int64))
    pixels = tf.reduce_sum(tf.minimum(sizes[:, 0] * sizes[:, 1], int(max_pixels) + 1))
    known = tf.reduce_all(sizes >= 0)
    return [
        tf.debugging.Assert(known, ["serving_bytes: an image is not a PNG, JPEG, BMP or GIF (unknown file signature)"]),
        tf.debugging.Assert(
            tf.logical_or(tf.logical_not(known), pixels <= int(max_pixels)),
            [
                f"serving_bytes: the images of this request declare more than {int(max_pixels)} pixels in all, "
                "this model's limit (send smaller images, or re-export with a larger --max_megapixels); "
                "declared (height, width) of each image:",
                sizes,
            ],
            summarize=32,
        ),
    ]


def check_ldr(ldr, max_pixels=DEFAULT_MAX_PIXELS, name=SIGNATURE_KEY):
    """Assertions that ``ldr`` [N, H, W, C] is a servable batch; exactly one fails for a bad one.

    In order: rank 4 with C = 3; N >= 1 and H, W >= :data:`MIN_SIDE`; N * H * W <=
    ``max_pixels``; every value finite; every value in [0, 1]. Each names the signature ``name``
    and what was received. Run the model under ``tf.control_dependencies`` of the returned ops: a
    failing request raises InvalidArgument and nothing else runs on it.
    """
    shape = tf.shape(ldr, out_type=tf.int64)
    padded = tf.concat([shape, tf.zeros([4], tf.int64)], 0)[:4]  # any rank: no op below fails
    rgb = tf.logical_and(tf.equal(tf.size(shape), 4), tf.equal(padded[3], 3))
    sized = tf.logical_and(padded[0] >= 1, tf.reduce_all(padded[1:3] >= MIN_SIDE))
    small = tf.reduce_prod(padded[:3]) <= int(max_pixels)
    finite = tf.reduce_all(tf.math.is_finite(ldr))
    in_range = tf.reduce_all(tf.logical_and(ldr >= 0.0, ldr <= 1.0))
    low, high = tf.reduce_min(ldr), tf.reduce_max(ldr)

    def unless(earlier, condition):
        return tf.logical_or(tf.logical_not(earlier), condition)

    passed = [rgb]
    for condition in (sized, small, finite):
        passed.append(tf.logical_and(passed[-1], condition))
    return [
        tf.debugging.Assert(rgb, [f"{name}: expected images of shape [N, H, W, 3]; got shape", shape], summarize=8),
        tf.debugging.Assert(
            unless(passed[0], sized),
            [f"{name}: expected at least one image of at least {MIN_SIDE}x{MIN_SIDE} pixels; got shape", shape],
            summarize=8,
        ),
        tf.debugging.Assert(
            unless(passed[1], small),
            [
                f"{name}: more than {int(max_pixels)} pixels in all, the limit of this model (send fewer or "
                "smaller images, or re-export with a larger --max_megapixels); got shape",
                shape,
            ],
            summarize=8,
        ),
        tf.debugging.Assert(unless(passed[2], finite), [f"{name}: NaN or Inf values in the images"]),
        tf.debugging.Assert(
            unless(passed[3], in_range),
            [
                f"{name}: values outside [0, 1] (send the photo divided by 255, or 65535 for 16 bits); got min",
                low,
                "max",
                high,
            ],
        ),
    ]


def check_inverse_crf(inverse_crf, count, name=CURVE_SIGNATURE_KEY):
    """Assertions that ``inverse_crf`` [N, 1024] holds one curve per image of a batch of ``count``:
    finite, in [0, 1] and non-decreasing (a camera profile's curve). Run under the control
    dependencies of :func:`check_ldr`'s ops, so that a bad batch is named first.
    """
    shape = tf.shape(inverse_crf, out_type=tf.int64)
    counted = tf.equal(shape[0], tf.cast(count, tf.int64))
    finite = tf.reduce_all(tf.math.is_finite(inverse_crf))
    valid = tf.reduce_all(tf.logical_and(inverse_crf >= 0.0, inverse_crf <= 1.0))
    valid = tf.logical_and(valid, tf.reduce_all(inverse_crf[:, 1:] >= inverse_crf[:, :-1]))
    return [
        tf.debugging.Assert(counted, [f"{name}: expected one inverse_crf per image; got", shape[0], "for", count]),
        tf.debugging.Assert(
            tf.logical_or(tf.logical_not(counted), tf.logical_and(finite, valid)),
            [f"{name}: inverse_crf must be finite, in [0, 1] and non-decreasing (the curve of a camera profile)"],
        ),
    ]


class ServingModule(tf.Module):
    """A ``tf.Module`` with the serving signatures of a built SingleHDR as ``tf.function`` s.

    ``serve(ldr)`` takes float32 ``ldr`` of ``input_shape`` (default [None, None, None, 3]) and
    returns ``{"hdr", "inverse_crf"}`` with BatchNorm in inference mode; ``serve_bytes`` (only
    with ``bytes_signature``) takes string [None] encoded images and refuses, before decoding,
    a request declaring more than ``max_pixels`` pixels in all (:func:`check_request_size`).
    With ``check_inputs``, the signatures refuse a bad ``ldr`` or curve before the model runs
    (:func:`check_ldr`, :func:`check_inverse_crf`; off for TFLite, whose builtin ops have no assertion).

    Only the ``tf.Variable`` s that the traced functions read are tracked (``model_variables``),
    not the Keras model object: a SavedModel that tracks the Keras 3 variable objects converts to
    a TFLite model whose variables are not frozen (``VAR_HANDLE`` / ``READ_VARIABLE`` ops) and
    that fails at run time, while this one freezes to constants.
    """

    def __init__(
        self,
        model,
        input_shape=(None, None, None, 3),
        bytes_signature=True,
        max_pixels=DEFAULT_MAX_PIXELS,
        check_inputs=False,
        name=None,
    ):
        super().__init__(name=name)

        def serve(ldr):
            if check_inputs:
                with tf.control_dependencies(check_ldr(ldr, max_pixels)):
                    ldr = tf.identity(ldr)
            outputs = model(ldr, training=False)
            return {key: tf.identity(outputs[key], name=key) for key in OUTPUT_KEYS}

        def serve_bytes(image_bytes):
            spec = tf.TensorSpec([None, None, 3], tf.float32)
            with tf.control_dependencies(check_request_size(image_bytes, max_pixels)):
                image_bytes = tf.identity(image_bytes)
            ldr = tf.map_fn(decode_image_bytes, image_bytes, fn_output_signature=spec)
            if check_inputs:  # the decoded sizes, named as this signature's
                with tf.control_dependencies(check_ldr(ldr, max_pixels, BYTES_SIGNATURE_KEY)):
                    ldr = tf.identity(ldr)
            return self.serve(ldr)

        self.serve = tf.function(
            serve, input_signature=[tf.TensorSpec(list(input_shape), tf.float32, name=INPUT_KEY)], autograph=False
        )
        functions = [self.serve]

        def serve_curve(ldr, inverse_crf):
            if check_inputs:
                with tf.control_dependencies(check_ldr(ldr, max_pixels, CURVE_SIGNATURE_KEY)):
                    ldr = tf.identity(ldr)
                    with tf.control_dependencies(check_inverse_crf(inverse_crf, tf.shape(ldr)[0])):
                        inverse_crf = tf.identity(inverse_crf)
            outputs = model(ldr, training=False, inverse_crf=inverse_crf)
            return {key: tf.identity(outputs[key], name=key) for key in OUTPUT_KEYS}

        self.serve_curve = tf.function(
            serve_curve,
            input_signature=[
                tf.TensorSpec(list(input_shape), tf.float32, name=INPUT_KEY),
                tf.TensorSpec([input_shape[0], 1024], tf.float32, name=CURVE_INPUT_KEY),
            ],
            autograph=False,
        )
        functions.append(self.serve_curve)
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
        signatures[CURVE_SIGNATURE_KEY] = self.serve_curve.get_concrete_function()
        if hasattr(self, "serve_bytes"):
            signatures[BYTES_SIGNATURE_KEY] = self.serve_bytes.get_concrete_function()
        return signatures


def export_savedmodel(
    model, export_dir, version=1, bytes_signature=True, overwrite=False, max_pixels=DEFAULT_MAX_PIXELS
):
    """Writes ``model`` as a SavedModel at ``export_dir/<version>/``; returns that path.

    ``version`` must be a positive integer (TF Serving loads numeric subdirectories only and
    serves the highest by default). An existing version directory raises FileExistsError
    unless ``overwrite``. ``max_pixels`` caps a request (see :class:`ServingModule`); the signatures
    refuse bad inputs (:func:`check_ldr`).

    The SavedModel is written to a hidden sibling ``.<version>.partial-<id>`` (which TF Serving
    ignores) and renamed into place; an existing version is swapped with it in one atomic
    exchange (``renameat2(RENAME_EXCHANGE)``), so a kill at any moment leaves the old version or
    the new one, complete, never an absent or half-written one. Exports of one version are
    serialised by a lock file ``.<version>.lock``; hidden siblings that a killed export left
    behind are removed first.
    """
    version = int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    export_dir = pathlib.Path(export_dir)
    path = export_dir / str(version)
    export_dir.mkdir(parents=True, exist_ok=True)
    with filelock.hold(export_dir / f".{version}.lock"):  # one export of a version at a time
        _recover_version(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists (pass overwrite=True / --overwrite to replace it)")
        partial = export_dir / f".{version}.partial-{uuid.uuid4().hex[:12]}"
        try:
            module = ServingModule(model, bytes_signature=bytes_signature, max_pixels=max_pixels, check_inputs=True)
            tf.saved_model.save(module, str(partial), signatures=module.signatures())
            _swap_in(partial, path)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return path


def _recover_version(path):
    """Undoes what a killed :func:`export_savedmodel` of ``path`` left: restores ``path`` from a
    ``.<version>.old-*`` sibling if it is missing (a kill between the two renames of the fallback
    swap), then removes the hidden ``.partial-*`` / ``.old-*`` siblings."""
    siblings = sorted(path.parent.glob(f".{path.name}.old-*")) + sorted(path.parent.glob(f".{path.name}.partial-*"))
    for sibling in siblings:
        if ".old-" in sibling.name and not path.exists():
            os.rename(sibling, path)
        else:
            shutil.rmtree(sibling, ignore_errors=True)


def _rename_exchange(a, b):
    """Atomically swaps the paths ``a`` and ``b`` (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(new, path):
    """Moves the complete folder ``new`` to ``path``; an old ``path`` ends up at ``new`` (then removed)."""
    if not path.exists():
        os.rename(new, path)
        return
    if _rename_exchange(new, path):
        return
    old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
    os.rename(path, old)  # a kill here leaves `old`, which _recover_version moves back
    os.rename(new, path)
    shutil.rmtree(old, ignore_errors=True)


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
