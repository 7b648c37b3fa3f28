"""Deployment exports (export_savedmodel.py, hdr_keras/export.py) checked against the Keras model.

One export per module: random `lite` weights saved to a file, then the real CLI writes the
SavedModel and the three TFLite variants. Everything short of a TF Serving binary is tested:
the SavedModel reloaded with tf.saved_model.load, `saved_model_cli show --all`, REST JSON bodies
(decoded as TF Serving does) and gRPC PredictRequest bodies (official protos, through an
in-process gRPC PredictionService), and the TFLite files under the LiteRT interpreter.
"""

import base64
import concurrent.futures
import io
import json
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from hdr_keras import export
from hdr_keras import io as hio
from hdr_keras import pretrained
from hdr_keras.pretrained import build_model

pytestmark = pytest.mark.xdist_group("export")  # the module's export runs once, on one worker (pytest.ini)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZES = [(17, 23), (45, 31), (63, 97)]  # odd, and not multiples of the nets' 16 / 32
VERSION = 3
SERVING_API_REASON = (
    "tensorflow-serving-api not installed (pip install --no-deps 'tensorflow-serving-api==2.21.*': "
    "it depends on the full tensorflow package)"
)


def _rel(actual, expected):
    return export.max_relative_error(actual, expected)


@pytest.fixture(scope="module")
def model():
    """Random `lite` model; the EMoR head gets random weights too (it may start at zero), so the
    estimated curve depends on the image and the curve path is compared as well."""
    keras.utils.set_random_seed(7)
    model = build_model("lite")
    rng = np.random.default_rng(7)
    for variable in model.linearization.dense.weights:
        variable.assign(rng.normal(0.0, 0.05, variable.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module", autouse=True)
def cli_export(model, tmp_path_factory):
    """Starts export_savedmodel.py on the module's random weights, in the background.

    The export takes most of this module's time; the tests that do not need it (first in this
    file) run meanwhile. ``exported`` waits for it.
    """
    tmp = tmp_path_factory.mktemp("export")
    weights = tmp / "lite_random.weights.h5"
    model.save_weights(weights)
    export_dir = tmp / "hdr_lite"
    command = [
        sys.executable,
        str(ROOT / "export_savedmodel.py"),
        "--preset=lite",
        f"--weights={weights}",
        f"--export_dir={export_dir}",
        f"--version={VERSION}",
        "--tflite=fp32,fp16,int8",
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process, export_dir
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def exported(cli_export):
    """The finished CLI export: its paths and stdout."""
    process, export_dir = cli_export
    stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stdout[-3000:] + stderr[-5000:]
    tflite_dir = export_dir / "tflite"
    return {
        "savedmodel": export_dir / str(VERSION),
        "tflite": {v: tflite_dir / f"hdr_lite_{v}.tflite" for v in export.TFLITE_VARIANTS},
        "stdout": stdout,
    }


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported["savedmodel"]))


@pytest.fixture(scope="module")
def reference(model):
    """{(H, W): (ldr [2, H, W, 3], Keras outputs)} for the three odd sizes."""
    rng = np.random.default_rng(0)
    cases = {}
    for height, width in SIZES:
        ldr = rng.random((2, height, width, 3), dtype=np.float32)
        outputs = model(ldr, training=False)
        cases[(height, width)] = (ldr, {k: np.asarray(outputs[k]) for k in export.OUTPUT_KEYS})
    return cases


# --------------------------------------------------------------- while the CLI export runs


def test_tflite_fixed_size(model):
    content = export.convert_tflite(model, "fp32", size=export.parse_size("24x40"))["fp32"]
    interpreter = export.tflite_interpreter(model_content=content)
    runner = interpreter.get_signature_runner("serving_default")
    assert list(runner.get_input_details()["ldr"]["shape_signature"]) == [1, 24, 40, 3]
    ldr = np.random.default_rng(5).random((1, 24, 40, 3), dtype=np.float32)
    outputs = export.run_tflite(interpreter, ldr)
    expected = model(ldr, training=False)
    for key in export.OUTPUT_KEYS:
        assert _rel(outputs[key], expected[key]) <= 1e-4, key
    with pytest.raises(ValueError, match=r"\(1, 24, 40, 3\)"):
        export.run_tflite(interpreter, np.zeros((1, 25, 40, 3), np.float32))


def test_parse_size():
    assert export.parse_size("") is None and export.parse_size(None) is None
    assert export.parse_size("512x768") == (512, 768)
    for bad in ("512", "0x4", "ax4"):
        with pytest.raises(ValueError):
            export.parse_size(bad)


def test_builtins_only_conversion_fails_loudly_and_flex_ops_are_listed(tmp_path):
    """A Select TF op makes the export's converter fail; converted with Select ops it is listed."""

    class Det(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 2, 2], tf.float32, name="ldr")])
        def serve(self, x):
            return {"hdr": tf.linalg.det(x)}

    module = Det()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve.get_concrete_function()})
    with pytest.raises(Exception, match="MatrixDeterminant"):
        export.tflite_converter(tmp_path, "fp32").convert()
    converter = export.tflite_converter(tmp_path, "fp32")
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    ops = export.tflite_ops(converter.convert())
    assert export.non_builtin_ops(ops) == ["FlexMatrixDeterminant"]


