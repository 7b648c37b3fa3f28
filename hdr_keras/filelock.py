"""Advisory locks on files (``fcntl.flock``), held by one process at a time and freed by its death.

Used to claim an output (a predict output unit, an export version) for the time it is written:
a second process waits for the first, then sees its complete result; a SIGKILLed holder leaves
at most the empty lock file, which the next holder takes over and removes.
"""

import contextlib
import fcntl
import os


@contextlib.contextmanager
def hold(path):
    """Context manager: waits for, then holds, an exclusive lock on ``path`` (created if missing).

    The lock file is removed on release. Waiting on a lock file that its holder removes is
    handled (the lock is retaken on the file now at ``path``).
    """
    fd = _acquire(path)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _acquire(path):
    """The descriptor of ``path``, locked exclusively by this process.

    Interrupted (Ctrl-C) at any point, it leaves no lock file it created unless another process
    holds that file's lock (whose release then removes it).
    """
    while True:
        fd = None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        except BaseException:  # e.g. Ctrl-C while waiting
            if fd is not None:
                _abandon(path, fd)
            raise
        os.close(fd)  # the previous holder removed this file while we waited: lock the new one


def _abandon(path, fd):
    """Closes ``fd``, first removing ``path`` if it is this file and no other process holds its lock."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)
    os.close(fd)
