"""Regression guard for what ships: ``hdr_keras/assets/weights/lite.weights.h5``.

Checks that the file's sha256 is the one MODEL_CARD.md states, and that the shipped model, run on
``examples/sample.jpg`` (downscaled to 512x128), still gives the stored reference numbers
(``tests/data/shipped_lite_reference.json``: samples of the inverse camera curve and statistics
of every output) within the tolerances stored beside them.

When the shipped weights are replaced on purpose (retrained), regenerate the reference with
``python scripts/make_reference.py`` and put the new sha256 (printed by the first test's failure,
or ``sha256sum``) into MODEL_CARD.md; both tests then pass again. Any other failure here means a
code change altered what the shipped model computes.
"""

import importlib.util
import json
import pathlib
import re

import numpy as np
import pytest

from hdr_keras import pretrained

ROOT = pathlib.Path(__file__).resolve().parents[1]
REGENERATE = "after replacing the weights on purpose, run: python scripts/make_reference.py"


def _make_reference():
    spec = importlib.util.spec_from_file_location("make_reference", ROOT / "scripts" / "make_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_reference = _make_reference()


@pytest.fixture(scope="module")
def weights():
    path = pretrained.shipped_weights(make_reference.PRESET)
    assert path is not None, f"no shipped weights in {pretrained.WEIGHTS_DIR}"
    return path


@pytest.fixture(scope="module")
def reference():
    return json.loads(make_reference.REFERENCE.read_text())


def test_sha256_matches_model_card(weights):
    card = (ROOT / "MODEL_CARD.md").read_text()
    match = re.search(r"^\|\s*sha256\s*\|\s*`([0-9a-f]{64})`\s*\|", card, re.MULTILINE)
    assert match, "MODEL_CARD.md has no '| sha256 | `<64 hex digits>` |' row"
    actual = pretrained.sha256(weights)
    assert actual == match.group(1), f"{weights.name}: sha256 {actual}, MODEL_CARD.md states {match.group(1)}"


def test_reference_numbers(weights, reference):
    assert reference["weights_sha256"] == pretrained.sha256(weights), (
        f"{make_reference.REFERENCE.name} was made for other weights; {REGENERATE}"
    )
    model = pretrained.build_model(make_reference.PRESET, weights)
    actual = make_reference.reference_numbers(model, make_reference.reference_input())
    tol = reference["tolerances"]

    assert actual["curve_index"] == reference["curve_index"]
    np.testing.assert_allclose(actual["curve"], reference["curve"], rtol=0, atol=tol["curve"], err_msg="inverse curve")
    for key in ("linear", "hallucinated", "hdr"):
        for stat, expected in reference[key].items():
            np.testing.assert_allclose(
                actual[key][stat], expected, rtol=tol["relative"], atol=tol["absolute"], err_msg=f"{key} {stat}"
            )
    for key in ("dequantized_mean_abs_correction_255", "hdr_fraction_above_1"):
        np.testing.assert_allclose(actual[key], reference[key], rtol=tol["relative"], atol=tol["absolute"], err_msg=key)
