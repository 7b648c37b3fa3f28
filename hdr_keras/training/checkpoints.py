"""Resuming training from the newest checkpoint that restores, without ever writing over the others.

A checkpoint ``ckpt-N`` of ``model_dir/checkpoints`` is the files ``ckpt-N.index`` and
``ckpt-N.data-*``; the ``checkpoint`` state file lists them (TensorFlow's CheckpointManager).
A kill, a full disk or a hand edit can leave a truncated ``.data`` / ``.index``, a missing half,
a garbage state file or ``ckpt-N_temp`` folders. :func:`restore_newest` looks at the files
themselves, newest first, restores the first checkpoint that restores completely, moves the
newer ones that did not into ``unreadable-<time>/`` (so that the run, which saves under the
same numbers again, never writes over them) and rewrites the state file to match.
"""

import logging
import os
import pathlib
import re
import shutil
import time

import tensorflow as tf

STATE_FILE = "checkpoint"
_CHECKPOINT_FILE = re.compile(r"ckpt-(\d+)\.(index|data-\d+-of-\d+)")


class CheckpointError(RuntimeError):
    """Checkpoints exist but none restores: the run stops rather than start again from step 0."""


def remove_leftovers(directory):
    """Removes what a killed save leaves in ``directory``: ``ckpt-N_temp`` folders, state-file temporaries."""
    directory = pathlib.Path(directory)
    for path in directory.glob("ckpt-*_temp"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    for path in directory.glob(f"{STATE_FILE}.tmp*"):
        path.unlink(missing_ok=True)


def checkpoint_files(directory):
    """{N: [paths of ckpt-N's files]} in ``directory``, from the file names (not the state file)."""
    found = {}
    for path in pathlib.Path(directory).iterdir():
        match = _CHECKPOINT_FILE.fullmatch(path.name)
        if match:
            found.setdefault(int(match.group(1)), []).append(path)
    return found


def _state_is_readable(directory):
    try:
        return tf.train.get_checkpoint_state(str(directory)) is not None
    except Exception:  # a garbage state file: text_format.ParseError, or a decode error
        return False


def restore_newest(checkpoint, directory, log=logging.warning):
    """Restores into ``checkpoint`` the newest checkpoint of ``directory`` that restores; returns its path.

    Returns None when ``directory`` holds no checkpoint file (a new run). A checkpoint restores
    if its files read and every object of ``checkpoint`` gets its value. The ones tried and
    skipped are logged with the reason and moved to ``directory/unreadable-<time>/``, as is a
    garbage state file; the state file is then rewritten to list the remaining checkpoints.
    Raises :class:`CheckpointError`, naming ``directory`` and each reason, when none restores.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return None
    remove_leftovers(directory)
    found = checkpoint_files(directory)
    if not found:
        return None
    skipped, restored = [], None
    for number in sorted(found, reverse=True):
        prefix = directory / f"ckpt-{number}"
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
    aside = directory / time.strftime("unreadable-%Y%m%d-%H%M%S")
    moved = [path for number, _ in skipped for path in found[number]]
    if not _state_is_readable(directory) and (directory / STATE_FILE).exists():
        log(f"{directory / STATE_FILE}: unreadable checkpoint state file; moved to {aside}, rewritten")
        moved.append(directory / STATE_FILE)
    if moved:
        aside.mkdir(exist_ok=True)
        for path in moved:
            os.replace(path, aside / path.name)
    for number, why in skipped:
        log(f"skipped checkpoint {directory / f'ckpt-{number}'} ({why}); its files were moved to {aside}")
    kept = sorted(n for n in found if n <= restored)
    tf.compat.v1.train.update_checkpoint_state(
        str(directory), f"ckpt-{restored}", all_model_checkpoint_paths=[f"ckpt-{n}" for n in kept]
    )
    return directory / f"ckpt-{restored}"