def test_cli_help_documents_random_weights_flag():
    result = subprocess.run(
        [sys.executable, str(ROOT / "export_savedmodel.py"), "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert "--[no]allow_random_weights" in result.stdout and "smoke test" in result.stdout


def test_cli_stops_on_missing_weights_file(tmp_path):
    missing = tmp_path / "nope.weights.h5"
    command = [sys.executable, str(ROOT / "export_savedmodel.py"), f"--weights={missing}", f"--export_dir={tmp_path}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert f"{missing}: weights file not found" in result.stderr
    assert not (tmp_path / "1").exists()


def test_resolve_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "shipped_weights", lambda preset: None)
    with pytest.raises(pretrained.MissingWeightsError, match="--allow_random_weights") as info:
        pretrained.resolve_weights("lite", random_flag="--allow_random_weights")
    assert "--weights" in str(info.value) and "'lite'" in str(info.value)
    assert pretrained.resolve_weights("lite", allow_random=True) is None
    shipped = tmp_path / "lite.weights.h5"
    shipped.write_bytes(b"x")
    monkeypatch.setattr(pretrained, "shipped_weights", lambda preset: shipped)
    assert pretrained.resolve_weights("lite") == shipped
    other = tmp_path / "other.weights.h5"
    other.write_bytes(b"x")
    assert pretrained.resolve_weights("lite", other, allow_random=True) == other


def test_export_refuses_to_overwrite_a_version(model, tmp_path):
    (tmp_path / "1").mkdir()
    with pytest.raises(FileExistsError, match="overwrite"):
        export.export_savedmodel(model, tmp_path, 1)
    with pytest.raises(ValueError, match="positive"):
        export.export_savedmodel(model, tmp_path, 0)


def test_cli_writes_the_serving_layout_and_verifies(exported):
    path = exported["savedmodel"]
    assert (path / "saved_model.pb").is_file() and (path / "variables" / "variables.index").is_file()
    for variant, tflite in exported["tflite"].items():
        assert tflite.is_file() and tflite.stat().st_size > 0, variant
    out = exported["stdout"]
    assert "FAILED" not in out
    for name in ("savedmodel", "fp32", "fp16", "int8"):
        assert re.search(rf"^\s+{name}\s+\S+", out, re.M), out


# --------------------------------------------------------------------------- SavedModel


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_savedmodel_matches_keras(loaded, reference, size):
    ldr, expected = reference[size]
    outputs = loaded.signatures[export.SIGNATURE_KEY](ldr=tf.constant(ldr))
    assert set(outputs) == set(export.OUTPUT_KEYS)
    for key in export.OUTPUT_KEYS:
        assert outputs[key].shape == expected[key].shape
        assert _rel(outputs[key], expected[key]) <= 1e-5, key


def test_saved_model_cli_lists_dynamic_signature(exported):
    command = [
        sys.executable,
        "-m",
        "tensorflow.python.tools.saved_model_cli",
        "show",
        "--dir",
        str(exported["savedmodel"]),
        "--all",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    blocks = dict(re.findall(r"signature_def\['(\w+)'\]:\n(.*?)(?=\nsignature_def\[|\n\S|\Z)", out, re.S))
    default = blocks[export.SIGNATURE_KEY]
    assert re.search(r"inputs\['ldr'\] tensor_info:\s+dtype: DT_FLOAT\s+shape: \(-1, -1, -1, 3\)", default)
    assert re.search(r"outputs\['hdr'\] tensor_info:\s+dtype: DT_FLOAT\s+shape: \(-1, -1, -1, 3\)", default)
    assert re.search(r"outputs\['inverse_crf'\] tensor_info:\s+dtype: DT_FLOAT\s+shape: \(-1, 1024\)", default)
    assert "Method name is: tensorflow/serving/predict" in default
    encoded = blocks[export.BYTES_SIGNATURE_KEY]
    assert re.search(r"inputs\['image_bytes'\] tensor_info:\s+dtype: DT_STRING\s+shape: \(-1\)", encoded)


def _encode(image_u8, fmt):
    buf = io.BytesIO()
    Image.fromarray(image_u8).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def test_bytes_signature_decodes_like_read_ldr(loaded, model, tmp_path):
    rng = np.random.default_rng(1)
    images = [_encode(rng.integers(0, 256, (29, 41, 3), dtype=np.uint8), fmt) for fmt in ("PNG", "JPEG")]
    decoded = []
    for i, data in enumerate(images):
        path = tmp_path / f"image{i}"
        path.write_bytes(data)
        decoded.append(hio.read_ldr(path))
        np.testing.assert_array_equal(export.decode_image_bytes(tf.constant(data)).numpy(), decoded[-1])
    expected = model(np.stack(decoded), training=False)
    outputs = loaded.signatures[export.BYTES_SIGNATURE_KEY](image_bytes=tf.constant(images))
    for key in export.OUTPUT_KEYS:
        assert _rel(outputs[key], expected[key]) <= 1e-5, key


def _one_pixel(value, shape=(1, 16, 16, 3)):
    ldr = np.full(shape, 0.5, np.float32)
    ldr[0, 3, 5, 1] = value
    return ldr


BAD_TENSORS = {  # case: (ldr, what the InvalidArgument error says after "serving_default: ")
    "nan": (_one_pixel(np.nan), "NaN or Inf values in the images"),
    "inf": (_one_pixel(np.inf), "NaN or Inf values in the images"),
    "negative": (_one_pixel(-0.25), "values outside [0, 1]"),
    "above_one": (_one_pixel(255.0), "values outside [0, 1]"),
    "empty_batch": (np.zeros((0, 16, 16, 3)), "expected at least one image of at least 8x8 pixels; got shape] [0 16 16 3]"),
    "zero_height": (np.zeros((1, 0, 16, 3)), "expected at least one image of at least 8x8 pixels"),
    "1x1": (np.zeros((1, 1, 1, 3)), "expected at least one image of at least 8x8 pixels; got shape] [1 1 1 3]"),
    "1x20000": (np.zeros((1, 1, 20000, 3)), "expected at least one image of at least 8x8 pixels"),
    "four_channels": (np.zeros((1, 16, 16, 4)), "expected images of shape [N, H, W, 3]; got shape] [1 16 16 4]"),
    "grey": (np.zeros((1, 16, 16, 1)), "expected images of shape [N, H, W, 3]"),
    "rank_3": (np.zeros((16, 16, 3)), "expected images of shape [N, H, W, 3]; got shape] [16 16 3]"),
    "above_16_mp": (np.zeros((1, 8, 2_000_001, 3)), "more than 16000000 pixels in all"),
}


@pytest.mark.parametrize("case", BAD_TENSORS)
def test_savedmodel_refuses_bad_tensors_with_invalid_argument(loaded, case):
    ldr, message = BAD_TENSORS[case]
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(f"{export.SIGNATURE_KEY}: {message}")):
        loaded.signatures[export.SIGNATURE_KEY](ldr=tf.constant(ldr, tf.float32))


_GRID = np.linspace(0.0, 1.0, 1024, dtype=np.float32)[None]
BAD_CURVES = {  # case: (ldr, inverse_crf, what the error says after "serving_curve: ")
    "nan_curve": (_one_pixel(0.5), _GRID * np.nan, "inverse_crf must be finite, in [0, 1] and non-decreasing"),
    "decreasing_curve": (_one_pixel(0.5), _GRID[:, ::-1], "inverse_crf must be finite, in [0, 1] and non-decreasing"),
    "curve_above_one": (_one_pixel(0.5), 2 * _GRID, "inverse_crf must be finite, in [0, 1] and non-decreasing"),
    "two_curves_one_image": (_one_pixel(0.5), np.concatenate([_GRID, _GRID]), "expected one inverse_crf per image"),
    "nan_image": (_one_pixel(np.nan), _GRID, "NaN or Inf values in the images"),
}


@pytest.mark.parametrize("case", BAD_CURVES)
def test_serving_curve_refuses_bad_images_and_curves(loaded, case):
    ldr, curve, message = BAD_CURVES[case]
    signature = loaded.signatures[export.CURVE_SIGNATURE_KEY]
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(f"{export.CURVE_SIGNATURE_KEY}: {message}")):
        signature(ldr=tf.constant(ldr), inverse_crf=tf.constant(np.ascontiguousarray(curve), tf.float32))


def test_savedmodel_refuses_other_dtypes_and_tiny_encoded_images(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a float tensor but is a uint8 tensor"):
        loaded.signatures[export.SIGNATURE_KEY](ldr=tf.zeros([1, 16, 16, 3], tf.uint8))
    tiny = _encode(np.zeros((1, 1, 3), np.uint8), "PNG")
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape("serving_bytes: expected at least one image")):
        loaded.signatures[export.BYTES_SIGNATURE_KEY](image_bytes=tf.constant([tiny]))


def test_savedmodel_extreme_valid_inputs_give_finite_non_negative_hdr(loaded):
    """The smallest image, black, white and a 8 x 600 strip: served, never a NaN image."""
    strip = np.random.default_rng(6).random((1, 8, 600, 3), dtype=np.float32)
    for ldr in (np.zeros((2, 8, 8, 3), np.float32), np.ones((1, 8, 8, 3), np.float32), strip):
        outputs = loaded.signatures[export.SIGNATURE_KEY](ldr=tf.constant(ldr))
        hdr = outputs["hdr"].numpy()
        assert hdr.shape == ldr.shape and np.all(np.isfinite(hdr)) and hdr.min() >= 0
        assert np.all(np.isfinite(outputs["inverse_crf"].numpy()))


# --------------------------------------------------------------------------- TF Serving bodies


def _from_json(value, dtype):
    """A JSON tensor value -> ndarray of ``dtype``; ``{"b64": ...}`` objects become bytes."""
    if dtype == tf.string:

        def unwrap(v):
            if isinstance(v, dict):
                return base64.b64decode(v["b64"])
            if isinstance(v, list):
                return [unwrap(x) for x in v]
            return v.encode()

        return np.array(unwrap(value), dtype=object)
    return np.asarray(value, dtype=dtype.as_numpy_dtype)


def _rest_predict(body, loaded):
    """What TF Serving's REST ``:predict`` does with a JSON body (api_rest.md), on the SavedModel."""
    body = json.loads(json.dumps(body))  # the request crosses the wire as text
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    (single,) = specs if len(specs) == 1 else (None,)
    if "instances" in body:
        rows = body["instances"]
        named = all(isinstance(r, dict) and "b64" not in r for r in rows)
        columns = {k: [r[k] for r in rows] for k in specs} if named else {single: rows}
    else:
        columns = body["inputs"]
        if not (isinstance(columns, dict) and set(columns) <= set(specs)):
            columns = {single: columns}
    tensors = {k: tf.constant(_from_json(v, specs[k].dtype), dtype=specs[k].dtype) for k, v in columns.items()}
    outputs = {k: v.numpy() for k, v in signature(**tensors).items()}
    if "instances" in body:
        count = len(body["instances"])
        response = {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(count)]}
    else:
        response = {"outputs": {k: v.tolist() for k, v in outputs.items()}}
    return json.loads(json.dumps(response))


