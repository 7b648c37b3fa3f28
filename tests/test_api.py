"""Tests for the Python API (hdr_keras.api, docs/api.md): the CLI's numbers, reuse, the model, lazy import."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import hdr_keras
from hdr_keras import engine, predict, runtimes
from hdr_keras import io as hio
from hdr_keras.errors import UsageError

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.jpg"


def _photo(height, width, seed=0):
    """A smooth uint8 photo with a clipped highlight."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = 0.3 + 0.5 * np.stack([x, y, 1 - x], -1) + rng.normal(0, 0.02, (height, width, 3))
    base[height // 3 : height // 2, width // 3 : width // 2] = 1.2
    return np.round(np.clip(base, 0, 1) * 255).astype(np.uint8)


def _relative_difference(a, b):
    return float(np.mean(np.abs(a - b) / (np.abs(b) + 1e-3)))


@pytest.mark.parametrize("size, tiling", [((48, 72), []), ((200, 296), ["--tile", "128", "--tile_overlap", "32", "--tile_above", "0"])])
def test_reconstruct_equals_the_cli_exr(size, tiling, tmp_path):
    photo = _photo(*size)
    Image.fromarray(photo).save(tmp_path / "p.png")
    argv = [str(tmp_path / "p.png"), "--out_dir", str(tmp_path / "out"), "--quiet", "--float32", "--runtime", "tensorflow", *tiling]  # fmt: skip
    assert predict.main(argv) == 0
    exr = hio.read_hdr(tmp_path / "out" / "p.exr")
    options = {"tile": 128, "overlap": 32, "tile_above": 0} if tiling else {}
    for image in (photo, tmp_path / "p.png", str(tmp_path / "p.png"), photo.astype(np.float32) / 255):
        result = hdr_keras.reconstruct(image, runtime="tensorflow", **options)
        assert result.hdr.shape == size + (3,) and result.hdr.dtype == np.float32
        assert _relative_difference(result.hdr, exr) <= 2e-3
        assert result.info["tiled"] == bool(tiling) and result.info["curve"] == "estimated"
    assert result.inverse_crf.shape == (1024,)


def test_reconstructor_loads_once_and_takes_16_bit_and_a_curve():
    reconstructor = hdr_keras.Reconstructor(runtime="tensorflow", dtype="float32")
    assert hdr_keras.Reconstructor(runtime="tensorflow", dtype="float32").engine is reconstructor.engine  # loaded once
    photo = _photo(40, 56, seed=1)
    first = reconstructor.reconstruct(photo)
    wide = reconstructor.reconstruct(photo.astype(np.uint16) * 257)  # the same values in 16 bits
    np.testing.assert_allclose(wide.hdr, first.hdr, rtol=1e-5, atol=1e-6)
    given = reconstructor.reconstruct(photo, camera_profile=first.inverse_crf)
    assert given.info["curve"] == "given" and given.info["curve_size"] is None
    np.testing.assert_array_equal(given.inverse_crf, first.inverse_crf)
    np.testing.assert_allclose(given.hdr, first.hdr, rtol=1e-4, atol=1e-5)
    identity = reconstructor.reconstruct(photo, camera_profile=np.linspace(0, 1, 1024))
    assert not np.allclose(identity.hdr, first.hdr, atol=1e-3)


def test_load_model_is_the_engine_model():
    model = hdr_keras.load_model("lite")
    x = (_photo(40, 56, seed=2).astype(np.float32) / 255)[None]
    result = hdr_keras.reconstruct(x[0], runtime="tensorflow", dtype="float32")
    np.testing.assert_allclose(model(x, training=False)["hdr"][0], result.hdr, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model(x, training=False)["inverse_crf"][0], result.inverse_crf, atol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: hdr_keras.reconstruct(np.zeros((40, 56), np.uint8)), "H x W x 3"),
        (lambda: hdr_keras.reconstruct(np.zeros((4, 56, 3), np.uint8)), "H, W >= 8"),
        (lambda: hdr_keras.reconstruct(np.full((40, 56, 3), 2.0)), "[0, 1]"),
        (lambda: hdr_keras.reconstruct(np.zeros((40, 56, 3), np.int32)), "uint8, uint16 or float"),
        (lambda: hdr_keras.reconstruct(SAMPLE, runtime="nope"), "unknown runtime 'nope'"),
        (lambda: hdr_keras.reconstruct(SAMPLE, preset="nope"), "unknown preset 'nope'"),
        (lambda: hdr_keras.reconstruct(SAMPLE, preset="paper"), "no weights are shipped"),
        (lambda: hdr_keras.reconstruct(SAMPLE, camera_profile=np.zeros(10)), "1024 finite values"),
        (lambda: hdr_keras.reconstruct(SAMPLE, tile=100), "multiple of 32"),
        (lambda: hdr_keras.reconstruct("missing.jpg"), "missing.jpg"),
        (lambda: hdr_keras.load_model("lite", weights="missing.weights.h5"), "weights file not found"),
    ],
)
def test_usage_errors_are_one_line(call, message):
    with pytest.raises(UsageError) as error:
        call()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_import_loads_neither_tensorflow_nor_keras():
    code = "import sys, hdr_keras; hdr_keras.__version__; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert set(hdr_keras.__all__) >= {"reconstruct", "Reconstructor", "load_model", "Result"}


def test_docs_api_examples_run(tmp_path, capsys, monkeypatch):
    """Every python block of docs/api.md runs (from a folder holding examples/sample.jpg) and prints
    what its comments say (runtime "auto" as "tensorflow": no LiteRT model build in this test)."""
    pick = runtimes.pick
    monkeypatch.setattr(runtimes, "pick", lambda runtime="auto", dtype="auto": pick("tensorflow" if runtime == "auto" else runtime, dtype))
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) >= 4
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "sample.jpg").symlink_to(SAMPLE)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks:
            exec(compile(block, "docs/api.md", "exec"), {})
            printed = capsys.readouterr().out.splitlines()
            expected = [line.split("# ", 1)[1] for line in block.splitlines() if "print(" in line]
            for want, got in zip(expected, printed):
                assert got == want, block
    finally:
        os.chdir(cwd)
    assert (tmp_path / "sample.exr").is_file()


def test_engine_stage_flow_whole_image_hallucination(monkeypatch):
    """A whole-image Hallucination stage runs once on the blended linear image of all tiles."""
    reconstructor = hdr_keras.Reconstructor(runtime="tensorflow", dtype="float32")
    runtime = reconstructor.engine.runtime
    calls = []
    hallucinate = runtime.hallucinate
    monkeypatch.setattr(runtime, "whole_image", True)
    monkeypatch.setattr(runtime, "hallucinate", lambda linear: calls.append(linear.shape) or hallucinate(linear))
    photo = _photo(200, 296, seed=3)
    result = reconstructor.reconstruct(photo, tile=128, overlap=32, tile_above=0)
    assert calls == [(1, 200, 296, 3)] and result.info["tiles"] == len(engine.plan(200, 296, 128, 32, 0, 32))
