"""Flushing to disk, so that a rename publishes a whole file that survives a crash or power loss."""

import contextlib
import os


def fsync(path):
    """Flushes a local file's content, or a folder's entries (a rename into it), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder):
    """:func:`fsync` of a folder, where the platform allows opening one (elsewhere nothing)."""
    with contextlib.suppress(OSError):
        fsync(folder)