@pytest.mark.parametrize("form", ["instances", "inputs"])
def test_rest_bodies(loaded, reference, form):
    ldr, expected = reference[SIZES[0]]
    body = export.rest_request(ldr, form=form)
    assert body["signature_name"] == "serving_default"
    if form == "instances":
        assert np.asarray(body["instances"]).shape == ldr.shape
    else:
        assert np.asarray(body["inputs"]["ldr"]).shape == ldr.shape
    response = _rest_predict(body, loaded)
    assert ("predictions" if form == "instances" else "outputs") in response
    outputs = export.parse_rest_response(response)
    for key in export.OUTPUT_KEYS:
        assert _rel(outputs[key], expected[key]) <= 1e-5, key


def test_rest_examples_in_docs(loaded, model):
    """The curl bodies of the README's Deploy section are valid requests for the signatures."""
    docs = (ROOT / "README.md").read_text()
    bodies = [json.loads(b) for b in re.findall(r"-d '(\{.*?\})'", docs, re.S)]
    assert {("instances" in b, "inputs" in b) for b in bodies} == {(True, False), (False, True)}
    for body in bodies:
        ldr = np.asarray(body["instances"] if "instances" in body else body["inputs"]["ldr"], np.float32)
        outputs = export.parse_rest_response(_rest_predict(body, loaded))
        expected = model(ldr, training=False)
        for key in export.OUTPUT_KEYS:
            assert _rel(outputs[key], expected[key]) <= 1e-5, key


