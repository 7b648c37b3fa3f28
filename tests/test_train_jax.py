"""scripts/train_jax.py and the shared augmentation and JPEG on Keras' JAX backend (CPU JAX, subprocesses).

Keras picks its backend once per process, so each JAX check runs in a child with
``KERAS_BACKEND=jax``; this process (TensorFlow) checks what the child wrote. The children share
a persistent XLA compilation cache: building a model on JAX compiles one random initialiser per
weight shape, which the second build then reads back.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hdr_keras import camera, pretrained

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e .[jax])"),
    pytest.mark.xdist_group("jax"),  # one worker, so that the compilation cache is shared
]


@pytest.fixture(scope="module")
def jax_env(tmp_path_factory):
    """The children's environment: Keras on CPU JAX, one compilation cache for the module, and XLA's
    CPU code generation at optimisation level 1 instead of 2.

    The children run two steps of tiny batches, so their time is compiling (random initialisers,
    one per weight shape, and the training steps): level 1 halves it (130 s -> 65 s for the
    four-stage training below on 2 cores), with losses equal to level 2's to 3 digits. Level 0 was
    tried and gives NaN gradients in the context Hallucination-Net (jitted only; op by op they are
    finite), so it is not used.
    """
    cache = tmp_path_factory.mktemp("jax_compilation_cache")
    xla_flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=1".strip()
    return dict(
        os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", XLA_FLAGS=xla_flags,
        JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
    )  # fmt: skip


def _run_jax(code, tmp_path, env):
    """Runs ``code`` in a child on the JAX backend, in ``tmp_path``; returns the finished process."""
    script = tmp_path / "child.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + textwrap.dedent(code))
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_jpeg_on_jax_is_opencv_420_and_close_to_tensorflow(tmp_path, jax_env):
    y, x = np.mgrid[0:32, 0:48]
    smooth = np.stack([0.5 + 0.3 * np.sin(x / (5 + c) + y / 7 + c) for c in range(3)], axis=-1)
    noisy = smooth + np.random.default_rng(0).normal(0, 0.02, (2, 32, 48, 3))
    images = (np.round(np.clip(noisy, 0, 1) * 255) / 255).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    _run_jax(
        """
        import jax, numpy as np
        from hdr_keras import camera
        images = np.load("images.npy")
        out = jax.jit(camera.jpeg)(images, np.array([80, 95]))
        assert out.dtype == np.float32 and out.shape == images.shape
        np.save("jax.npy", np.asarray(out))
        """,
        tmp_path,
        jax_env,
    )
    on_jax = np.load(tmp_path / "jax.npy")
    on_tf = camera.jpeg(images, np.array([80, 95])).numpy()
    assert np.abs(on_jax - on_tf).mean() < 1.5 / 255  # two libjpeg builds, both 4:2:0
    assert 0 < np.abs(on_jax - images).mean() < 8 / 255
    assert np.abs(on_jax[1] - images[1]).mean() < np.abs(on_jax[0] - images[0]).mean()  # quality per image


def test_augmentation_runs_jitted_on_jax(tmp_path, jax_env):
    crops = np.random.default_rng(0).uniform(0, 2, (3, 40, 40, 3)).astype(np.float16)
    np.save(tmp_path / "crops.npy", crops)
    _run_jax(
        """
        import jax, numpy as np
        from hdr_keras import data
        crops = np.load("crops.npy")
        seeds = jax.random.split(jax.random.PRNGKey(1), 3)
        view = jax.jit(lambda c, s: data.augment_batch(c, s, 32, white_balance_stops=0.3, saturation_jitter=0.4))
        a, b = view(crops, seeds), view(crops, seeds)
        assert a.shape == (3, 32, 32, 3) and bool((a >= 0).all()) and np.array_equal(a, b)
        same = data.augment_batch(crops[:, :32, :32].astype(np.float32), seeds, 32, scale_range=(1.0, 1.0))
        for k in range(3):  # scale 1 on a crop of the view's size: one of its 8 rotations / flips
            c = crops[k, :32, :32].astype(np.float32)
            options = [np.rot90(c, r) for r in range(4)] + [np.rot90(c[:, ::-1], r) for r in range(4)]
            assert min(np.abs(np.asarray(same[k]) - o).max() for o in options) < 1e-5
        """,
        tmp_path,
        jax_env,
    )


def test_train_jax_trains_each_stage_and_the_chain_loads_in_tensorflow(tmp_path, jax_env):
    """A few steps of deq, lin, hal and joint on tiny data, JPEG and the in-camera steps on; the files
    load strictly with TensorFlow."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "crops.npy", rng.uniform(0, 2, (4, 40, 40, 3)).astype(np.float16))
    grid = np.linspace(0, 1, 1024, dtype=np.float32)
    np.savez(tmp_path / "curves.npz", forward=np.stack([grid ** (1 / 2.2), grid**0.5]), inverse=np.stack([grid**2.2, grid**2]))
    out = tmp_path / "out"
    command = [
        sys.executable, str(ROOT / "scripts" / "train_jax.py"), f"--crops={tmp_path / 'crops.npy'}",
        f"--curves={tmp_path / 'curves.npz'}", f"--out_dir={out}", "--max_steps=2", "--batch_size=2", "--crop=32",
        f"--init_weights={pretrained.shipped_weights('lite')}", "--white_balance_stops=0.3", "--saturation_jitter=0.4",
        "--local_tone=0.5", "--display_saturation=0.3", "--sharpening=0.5",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=jax_env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (out / "log.tsv").read_text().splitlines()
    for task in ("deq", "lin", "hal", "joint"):
        final = [line for line in log if line.startswith(f"{task}\t2\t")]
        assert final and np.isfinite(float(final[0].split("loss=")[1].split("\t")[0]))
    model = pretrained.build_model("lite", out / "single_hdr.weights.h5")  # strict: every variable matched
    for stage in ("dequantization", "linearization", "hallucination"):
        pretrained.load_weights(getattr(model, stage), out / f"{stage}.weights.h5", "lite", stage)


def test_train_jax_refuses_a_stage_file_as_init_weights(tmp_path, lite_model, jax_env):
    lite_model.hallucination.save_weights(tmp_path / "hallucination.weights.h5")
    command = [
        sys.executable, str(ROOT / "scripts" / "train_jax.py"), "--crops=x.npy", "--curves=x.npz",
        f"--out_dir={tmp_path}", f"--init_weights={tmp_path / 'hallucination.weights.h5'}",
    ]  # fmt: skip
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 3), np.float16))
    np.savez(tmp_path / "x.npz", forward=np.zeros((1, 1024)), inverse=np.zeros((1, 1024)))
    result = subprocess.run(command, cwd=tmp_path, env=jax_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "holds the hallucination stage alone of preset 'lite'" in result.stderr
    assert "Traceback" not in result.stderr and "UserWarning" not in result.stderr
