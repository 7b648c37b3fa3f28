"""Shared pytest setup: make ``import hdr_keras`` work from the repository root and keep TF quiet."""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """A ``lite`` weights file from a seeded, randomly initialised model (predict and reliability tests)."""
    import keras

    from hdr_keras import pretrained

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("weights") / "lite_random.weights.h5"
    pretrained.build_model("lite").save_weights(path)
    return path