def test_rest_bytes_body(loaded, model):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (21, 33, 3), dtype=np.uint8)
    body = export.rest_bytes_request([_encode(image, "PNG")])
    assert body["instances"][0].keys() == {"b64"}
    outputs = export.parse_rest_response(_rest_predict(body, loaded))
    expected = model(image[None].astype(np.float32) / 255.0, training=False)
    for key in export.OUTPUT_KEYS:
        assert _rel(outputs[key], expected[key]) <= 1e-5, key


@pytest.fixture(scope="module")
def grpc_server(loaded):
    """An in-process gRPC PredictionService answering from the SavedModel's signatures.

    Like tensorflow_model_server it accepts messages up to 2 GiB; the client keeps gRPC's
    default 4 MiB receive limit unless given export.grpc_channel_options().
    """
    grpc = pytest.importorskip("grpc")
    pytest.importorskip("tensorflow_serving.apis.predict_pb2", reason=SERVING_API_REASON)
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
            inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            for key, value in signature(**inputs).items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    limit = 2**31 - 1
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=2),
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def test_grpc_predict_request_body(loaded, reference):
    pytest.importorskip("tensorflow_serving.apis.predict_pb2", reason=SERVING_API_REASON)
    from tensorflow_serving.apis import predict_pb2

    ldr, expected = reference[SIZES[1]]
    request = export.predict_request(ldr, model_name="hdr", version=VERSION)
    wire = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert wire.model_spec.name == "hdr" and wire.model_spec.signature_name == "serving_default"
    assert wire.model_spec.version.value == VERSION
    assert [d.size for d in wire.inputs["ldr"].tensor_shape.dim] == list(ldr.shape)
    signature = loaded.signatures[wire.model_spec.signature_name]
    outputs = signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in wire.inputs.items()})
    response = predict_pb2.PredictResponse()
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    parsed = export.parse_predict_response(predict_pb2.PredictResponse.FromString(response.SerializeToString()))
    for key in export.OUTPUT_KEYS:
        assert _rel(parsed[key], expected[key]) <= 1e-5, key


