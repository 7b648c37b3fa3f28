"""Resuming training from the newest checkpoint that restores, without ever writing over the others.

A checkpoint ``ckpt-N`` of ``model_dir/checkpoints`` is the files ``ckpt-N.index`` and
``ckpt-N.data-*``; the ``checkpoint`` state file lists them (TensorFlow's CheckpointManager).
A kill, a full disk or a hand edit can leave a truncated ``.data`` / ``.index``, a missing half,
a garbage state file or ``ckpt-N_temp`` folders. :func:`restore_newest` looks at the files
themselves, newest first, restores the first checkpoint that restores completely, moves the
newer ones that did not into ``unreadable-<time>/`` (so that the run, which saves under the
same numbers again, never writes over them) and rewrites the state file to match.
:func:`save` writes a checkpoint so that a crash never publishes a torn one. Folders are local
or any ``tf.io.gfile`` file system (``gs://``).
"""

import logging
import os
import pathlib
import re
import time

import tensorflow as tf
from google.protobuf import text_format

from hdr_keras import durable
from hdr_keras.training import files

STATE_FILE = "checkpoint"
_CHECKPOINT_FILE = re.compile(r"ckpt-(\d+)\.(index|data-\d+-of-\d+)")


class CheckpointError(RuntimeError):
    """Checkpoints exist but none restores: the run stops rather than start again from step 0."""


def remove_leftovers(directory):
    """Removes what a killed save leaves in ``directory``: ``ckpt-N_temp`` folders, state-file temporaries."""
    for path in tf.io.gfile.glob(os.path.join(str(directory), "ckpt-*_temp")):
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
    for path in tf.io.gfile.glob(os.path.join(str(directory), f"{STATE_FILE}.tmp*")):
        tf.io.gfile.remove(path)


def checkpoint_files(directory):
    """{N: [paths of ckpt-N's files]} in ``directory``, from the file names (not the state file)."""
    found = {}
    for name in tf.io.gfile.listdir(str(directory)):
        match = _CHECKPOINT_FILE.fullmatch(name.rstrip("/"))
        if match:
            found.setdefault(int(match.group(1)), []).append(_join(directory, name))
    return found


def save(checkpoint, directory, number, keep):
    """Writes ``checkpoint`` as ``directory/ckpt-<number>``, keeps the newest ``keep``; returns its prefix.

    On a local disk the files are written under ``ckpt-<number>_temp/`` and each is flushed (fsync)
    before the rename that publishes it (the data first, the index last), as is the state file; an
    object store publishes each file whole. Every worker of a multi-worker run must call it (the
    save may run collectives); each passes its own ``directory``.
    """
    directory = str(directory)
    tf.io.gfile.makedirs(directory)
    prefix = os.path.join(directory, f"ckpt-{number}")
    checkpoint.save_counter.assign(number)  # saved with it, as tf.train.CheckpointManager saves it
    if files.is_local(directory):
        pending = os.path.join(directory, f"ckpt-{number}_temp")
        checkpoint.write(os.path.join(pending, f"ckpt-{number}"))
        names = sorted(os.listdir(pending), key=lambda name: name.endswith(".index"))
        for name in names:
            durable.fsync(os.path.join(pending, name))
        for name in names:
            os.replace(os.path.join(pending, name), os.path.join(directory, name))
        durable.fsync(directory)
        os.rmdir(pending)
    else:
        checkpoint.write(prefix)
    numbers = sorted(checkpoint_files(directory))
    for old in numbers[:-keep]:
        for path in checkpoint_files(directory)[old]:
            tf.io.gfile.remove(str(path))
    _write_state(directory, numbers[-keep:])
    return prefix


def _write_state(directory, numbers):
    """The ``checkpoint`` state file listing ``ckpt-N`` for ``numbers`` (the last is the newest)."""
    names = [f"ckpt-{n}" for n in numbers]
    state = tf.compat.v1.train.generate_checkpoint_state_proto(str(directory), names[-1], all_model_checkpoint_paths=names)
    files.write_text(os.path.join(str(directory), STATE_FILE), text_format.MessageToString(state))


def _join(directory, name):
    """``directory/name``: a pathlib.Path for a local pathlib.Path ``directory``, else a string."""
    if isinstance(directory, pathlib.Path):
        return directory / name.rstrip("/")
    return os.path.join(directory, name.rstrip("/"))


def _state_is_readable(directory):
    try:
        return tf.train.get_checkpoint_state(str(directory)) is not None
    except Exception:  # a garbage state file: text_format.ParseError, or a decode error
        return False


def restore_newest(checkpoint, directory, log=logging.warning, read_only=False):
    """Restores into ``checkpoint`` the newest checkpoint of ``directory`` that restores; returns its path.

    Returns None when ``directory`` holds no checkpoint file (a new run). A checkpoint restores
    if its files read and every object of ``checkpoint`` gets its value. The ones tried and
    skipped are logged with the reason and moved to ``directory/unreadable-<time>/``, as is a
    garbage state file; the state file is then rewritten to list the remaining checkpoints.
    Raises :class:`CheckpointError`, naming ``directory`` and each reason, when none restores.
    ``read_only`` (the other workers of a multi-worker run, reading the chief's folder): nothing is
    moved, removed or rewritten.
    """
    if not tf.io.gfile.isdir(str(directory)):
        return None
    if not read_only:
        remove_leftovers(directory)
    found = checkpoint_files(directory)
    if not found:
        return None
    skipped, restored = [], None
    for number in sorted(found, reverse=True):
        prefix = _join(directory, f"ckpt-{number}")
        try:
            checkpoint.restore(str(prefix)).assert_existing_objects_matched()
        except Exception as e:  # DataLossError, NotFoundError, ValueError, AssertionError, ...
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            skipped.append((number, f"{type(e).__name__}: {reason[:300]}"))
            continue
        restored = number
        break
    if restored is None:
        reasons = "; ".join(f"ckpt-{n}: {why}" for n, why in skipped)
        raise CheckpointError(
            f"{directory}: no checkpoint restores ({reasons}). Nothing was changed there; move the folder "
            "aside (or delete it) to train from step 0, or point --model_dir elsewhere"
        )
    if read_only:
        return _join(directory, f"ckpt-{restored}")
    aside = _join(directory, time.strftime("unreadable-%Y%m%d-%H%M%S"))
    moved = [path for number, _ in skipped for path in found[number]]
    state = _join(directory, STATE_FILE)
    if not _state_is_readable(directory) and tf.io.gfile.exists(str(state)):
        log(f"{state}: unreadable checkpoint state file; moved to {aside}, rewritten")
        moved.append(state)
    if moved:
        tf.io.gfile.makedirs(str(aside))
        for path in moved:
            tf.io.gfile.rename(str(path), os.path.join(str(aside), os.path.basename(str(path))), overwrite=True)
    for number, why in skipped:
        log(f"skipped checkpoint {_join(directory, f'ckpt-{number}')} ({why}); its files were moved to {aside}")
    _write_state(directory, sorted(n for n in found if n <= restored))
    return _join(directory, f"ckpt-{restored}")
