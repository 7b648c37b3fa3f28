"""hdr-keras beam on DirectRunner (2 workers): predict's outputs, a dead-letter file, idempotent reruns."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hdr_keras import io, predict

pytest.importorskip("apache_beam")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
SIZES = [(64, 96), (96, 64), (80, 80), (64, 128), (72, 96), (96, 96)]


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """6 small photos of 3 sizes (with highlights to reconstruct), a corrupt JPEG and an empty file."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    for i, (h, w) in enumerate(SIZES):
        y, x = np.mgrid[0:h, 0:w] / max(h, w)
        image = np.stack([x, y, 0.5 + 0.5 * np.sin(9 * x + i)], -1) * rng.uniform(0.6, 1.4, 3)
        image[h // 3 : h // 2, w // 3 : w // 2] = 1.0  # a clipped highlight
        Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(folder / f"photo{i}.jpg", quality=90)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"not a JPEG stream " * 20)
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def _beam(photo_dir, out_dir, weights):
    command = [
        sys.executable, "-m", "hdr_keras", "beam", "--inputs", str(photo_dir / "*.jpg"), "--out_dir", str(out_dir),
        "--weights", str(weights), "--runner", "DirectRunner", "--direct_num_workers", "2",
        "--direct_running_mode", "multi_processing",
    ]  # fmt: skip
    return subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=1800)


def _mtimes(folder):
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}


def test_beam_writes_predicts_outputs_lists_bad_inputs_and_reruns_idempotently(photo_dir, weights, tmp_path):
    good = sorted(photo_dir.glob("photo*.jpg"))
    assert predict.main([*map(str, good), "--out_dir", str(tmp_path / "predict"), "--weights", str(weights), "--quiet"]) == 0

    out_dir = tmp_path / "beam"
    result = _beam(photo_dir, out_dir, weights)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == f"beam: 8 read, 6 written, 0 skipped, 2 failed -> {out_dir}"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"photo{i}{ext}" for i in range(6) for ext in (".exr", ".json")] + ["failed.jsonl"]
    )
    for i in range(6):
        ours, theirs = (io.read_hdr(tmp_path / d / f"photo{i}.exr") for d in ("beam", "predict"))
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)
        ours, theirs = (json.loads((tmp_path / d / f"photo{i}.json").read_text()) for d in ("beam", "predict"))
        assert ours.pop("input_sha256") == hashlib.sha256((photo_dir / f"photo{i}.jpg").read_bytes()).hexdigest()
        np.testing.assert_allclose(ours.pop("inverse_crf"), theirs.pop("inverse_crf"), atol=1e-3)
        np.testing.assert_allclose(ours.pop("hdr_max"), theirs.pop("hdr_max"), rtol=1e-3)
        for sidecar in (ours, theirs):
            sidecar.pop("seconds")
            sidecar["files"]["exr"].pop("sha256")  # EXR bytes may differ by rounding across processes
            sidecar["files"]["exr"].pop("bytes")
        assert ours == theirs
    failed = [json.loads(line) for line in (out_dir / "failed.jsonl").read_text().splitlines()]
    assert sorted(f["input"] for f in failed) == [str(photo_dir / "corrupt.jpg"), str(photo_dir / "empty.jpg")]
    for failure in failed:
        assert failure["error"].startswith(failure["input"] + ": ") and "\n" not in failure["error"]
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temporary left

    before = _mtimes(out_dir)
    rerun = _beam(photo_dir, out_dir, weights)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stderr.strip().splitlines()[-1] == f"beam: 8 read, 0 written, 6 skipped, 2 failed -> {out_dir}"
    assert _mtimes(out_dir) == before  # nothing rewritten, no failure repeated


def test_usage_errors_are_one_line(tmp_path):
    from hdr_keras.__main__ import main

    result = subprocess.run(
        [sys.executable, "-m", "hdr_keras", "beam", "--inputs", str(tmp_path / "none*.jpg"), "--out_dir", str(tmp_path / "o")],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr  # (Beam's import may log a warning line of its own first)
    assert result.stderr.strip().splitlines()[-1] == f"beam: error: no input file matches {tmp_path / 'none*.jpg'}"
    with pytest.raises(SystemExit):  # an option neither predict nor Beam knows
        main(["predict", "x.jpg", "--out_dir", str(tmp_path), "--runner", "DirectRunner"])