def test_grpc_roundtrip_and_message_limit(grpc_server, model):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    # 512 x 704: the hdr output alone is 4.3 MB, over gRPC's default 4 MiB client receive limit.
    ldr = np.random.default_rng(3).random((1, 512, 704, 3), dtype=np.float32)
    request = export.predict_request(ldr, model_name="hdr")
    with grpc.insecure_channel(grpc_server) as channel:
        with pytest.raises(grpc.RpcError) as info:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=300)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with grpc.insecure_channel(grpc_server, options=export.grpc_channel_options()) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=300)
    outputs = export.parse_predict_response(response)
    expected = model(ldr, training=False)
    for key in export.OUTPUT_KEYS:
        assert _rel(outputs[key], expected[key]) <= 1e-5, key


def test_grpc_bytes_request(grpc_server, model):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    image = np.random.default_rng(4).integers(0, 256, (19, 25, 3), dtype=np.uint8)
    request = export.predict_request(images=[_encode(image, "PNG")], model_name="hdr")
    assert request.model_spec.signature_name == "serving_bytes"
    with grpc.insecure_channel(grpc_server, options=export.grpc_channel_options()) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=120)
    outputs = export.parse_predict_response(response)
    expected = model(image[None].astype(np.float32) / 255.0, training=False)
    for key in export.OUTPUT_KEYS:
        assert _rel(outputs[key], expected[key]) <= 1e-5, key


