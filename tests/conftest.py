"""Shared pytest setup: ``import hdr_keras`` from the repository root, TensorFlow quiet, and the
fixtures many test files use: the random ``lite`` model built once (``lite_model``) and its weights
file (``weights``), a small photo (``photo``), a tiny HDR set (``hdr_set``) and
``graph_optimizer_off`` for the in-process training tests."""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="module")
def graph_optimizer_off():
    """TensorFlow's graph optimiser (Grappler) off while a module runs, restored after.

    The training tests run one or two steps of large training graphs, so their time goes into
    tracing and optimising the graphs, not into running them: without Grappler they take a quarter
    less (116 s -> 87 s for three tasks on 2 cores). What they check (checkpoints, resumes, losses,
    files) does not depend on how TensorFlow rewrites a graph; the model, predict and export tests
    keep the optimiser, as users run it.
    """
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before.get("disable_meta_optimizer", False)})


@pytest.fixture(scope="session")
def lite_model():
    """The ``lite`` SingleHDR with seeded random weights (seed 0), built once per test run.

    Shared by every test that asks for it: read it, never change it (a test that assigns weights
    or loads a file into a model builds its own).
    """
    import keras

    from hdr_keras import pretrained

    keras.utils.set_random_seed(0)
    return pretrained.build_model("lite")


@pytest.fixture(scope="session")
def weights(lite_model, tmp_path_factory):
    """``lite_model``'s weights file (predict and reliability tests)."""
    path = tmp_path_factory.mktemp("weights") / "lite_random.weights.h5"
    lite_model.save_weights(path)
    return path


def smooth_photo(height=40, width=56, seed=0):
    """A smooth synthetic photo, uint8 [height, width, 3], with a clipped highlight and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = 0.4 + 0.3 * np.sin(6 * x + 2 * y)[..., None] * np.array([1.0, 0.8, 0.6])
    image = image + 0.15 * np.cos(11 * y - 3 * x)[..., None]
    image[(x - 0.6) ** 2 + (y - 0.3) ** 2 < 0.01] = 1.0
    image = image + rng.normal(0, 0.02, image.shape)
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def photo():
    """``smooth_photo()``: uint8 [40, 56, 3] (read-only)."""
    image = smooth_photo()
    image.flags.writeable = False
    return image


def hdr_scene(rng, size=80):
    """A smooth random HDR scene with a few bright highlights, float32 [size, size + 16, 3], linear >= 0.02."""
    y, x = np.mgrid[0:size, 0 : size + 16] / size
    base = 0.3 + 0.25 * np.sin(6 * x + rng.uniform(0, 6))[..., None] * np.cos(4 * y)[..., None]
    image = np.clip(base, 0.02, None) * rng.uniform(0.5, 1.5, 3)
    image[rng.integers(0, size - 8) :][:8, :8] *= 40.0
    return image.astype(np.float32)


@pytest.fixture(scope="session")
def hdr_set(tmp_path_factory):
    """A tiny HDR set: folders ``train`` (3 scenes) and ``val`` (2) of ``hdr_scene`` EXR files, 80 x 96."""
    from hdr_keras import io

    root = tmp_path_factory.mktemp("hdr_set")
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("val", 2)):
        (root / split).mkdir()
        for i in range(count):
            io.write_exr(root / split / f"scene{i}.exr", hdr_scene(rng))
    return root
