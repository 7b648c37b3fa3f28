"""The serving signatures of a SingleHDR and the checks that refuse a bad request before the model runs.

:class:`ServingModule` holds the ``tf.function`` s that both the SavedModel and the TFLite export
trace; :func:`check_ldr`, :func:`check_inverse_crf` and :func:`check_request_size` are the request
checks; :func:`decode_image_bytes` and :func:`declared_size` read encoded images as
:func:`hdr_keras.io.read_ldr` does, the size from the header before anything is decoded.
"""

import tensorflow as tf

SIGNATURE_KEY = "serving_default"
BYTES_SIGNATURE_KEY = "serving_bytes"
INPUT_KEY = "ldr"
BYTES_INPUT_KEY = "image_bytes"
OUTPUT_KEYS = ("hdr", "inverse_crf")
CURVE_SIGNATURE_KEY = "serving_curve"
CURVE_INPUT_KEY = "inverse_crf"
DEFAULT_MAX_PIXELS = 16_000_000
"""Default cap on the pixels (summed over the images) of one request: 16 MP."""
MIN_SIDE = 8
"""Smallest height and width a SavedModel serves (as :func:`hdr_keras.io.read_ldr` reads by default)."""

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_BMP_MAGIC = b"BM"
_GIF_MAGIC = b"GIF8"


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
    shaped = tf.debugging.Assert(rgb, [f"{name}: expected images of shape [N, H, W, 3]; got shape", shape], summarize=8)
    with tf.control_dependencies([shaped]):  # the reductions run after the rank check, never before it
        finite = tf.reduce_all(tf.math.is_finite(ldr))
        in_range = tf.reduce_all(tf.logical_and(ldr >= 0.0, ldr <= 1.0))
        low, high = tf.reduce_min(ldr), tf.reduce_max(ldr)

    def unless(earlier, condition):
        return tf.logical_or(tf.logical_not(earlier), condition)

    passed = [rgb]
    for condition in (sized, small, finite):
        passed.append(tf.logical_and(passed[-1], condition))
    return [
        shaped,
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