def test_models_config_in_docs_parses():
    pytest.importorskip("tensorflow_serving.config.model_server_config_pb2", reason=SERVING_API_REASON)
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    docs = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:protobuf|text)\n# models\.config\n(.*?)```", docs, re.S)
    assert blocks, "README.md has no models.config block"
    config = text_format.Parse(blocks[0], model_server_config_pb2.ModelServerConfig())
    (entry,) = config.model_config_list.config
    assert entry.name == "hdr" and entry.model_platform == "tensorflow"
    assert entry.base_path.startswith("/models/")


# --------------------------------------------------------------------------- TFLite


@pytest.fixture(scope="module")
def tflite(exported):
    """{variant: (flatbuffer bytes, LiteRT interpreter)} of the exported files."""
    models = {}
    for variant, path in exported["tflite"].items():
        content = path.read_bytes()
        models[variant] = (content, export.tflite_interpreter(model_content=content, num_threads=2))
    return models


@pytest.mark.parametrize("variant", export.TFLITE_VARIANTS)
def test_tflite_builtin_ops_only(tflite, variant):
    content, interpreter = tflite[variant]
    ops = export.tflite_ops(content)
    assert not [op for op in ops if op.lower().startswith("flex")], ops
    assert export.non_builtin_ops(ops) == []
    assert {"CONV_2D", "GATHER", "CUMSUM"} <= set(ops)
    if hasattr(interpreter, "_get_ops_details"):  # the runtime's own view of the graph agrees
        assert {d["op_name"] for d in interpreter._get_ops_details()} <= set(ops)


@pytest.mark.parametrize("variant", export.TFLITE_VARIANTS)
def test_tflite_signature_is_resizable(tflite, variant):
    _, interpreter = tflite[variant]
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["ldr"], "outputs": ["hdr", "inverse_crf"]}
    }
    runner = interpreter.get_signature_runner("serving_default")
    assert list(runner.get_input_details()["ldr"]["shape_signature"]) == [1, -1, -1, 3]


# fp16: float16 weights, amplified by the whole-image Hallucination stage's exp(gain) (export_savedmodel.TOLERANCES)
@pytest.mark.parametrize("variant,limit", [("fp32", 1e-4), ("fp16", 5e-2)])
def test_tflite_matches_keras(tflite, reference, variant, limit):
    _, interpreter = tflite[variant]
    for size in SIZES:  # one interpreter, resized for each size
        ldr, expected = reference[size]
        outputs = export.run_tflite(interpreter, ldr[:1])
        for key in export.OUTPUT_KEYS:
            assert outputs[key].shape == expected[key][:1].shape
            error = _rel(outputs[key], expected[key][:1])
            assert error <= limit, (size, key, error)


def test_tflite_int8_error_reported(tflite, reference, record_property):
    _, interpreter = tflite["int8"]
    errors = {}
    for size in SIZES:
        ldr, expected = reference[size]
        outputs = export.run_tflite(interpreter, ldr[:1])
        for key in export.OUTPUT_KEYS:
            errors[key] = max(errors.get(key, 0.0), _rel(outputs[key], expected[key][:1]))
    record_property("int8_max_relative_error", errors)
    print(f"\nint8 (dynamic range) max|tflite - keras| / max|keras| over {SIZES}: {errors}")
    # Reported, not a tolerance: only catches a broken model (random weights, 3 small images).
    assert all(np.isfinite(e) and e < 0.25 for e in errors.values()), errors


def test_tflite_raw_interpreter_api(tflite, reference):
    """The resize_tensor_input / set_tensor / invoke path of the README's Deploy section."""
    content, _ = tflite["fp32"]
    interpreter = export.tflite_interpreter(model_content=content)
    ldr, expected = reference[SIZES[2]]
    (inp,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(inp["index"], ldr[:1].shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], ldr[:1])
    interpreter.invoke()
    by_shape = {len(d["shape"]): d["index"] for d in interpreter.get_output_details()}
    assert _rel(interpreter.get_tensor(by_shape[4]), expected["hdr"][:1]) <= 1e-4
    assert _rel(interpreter.get_tensor(by_shape[2]), expected["inverse_crf"][:1]) <= 1e-4
