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

Modules: :mod:`~hdr_keras.export.serving` (signatures, request checks), :mod:`~hdr_keras.export.savedmodel`,
:mod:`~hdr_keras.export.tflite` (conversion, running, comparisons), :mod:`~hdr_keras.export.client`
(TF Serving request bodies and responses); their public names are imported here.
"""

from hdr_keras.export.client import (
    grpc_channel_options,
    parse_predict_response,
    parse_rest_response,
    predict_request,
    rest_bytes_request,
    rest_request,
)
from hdr_keras.export.savedmodel import export_savedmodel
from hdr_keras.export.serving import (
    BYTES_INPUT_KEY,
    BYTES_SIGNATURE_KEY,
    CURVE_INPUT_KEY,
    CURVE_SIGNATURE_KEY,
    DEFAULT_MAX_PIXELS,
    INPUT_KEY,
    MIN_SIDE,
    OUTPUT_KEYS,
    SIGNATURE_KEY,
    ServingModule,
    check_inverse_crf,
    check_ldr,
    check_request_size,
    declared_size,
    decode_image_bytes,
)
from hdr_keras.export.tflite import (
    DEFAULT_TFLITE_VARIANTS,
    TFLITE_VARIANTS,
    convert_tflite,
    file_size,
    max_relative_error,
    non_builtin_ops,
    parse_size,
    run_tflite,
    tflite_converter,
    tflite_interpreter,
    tflite_ops,
)
