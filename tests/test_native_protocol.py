"""The native-resolution highlight protocol (evaluate --native) and its figures (hdr_keras.highlights)."""

import json

import numpy as np
import pytest

from hdr_keras import highlights, io
from hdr_keras.evaluate import command, native


def test_fidelity_figures_on_known_cases():
    truth = np.ones((8, 8, 3)) * np.array([0.5, 1.0, 2.0])
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    same = highlights.fidelity(truth, truth, mask)
    assert same["chroma_error"] == pytest.approx(0.0, abs=1e-12) and same["dark_share"] == 0.0
    white = highlights.fidelity(np.ones_like(truth), truth, mask)  # a clipped area left white
    expected = np.linalg.norm(np.array([1 / 3, 1 / 3]) - np.array([0.5, 2.0]) / 3.5)
    assert white["chroma_error"] == pytest.approx(expected) and white["colour_cast"] == pytest.approx(expected)
    dark = highlights.fidelity(truth * 0.5, truth, mask)  # half the clipped photo's luminance
    assert dark["dark_share"] == 1.0 and "hole_share" not in dark
    # Through the method's own curve: the photo at 0.6 is no hole for a fill at 0.5, a hole for one at 0.4.
    photo = np.minimum(truth, 1.0) * 0.6
    assert highlights.fidelity(photo * 0.5 / 0.6, truth, mask, photo)["hole_share"] == 0.0
    assert highlights.fidelity(photo * 0.4 / 0.6, truth, mask, photo)["hole_share"] == 1.0
    assert np.isnan(highlights.fidelity(truth, truth, np.zeros((8, 8), bool))["chroma_error"])


def test_exposure_for_share():
    scene = np.linspace(0.1, 10.0, 1000, dtype=np.float32).reshape(10, 100, 1).repeat(3, axis=-1)
    t = native.exposure_for_share(scene, 0.1)
    assert np.mean((scene * t).max(axis=-1) >= 1.0) == pytest.approx(0.1, abs=0.002)


def test_evaluate_native_end_to_end(weights, tmp_path):
    rng = np.random.default_rng(0)
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for i, (h, w) in enumerate([(64, 96), (72, 80)]):
        sky = np.broadcast_to(np.array([0.4, 0.6, 1.0], np.float32), (h, w, 3)) * np.linspace(1, 4, w, dtype=np.float32)[None, :, None]
        io.write_exr(scenes / f"scene{i}.exr", sky * rng.uniform(0.9, 1.1, (h, w, 1)).astype(np.float32), half=False)
    out, sheet = tmp_path / "native.json", tmp_path / "sheet.png"
    argv = ["--native", "--hdr_dir", str(scenes), "--weights", str(weights), "--curve_set", "modern",
            "--sheet", str(sheet), "--out", str(out), "--quiet"]
    assert command.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["config"]["renders"] == 2 * len(native.DEFAULT_SHARES)
    for method in native.METHODS:
        assert set(native.FIGURES) <= set(report["summary"][method])
    assert report["summary"]["model"]["dark_share"] <= report["summary"]["inverse_srgb"]["dark_share"] + 1e-9
    assert report["summary"]["inverse_srgb"]["hole_share"] == 0.0  # it fills nothing: never below its own photo
    assert "model with the true curve (oracle)" in native.markdown_native(report)
    picture = io.read_ldr(sheet)  # rows of 3 panels (photo, model, truth), one row per render with a clip
    assert picture.shape[0] % native.SHEET_CROP == 0 and picture.shape[1] == 3 * 96
