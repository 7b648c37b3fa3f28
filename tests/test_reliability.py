"""The reliability probe replayed: real SIGKILLs, real concurrent processes, crafted files.

Each test reproduces one way the probe lost data or hung (issue #16) and checks that nothing is
lost and the message is clear: an export killed mid-save, a tiny PNG declaring 64 MP sent to
``serving_bytes``, two predicts racing into one folder, a predict killed mid-overwrite, training
killed right after a checkpoint appears and then handed garbage and truncated checkpoints, a
symlink loop among the inputs, an HDR header declaring 100000x100000. The processes use tiny
models (a one-convolution model for exports, random ``lite`` weights for predict and training).
"""

import glob
import io
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from hdr_keras import crf, data, export, filelock, interrupts, predict, pretrained
from hdr_keras import io as hio
from hdr_keras import outputs as units
from hdr_keras.training import checkpoints, loop
from hdr_keras.training.tasks import TASKS, LossWeights

pytestmark = pytest.mark.xdist_group("reliability")  # the killed training runs once, on one worker (pytest.ini)
REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

TINY_MODEL = '''
import keras, tensorflow as tf

class Tiny(keras.Model):
    """One convolution with SingleHDR's call and output dict: enough for the export mechanics."""

    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(3, 3, padding="same")

    def call(self, ldr, training=False, inverse_crf=None):
        hdr = self.conv(ldr)
        if inverse_crf is None:
            inverse_crf = tf.zeros([tf.shape(ldr)[0], 1024]) + tf.reduce_mean(hdr)
        return {"hdr": hdr, "inverse_crf": inverse_crf}

def tiny(seed):
    keras.utils.set_random_seed(seed)
    model = Tiny()
    model(tf.zeros([1, 8, 8, 3]))
    return model
'''
EXPORT_CHILD = TINY_MODEL + '''
import sys
from hdr_keras import export
export.export_savedmodel(tiny(int(sys.argv[2])), sys.argv[1], 1, overwrite=True)
'''


def _tiny(seed):
    namespace = {}
    exec(TINY_MODEL, namespace)
    return namespace["tiny"](seed)


def _kill_when(process, ready, timeout=180):
    """SIGKILLs ``process`` as soon as ``ready()`` is true (polled every ms); returns True if it was."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if ready():
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.001)
    return False


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in pathlib.Path(folder).rglob("*") if p.is_file())


# ------------------------------------------------------------------------------- export


def test_export_overwrite_killed_at_any_moment_keeps_a_complete_version(tmp_path):
    """SIGKILL as the new version's folder appears and as its variables are written (two moments
    of the save): the version served stays the old one, complete; the next export waits for no
    one (the lock died with its holder), cleans up and swaps the new one in."""
    base = tmp_path / "hdr"
    old = export.export_savedmodel(_tiny(0), base, 1)
    reference_files, old_fingerprint = _files(old), (old / "fingerprint.pb").read_bytes()
    script = tmp_path / "child.py"
    script.write_text(EXPORT_CHILD)
    moments = {"save started": ".", "variables written": "variables/variables.index"}  # in the partial folder
    for i, (name, inside) in enumerate(moments.items()):  # one child at a time: the second finds the first's dead lock
        before = set(glob.glob(str(base / ".1.partial-*")))  # a killed child's leftovers are not this child's moment

        def ready():
            return any(p not in before and os.path.exists(os.path.join(p, inside)) for p in glob.glob(str(base / ".1.partial-*")))

        child = subprocess.Popen([sys.executable, str(script), str(base), str(i + 1)], env=ENV, stderr=subprocess.DEVNULL)
        assert _kill_when(child, ready), f"{name}: the export ended before the moment came"
        assert _files(old) == reference_files, name
        assert (old / "fingerprint.pb").read_bytes() == old_fingerprint, name
    serve = tf.saved_model.load(str(old)).signatures[export.SIGNATURE_KEY]
    assert serve(ldr=tf.zeros([1, 8, 8, 3]))["hdr"].shape == (1, 8, 8, 3)
    new = export.export_savedmodel(_tiny(9), base, 1, overwrite=True)
    assert new == old and _files(new) == reference_files
    assert (new / "fingerprint.pb").read_bytes() != old_fingerprint
    assert sorted(p.name for p in base.iterdir()) == ["1"]  # no hidden leftovers, no lock


def _png(height, width):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_serving_bytes_refuses_a_tiny_png_declaring_64_megapixels_before_decoding(tmp_path):
    path = export.export_savedmodel(_tiny(0), tmp_path, 1, max_pixels=2_000_000)
    serve = tf.saved_model.load(str(path)).signatures[export.BYTES_SIGNATURE_KEY]
    bomb = _png(8000, 8000)
    assert len(bomb) < 200_000
    start = time.perf_counter()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"declare more than 2000000 pixels in all.*8000 8000"):
        serve(image_bytes=tf.constant([bomb]))
    assert time.perf_counter() - start < 5  # refused from the header: nothing was decoded
    with pytest.raises(tf.errors.InvalidArgumentError, match="declare more than"):
        serve(image_bytes=tf.constant([_png(1000, 1000)] * 3))  # 3 MP in all
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a PNG, JPEG, BMP or GIF"):
        serve(image_bytes=tf.constant([b"RIFF....WEBPVP8 "]))
    assert serve(image_bytes=tf.constant([_png(1000, 1000)] * 2))["hdr"].shape == (2, 1000, 1000, 3)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF"])
def test_declared_size_reads_the_header(fmt):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((29, 41, 3), np.uint8)).save(buffer, format=fmt)
    assert export.declared_size(tf.constant(buffer.getvalue())).numpy().tolist() == [29, 41]


# ------------------------------------------------------------------------------ predict




def _photos(folder, count, sizes=None):
    """``count`` noise photos ``folder/p{i}.png``, 40x56 unless ``sizes[i]`` says (height, width)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        size = (sizes or {}).get(i, (40, 56))
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def _predict_command(inputs, out, weights, *options):
    return [sys.executable, "-m", "hdr_keras", "predict", str(inputs), "--out_dir", str(out), "--weights", str(weights), "--quiet", *options]  # fmt: skip


