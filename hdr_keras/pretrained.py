"""Shipped weights and building a ready-to-run :class:`~hdr_keras.models.SingleHDR`."""

import hashlib
import pathlib

import numpy as np

from hdr_keras.models import SingleHDR

WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "assets" / "weights"


def shipped_weights(preset):
    """Path of the weights shipped for ``preset`` (``<preset>.weights.h5``), or None if none ship."""
    path = WEIGHTS_DIR / f"{preset}.weights.h5"
    return path if path.is_file() else None


def sha256(path):
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_model(preset, weights=None, refine=True):
    """SingleHDR of ``preset``, built (variables created) and loaded from ``weights`` if given.

    ``weights`` is a Keras ``.weights.h5`` file of the whole SingleHDR; a missing file raises
    FileNotFoundError naming it. Every stage is built (the Refinement-Net too when ``refine`` is
    false), so one weights file fits either way.
    """
    model = SingleHDR.from_preset(preset, refine=True)
    model(np.zeros((1, 64, 64, 3), np.float32))
    model.refine = refine
    if weights is not None:
        weights = pathlib.Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: weights file not found")
        model.load_weights(weights)
    return model
