"""The strict weights loader (hdr_keras.pretrained) on real crafted files, and its one-line errors in the CLIs."""

import argparse
import shutil
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

from hdr_keras import evaluate, pretrained, predict

ROOT = pretrained.WEIGHTS_DIR.parents[2]
SHIPPED = pretrained.shipped_weights("lite")


@pytest.fixture(scope="module")
def lite():
    return pretrained.build_model("lite")


@pytest.fixture(scope="module")
def files(tmp_path_factory, lite):
    """Crafted files: a stage's file, a truncated copy, random bytes, a group deleted, a paper-preset file."""
    folder = tmp_path_factory.mktemp("weights")
    lite.dequantization.save_weights(folder / "stage.weights.h5")
    (folder / "truncated.weights.h5").write_bytes(SHIPPED.read_bytes()[:4096])
    (folder / "random.weights.h5").write_bytes(np.random.default_rng(0).bytes(5000))
    shutil.copy(SHIPPED, folder / "deleted.weights.h5")
    with h5py.File(folder / "deleted.weights.h5", "a") as f:
        del f["hallucination/layers/u_net/context"]
    shutil.copy(SHIPPED, folder / "reshaped.weights.h5")
    with h5py.File(folder / "reshaped.weights.h5", "a") as f:
        del f["hallucination/layers/u_net/context/vars/1"]
        f["hallucination/layers/u_net/context/vars/1"] = np.zeros(7, np.float32)
    pretrained.build_model("paper").save_weights(folder / "paper.weights.h5")
    return folder


def _error(model, path, preset="lite", part=pretrained.WHOLE):
    with pytest.raises(pretrained.WeightsError) as info:
        pretrained.load_weights(model, path, preset, part)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def test_matching_file_loads_without_warnings(lite):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pretrained.load_weights(lite, SHIPPED, "lite")
    assert not [w for w in caught if issubclass(w.category, UserWarning)]


def test_a_single_stage_file_names_the_stage(lite, files):
    message = _error(lite, files / "stage.weights.h5")
    assert "holds the dequantization stage alone of preset 'lite', expected a whole SingleHDR of preset 'lite'" in message
    assert "single_hdr.weights.h5" in message


def test_a_whole_file_given_for_a_stage(lite):
    message = _error(lite.hallucination, SHIPPED, part="hallucination")
    assert "holds a whole SingleHDR of preset 'lite', expected the hallucination stage alone" in message


def test_truncated_and_random_files(lite, files):
    assert _error(lite, files / "truncated.weights.h5").endswith(f"(truncated: 4096 of {SHIPPED.stat().st_size} bytes)")
    assert _error(lite, files / "random.weights.h5").endswith("not a readable Keras .weights.h5 file (not an HDF5 file)")


def test_a_deleted_group_is_refused_naming_what_is_missing(lite, files):
    before = [w.copy() for w in lite.hallucination.get_weights()]
    message = _error(lite, files / "deleted.weights.h5")
    assert "does not fit a whole SingleHDR of preset 'lite' and fits no preset" in message
    assert "2 of the 181 variables missing (e.g. hallucination/layers/u_net/context/vars/0)" in message
    for a, b in zip(before, lite.hallucination.get_weights()):  # nothing was loaded
        np.testing.assert_array_equal(a, b)


def test_a_reshaped_variable_is_named_with_both_shapes(lite, files):
    message = _error(lite, files / "reshaped.weights.h5")
    assert "1 of another shape (e.g. hallucination/layers/u_net/context/vars/1: (7,) in the file, (64,) expected)" in message


def test_the_wrong_preset_names_the_one_it_fits(lite, files):
    message = _error(lite, files / "paper.weights.h5")
    assert "holds a whole SingleHDR of preset 'paper', expected a whole SingleHDR of preset 'lite'; pass --preset paper" in message


def test_stage_folder(lite, files, tmp_path):
    assert pretrained.load_stage_weights(lite, tmp_path, "lite") == []
    with pytest.raises(FileNotFoundError, match="linearization.weights.h5: weights of the linearization stage"):
        pretrained.load_stage_weights(lite, tmp_path, "lite", required=("linearization",))
    shutil.copy(files / "stage.weights.h5", tmp_path / "dequantization.weights.h5")
    assert pretrained.load_stage_weights(lite, tmp_path, "lite") == [tmp_path / "dequantization.weights.h5"]
    shutil.copy(files / "stage.weights.h5", tmp_path / "hallucination.weights.h5")
    with pytest.raises(pretrained.WeightsError, match="holds the dequantization stage alone .* expected the hallucination"):
        pretrained.load_stage_weights(lite, tmp_path, "lite")


def test_predict_and_evaluate_print_the_one_line(files, tmp_path, capsys):
    photo = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.full((40, 56, 3), 128, np.uint8)).save(photo)
    bad = files / "deleted.weights.h5"
    assert predict.main([str(photo), "--out_dir", str(tmp_path / "out"), "--weights", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"predict: error: {bad}: does not fit")
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    assert evaluate.run(parser.parse_args(["--weights", str(files / "stage.weights.h5"), "--quiet"])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {files / 'stage.weights.h5'}: holds the dequantization stage alone")
    assert not [line for line in err if "Warning" in line or "Traceback" in line]


def test_export_script_prints_the_one_line(files, tmp_path):
    command = [sys.executable, str(ROOT / "export_savedmodel.py"), f"--weights={files / 'truncated.weights.h5'}",
               f"--export_dir={tmp_path}", "--tflite="]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"export_savedmodel.py: error: {files / 'truncated.weights.h5'}: not a readable Keras .weights.h5 file "
        f"(truncated: 4096 of {SHIPPED.stat().st_size} bytes)"
    )
    assert "oneDNN" not in result.stderr and "UserWarning" not in result.stderr
