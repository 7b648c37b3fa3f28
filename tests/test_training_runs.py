"""Training-run hygiene and clusters: settings in --model_dir, the run lock, flushed checkpoints, two workers."""

import json
import os
import socket
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import tensorflow as tf

from hdr_keras import crf, durable, filelock
from hdr_keras.training import checkpoints, run, settings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
pytestmark = pytest.mark.usefixtures("graph_optimizer_off")  # tracing-bound: conftest.py


@pytest.fixture(scope="module")
def hdr_dirs(hdr_set):
    """The shared tiny HDR set (conftest): ``train`` and ``val`` folders."""
    return hdr_set


def _flags(hdr_dirs, tmp_path, **overrides):
    values = dict(
        strategy="default", tpu="", mixed_precision="off", curve_sets=["dorf"], modern_repeat=1,
        data_dir=str(hdr_dirs / "train"), val_dir=str(hdr_dirs / "val"), cache_dir=str(tmp_path / "cache"),
        crf_dir=str(crf.DEFAULT_CRF_DIR), num_emor_curves=0, seed=0, vgg_weights=None, preset="lite",
        init_weights=None, stage_weights_dir=None, model_dir=str(tmp_path / "run"), steps=1, batch_size=2,
        crop=32, lr=1e-4, log_every=1, eval_every=100, checkpoint_every=1, keep_checkpoints=2, jpeg=False,
        sensor_noise=False, white_balance_stops=0.0, saturation_jitter=0.0, local_tone=0.0,
        display_saturation=0.0, sharpening=0.0, quiet=True,
    )  # fmt: skip
    values.update(overrides)
    return types.SimpleNamespace(**values)


def _script_args(hdr_dirs, tmp_path, model_dir, steps):
    return [
        sys.executable, "train_stage.py", "--stage=lin", f"--model_dir={model_dir}", f"--steps={steps}", "--crop=32",
        "--batch_size=2", "--checkpoint_every=1", "--eval_every=100", "--quiet", "--curve_sets=dorf",
        "--num_emor_curves=0", f"--data_dir={hdr_dirs / 'train'}", f"--val_dir={hdr_dirs / 'val'}",
        f"--cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_settings_written_then_each_changed_flag_warned_on_resume(hdr_dirs, tmp_path, caplog):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / run.LOCK_FILE).write_text(f"{_dead_pid()}\n")  # left by a SIGKILLed training
    with caplog.at_level("WARNING"):
        run.run("lin", _flags(hdr_dirs, tmp_path))
    assert "which is no longer running" in caplog.text and "taking over the lock" in caplog.text
    assert not (model_dir / run.LOCK_FILE).exists()
    written = json.loads((model_dir / "settings.json").read_text())
    assert written["flags"]["lr"] == 1e-4 and written["flags"]["crop"] == 32
    assert written["versions"]["tensorflow"] == tf.__version__ and {"keras", "numpy", "python"} <= set(written["versions"])
    train = written["inputs"]["data_dir"]
    assert train["files"]["scene0.exr"] == settings.file_sha256(hdr_dirs / "train" / "scene0.exr")
    assert set(written["inputs"]["crf_dir"]["files"]) >= {"invemor.txt", "dorf_curves.npz"}

    caplog.clear()
    with caplog.at_level("WARNING"):
        run.run("lin", _flags(hdr_dirs, tmp_path, lr=3e-5, steps=2))
    lines = [r.getMessage() for r in caplog.records if "with other settings" in r.getMessage()]
    assert len(lines) == 2, lines
    assert any("--lr was 0.0001 at the last start, now 3e-05" in line for line in lines)
    assert any("--steps was 1" in line for line in lines)
    assert json.loads((model_dir / "settings.json").read_text())["flags"]["lr"] == 3e-5
    newest = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(model_dir / "checkpoints")))
    rate = newest.get_tensor("optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE")
    assert rate == pytest.approx(3e-5)  # the changed --lr took effect, not the checkpoint's 1e-4
    assert len(list(model_dir.glob("settings-*.json"))) == 1  # the first start's, kept


def test_settings_of_the_command_line_flags_leave_absl_out(monkeypatch):
    from absl import flags

    values = flags.FlagValues()
    flags.DEFINE_float("lr", 1e-4, "", flag_values=values, module_name="train_stage.py")
    flags.DEFINE_bool("logtostderr", False, "", flag_values=values, module_name="absl.logging")
    values(["prog", "--lr=0.5"])
    assert settings.flag_values(values) == {"lr": 0.5}


