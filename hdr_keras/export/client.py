"""TF Serving clients: REST JSON bodies (row ``instances`` and columnar ``inputs`` forms), gRPC
``PredictRequest`` s, and their responses decoded to NumPy."""

import base64

import numpy as np
import tensorflow as tf

from hdr_keras.export.serving import BYTES_INPUT_KEY, BYTES_SIGNATURE_KEY, INPUT_KEY, OUTPUT_KEYS, SIGNATURE_KEY


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