def _assert_consistent(out, stem, with_preview=False):
    """The unit of ``stem`` is complete, and its sidecar describes exactly the files beside it."""
    outputs = units.output_paths(out, stem, ["exr"], with_preview)
    assert units.unit_state(outputs) == ("complete", None), stem
    meta = json.loads(outputs["json"].read_text())
    for role, entry in meta["files"].items():
        assert pretrained.sha256(out / entry["name"]) == entry["sha256"], (stem, role)
    dtype = hio.OpenEXR.File(str(outputs["exr"]), separate_channels=True).channels()["R"].pixels.dtype
    assert meta["files"]["exr"]["precision"] == {np.dtype(np.float16): "half", np.dtype(np.float32): "float32"}[dtype]
    return meta


def test_two_concurrent_predicts_never_both_write_an_output(tmp_path, weights):
    inputs, out = _photos(tmp_path / "in", 3), tmp_path / "out"
    command = _predict_command(inputs, out, weights)
    runs = [subprocess.Popen(command, env=ENV, cwd=REPO, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    summaries = [re.search(r"^predict: (\d+) written", e, re.M) for e in errors]  # none when all written
    written = sum(int(m.group(1)) if m else 3 for m in summaries)
    exists = sum(e.count("output exists") for e in errors)
    assert (written, exists) == (3, 3), errors  # each output written once; the other run says "exists"
    assert sorted(r.returncode for r in runs) in ([0, 1], [1, 1]), errors
    for i in range(3):
        _assert_consistent(out, f"p{i}")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no locks, no temporaries


def test_predict_killed_mid_overwrite_leaves_no_mixed_unit_and_skip_existing_finishes(tmp_path, weights):
    inputs, out = _photos(tmp_path / "in", 3, sizes={1: (600, 800)}), tmp_path / "out"  # p1 takes a while to write
    assert predict.main([str(inputs), "--out_dir", str(out), "--weights", str(weights), "--quiet"]) == 0
    options = ("--overwrite", "--float32", "--preview")
    command = _predict_command(inputs, out, weights, *options)
    child = subprocess.Popen(command, env=ENV, cwd=REPO, stderr=subprocess.DEVNULL)
    # SIGKILL while p1's new files are being written: its old sidecar is gone, its new one not yet there.
    assert _kill_when(child, lambda: not (out / "p1.json").exists()), "predict ended before replacing p1"
    states = {}
    for i in range(3):
        outputs = units.output_paths(out, f"p{i}", ["exr"], False)
        states[i], _ = units.unit_state(outputs)
        if states[i] == "complete":  # old (half) or new (float32), but never a sidecar of another file
            _assert_consistent(out, f"p{i}")
    assert states[1] == "partial" and not (out / "p1.json").exists()  # the old sidecar went first
    assert predict.main([str(inputs), "--out_dir", str(out), "--weights", str(weights), "--quiet", "--skip_existing", "--float32", "--preview"]) == 0  # fmt: skip
    for i in range(3):
        assert _assert_consistent(out, f"p{i}", with_preview=True)["files"]["exr"]["precision"] == "float32"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # temporaries of the kill removed


def test_ctrl_c_stops_predict_with_status_130_and_leaves_complete_units(tmp_path, weights, capsys):
    inputs, out = _photos(tmp_path / "in", 24), tmp_path / "out"

    def interrupt_after_the_first_unit():
        deadline = time.time() + 120
        while not (out / "p0.json").exists() and time.time() < deadline:
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGINT)  # a real SIGINT: Python raises KeyboardInterrupt in the main thread

    thread = threading.Thread(target=interrupt_after_the_first_unit)
    thread.start()
    status = predict.main([str(inputs), "--out_dir", str(out), "--weights", str(weights), "--quiet"])
    thread.join()
    err = capsys.readouterr().err
    assert status == 130 and "predict: interrupted" in err and "Traceback" not in err, err
    done = [i for i in range(24) if (out / f"p{i}.json").exists()]
    assert 0 in done and len(done) < 24
    for i in done:
        _assert_consistent(out, f"p{i}")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no lock, no temporary left


def test_a_ctrl_c_swallowed_where_it_was_raised_still_stops_the_batch():
    before = signal.getsignal(signal.SIGINT)
    with interrupts.watch() as requested:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here
        except KeyboardInterrupt:
            pass  # what a finaliser or a C++ callback does with it
        with pytest.raises(KeyboardInterrupt):
            interrupts.check(requested)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("step", ["open", "unlink"])
def test_a_ctrl_c_at_any_step_of_taking_or_freeing_a_unit_lock_leaves_no_lock_file(tmp_path, monkeypatch, step):
    """The SIGINT goes to another thread, as the kernel may deliver a Ctrl-C to any thread: Python
    then raises it in the main thread at its next bytecode check, here right after ``os.open``
    created the lock file (or ``os.unlink`` removed it), before the result is stored."""
    real = getattr(filelock.os, step)

    def then_interrupt(*args, **kwargs):
        result = real(*args, **kwargs)
        other = threading.Thread(target=lambda: signal.pthread_kill(threading.get_ident(), signal.SIGINT))
        other.start()
        other.join()
        return result

    lock = tmp_path / "p1.lock"
    with interrupts.watch(), pytest.raises(KeyboardInterrupt):  # as predict runs (a test worker may ignore SIGINT)
        monkeypatch.setattr(filelock.os, step, then_interrupt)
        with filelock.hold(lock):
            time.sleep(0.1)  # the body: taking the lock was not interrupted (unlink)
    monkeypatch.undo()
    assert not lock.exists()


def test_symlink_loop_and_pixel_bomb_fail_alone(tmp_path, weights, capsys):
    inputs = _photos(tmp_path / "in", 1)
    (tmp_path / "loop_a.png").symlink_to(tmp_path / "loop_b.png")
    (tmp_path / "loop_b.png").symlink_to(tmp_path / "loop_a.png")
    Image.fromarray(np.zeros((8000, 8000), np.uint8)).save(tmp_path / "bomb.png")  # 64 MP in ~190 KB
    out = tmp_path / "out"
    start = time.perf_counter()
    argv = [str(tmp_path / "loop_a.png"), str(tmp_path / "bomb.png"), str(inputs), "--out_dir", str(out)]
    assert predict.main(argv + ["--weights", str(weights), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'loop_a.png'}: cannot open (Too many levels of symbolic links)" in err
    assert f"{tmp_path / 'bomb.png'}: image is 8000x8000 pixels (64.0 MP), above the limit of 50 MP" in err
    assert "1 written, 2 failed" in err and (out / "p0.json").is_file()
    assert time.perf_counter() - start < 60


def test_unwritable_out_dir_fails_before_any_inference(tmp_path, weights, capsys):
    inputs = _photos(tmp_path / "in", 1)
    assert predict.main([str(inputs), "--out_dir", "/proc", "--weights", str(weights), "--quiet"]) == 2
    assert "/proc: cannot write in the output folder" in capsys.readouterr().err


def test_notices_for_colour_profiles_and_animations(tmp_path):
    from PIL import ImageCms

    frame = np.full((16, 16, 3), 128, np.uint8)
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(frame).save(tmp_path / "wide.png", icc_profile=lab)
    Image.fromarray(frame).save(tmp_path / "srgb.png", icc_profile=srgb)
    frames = [Image.fromarray(frame), Image.fromarray(255 - frame)]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    notices = []
    for name in ("wide.png", "srgb.png", "anim.png"):
        hio.read_ldr(tmp_path / name, notice=notices.append)
    assert len(notices) == 2, notices
    assert notices[0].startswith(f"{tmp_path / 'wide.png'}: embedded colour profile") and "not applied" in notices[0]
    assert notices[1] == f"{tmp_path / 'anim.png'}: animated image with 2 frames; only the first frame is used"


# ----------------------------------------------------------------------------- training


def test_hdr_header_declaring_100000_squared_is_skipped_by_load_crops(tmp_path):
    folder = tmp_path / "hdr"
    folder.mkdir()
    (folder / "huge.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 100000 +X 100000\n\x02\x02\x00\x10")
    hio.write_exr(folder / "good.exr", np.full((40, 56, 3), 0.5, np.float32))
    warnings = []
    crops = data.load_crops(folder, tmp_path / "cache", crop_size=32, log=warnings.append)
    assert len(crops) == 2 and len(warnings) == 1
    assert warnings[0].startswith(f"skipping {folder / 'huge.hdr'}: cannot read Radiance HDR file")


@pytest.fixture(scope="module")
def like_train():
    """(checkpoint, optimizer): the checkpoint object ``loop.train`` builds for the ``lin`` task."""
    model = pretrained.build_model("lite")
    task = TASKS["lin"](model, LossWeights(), None)
    optimizer = loop.make_optimizer(task, tf.distribute.get_strategy(), 1e-4)
    return loop.model_checkpoint(task.model, optimizer=optimizer), optimizer


@pytest.fixture(scope="module")
def killed_training(tmp_path_factory, hdr_set):
    """A train_stage.py run SIGKILLed the moment its third checkpoint appears: its checkpoint folder."""
    root = tmp_path_factory.mktemp("train")
    model_dir = root / "run"
    command = [
        sys.executable, "train_stage.py", "--stage=lin", f"--model_dir={model_dir}", "--steps=100000", "--crop=32",
        "--batch_size=2", "--checkpoint_every=1", "--keep_checkpoints=10", "--eval_every=100000", "--quiet",
        f"--data_dir={hdr_set / 'train'}", f"--val_dir={hdr_set / 'val'}", f"--cache_dir={root / 'cache'}",
        f"--crf_dir={crf.DEFAULT_CRF_DIR}",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stderr=subprocess.DEVNULL)
    assert _kill_when(process, lambda: (model_dir / "checkpoints" / "ckpt-3.index").exists(), timeout=300)
    return model_dir / "checkpoints"


def test_training_killed_right_after_a_checkpoint_resumes_from_the_newest_that_restores(killed_training, like_train):
    checkpoint, optimizer = like_train
    messages = []
    restored = checkpoints.restore_newest(checkpoint, killed_training, log=messages.append)
    assert restored is not None and int(optimizer.iterations.numpy()) == int(restored.name.split("-")[1]) >= 2
    assert not list(killed_training.glob("*_temp"))


def test_garbage_state_and_truncated_checkpoints_are_set_aside_never_written_over(
    killed_training, like_train, tmp_path
):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for number in (1, 2):  # complete checkpoints from the killed run
        for path in killed_training.glob(f"ckpt-{number}.*"):
            (folder / path.name).write_bytes(path.read_bytes())
    for path in killed_training.glob("ckpt-2.*"):  # ckpt-3: a truncated copy of ckpt-2
        content = path.read_bytes()
        half = content[: len(content) // 2] if "data" in path.name else content
        (folder / path.name.replace("ckpt-2", "ckpt-3")).write_bytes(half)
    (folder / "checkpoint").write_bytes(b"\x00garbage\xff not a checkpoint state")
    (folder / "ckpt-4_temp").mkdir()
    truncated = {p.name: p.read_bytes() for p in folder.glob("ckpt-3.*")}

    checkpoint, optimizer = like_train
    messages = []
    assert checkpoints.restore_newest(checkpoint, folder, log=messages.append) == folder / "ckpt-2"
    assert int(optimizer.iterations.numpy()) == 2
    (aside,) = folder.glob("unreadable-*")
    assert {p.name: p.read_bytes() for p in aside.glob("ckpt-3.*")} == truncated  # kept, byte for byte
    assert (aside / "checkpoint").read_bytes().startswith(b"\x00garbage")
    assert any(f"skipped checkpoint {folder / 'ckpt-3'}" in m for m in messages), messages
    assert tf.train.latest_checkpoint(str(folder)) == str(folder / "ckpt-2")  # state file rewritten
    assert not (folder / "ckpt-4_temp").exists()

    for path in folder.glob("ckpt-2.*"):  # deleting the bad files: the next older one restores
        path.unlink()
    assert checkpoints.restore_newest(checkpoint, folder) == folder / "ckpt-1"

    (folder / "ckpt-1.index").write_bytes(b"truncated")
    before = _files(folder)
    with pytest.raises(checkpoints.CheckpointError, match=rf"^{folder}: no checkpoint restores \(ckpt-1: "):
        checkpoints.restore_newest(checkpoint, folder)
    assert _files(folder) == before  # nothing changed when nothing restores