def test_a_second_training_on_the_same_model_dir_is_refused_naming_the_holder(hdr_dirs, tmp_path):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from hdr_keras import filelock; import time\nwith filelock.claim({str(model_dir / run.LOCK_FILE)!r}):\n print(1, flush=True); time.sleep(600)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "1"
        result = subprocess.run(_script_args(hdr_dirs, tmp_path, model_dir, 1), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"train_stage.py: error: {model_dir}: another training (process {holder.pid}) is running in this "
        "--model_dir; wait for it, stop it, or choose another folder"
    )
    assert not (model_dir / "checkpoints").exists()


def test_claim_refuses_a_live_holder_and_takes_over_a_dead_ones(tmp_path):
    path = tmp_path / "x.lock"
    with filelock.claim(path):
        assert path.read_text().strip() == str(os.getpid())
        with pytest.raises(filelock.LockHeld) as held:
            with filelock.claim(path):
                pass
        assert held.value.pid == os.getpid()
    assert not path.exists()
    path.write_text("4194303\n")
    messages = []
    with filelock.claim(path, log=messages.append):
        pass
    assert messages == [f"{path}: taking over the lock of process 4194303, which is no longer running"]


def test_checkpoint_files_are_flushed_before_the_renames_that_publish_them(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(durable, "fsync", lambda path: events.append(("fsync", os.path.basename(path))))
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("rename", os.path.basename(a))), real_replace(a, b)))
    variable = tf.Variable(tf.ones([4]))
    checkpoint = tf.train.Checkpoint(v=variable)
    for number in (1, 2, 3):
        checkpoints.save(checkpoint, tmp_path, number, keep=2)
    renamed = [name for kind, name in events if kind == "rename"]
    assert [n for n in renamed if n.startswith("ckpt-3")] == ["ckpt-3.data-00000-of-00001", "ckpt-3.index"]
    for name in renamed:
        if name.startswith("ckpt-"):
            assert events.index(("fsync", name)) < events.index(("rename", name))
    assert sorted(checkpoints.checkpoint_files(tmp_path)) == [2, 3]
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-3")
    assert not list(tmp_path.glob("*_temp")) and not list(tmp_path.glob("checkpoint.tmp*"))
    variable.assign(tf.zeros([4]))
    assert checkpoints.restore_newest(tf.train.Checkpoint(v=variable), tmp_path) == tmp_path / "ckpt-3"
    np.testing.assert_array_equal(variable.numpy(), np.ones(4))


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_cluster(command, tmp_dirs, log_dir):
    """Runs ``command`` as the 2 workers of a localhost cluster; returns their outputs, both exited 0.

    Their output goes to files: a worker blocked on a full pipe would stall the other's collectives.
    A failure shows both outputs: one worker's crash reaches the other as a lost heartbeat.
    """
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    processes, logs = [], [log_dir / f"worker{index}.log" for index in range(2)]
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**ENV, "TF_CONFIG": json.dumps(config), "TMPDIR": str(tmp_dirs[index])}
        with open(logs[index], "w") as log:
            processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        codes = [process.wait(timeout=1800) for process in processes]
    finally:
        for process in processes:
            process.kill()
    outputs = [log.read_text() for log in logs]
    assert codes == [0, 0], "\n".join(f"worker {i} (exit {c}):\n{o[-3000:]}" for i, (c, o) in enumerate(zip(codes, outputs)))
    return outputs


def test_two_workers_train_with_the_chief_alone_writing_and_resume_after_a_restart(hdr_dirs, tmp_path):
    """TF_CONFIG with 2 localhost workers: MultiWorkerMirroredStrategy; worker 0 (the chief) writes the
    run folder, worker 1 a temporary folder it removes; both restarted, both resume from the chief's checkpoint."""
    model_dir = tmp_path / "run"
    tmp_dirs = [tmp_path / "tmp0", tmp_path / "tmp1"]
    for folder in tmp_dirs:
        folder.mkdir()
    start = time.time()
    for stderr in _run_cluster(_script_args(hdr_dirs, tmp_path, model_dir, 2), tmp_dirs, tmp_path):
        assert "MultiWorkerMirroredStrategy" in stderr
    assert sorted(checkpoints.checkpoint_files(model_dir / "checkpoints")) == [1, 2]
    for folder in ("train", "val"):
        assert len(list((model_dir / folder).glob("events.out.tfevents.*"))) == 1  # the chief's alone
    assert (model_dir / "linearization.weights.h5").is_file() and (model_dir / "settings.json").is_file()
    assert [list(folder.iterdir()) for folder in tmp_dirs] == [[], []]  # worker 1's temporary folder removed

    for stderr in _run_cluster(_script_args(hdr_dirs, tmp_path, model_dir, 3), tmp_dirs, tmp_path):
        assert f"resumed from {model_dir / 'checkpoints' / 'ckpt-2'}" in stderr
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith("ckpt-3")
    print(f"two-worker runs: {time.time() - start:.0f} s")
