"""Advisory locks on files (``fcntl.flock``), held by one process at a time and freed by its death.

Used to claim an output (a predict output unit, an export version) for the time it is written:
a second process waits for the first, then sees its complete result; a SIGKILLed holder leaves
at most the empty lock file, which the next holder takes over and removes. :func:`claim` does not
wait: it is for owners held for hours (a training's ``--model_dir``), and names the holder's PID.
"""

import contextlib
import fcntl
import os
import signal
import threading


@contextlib.contextmanager
def hold(path):
    """Context manager: waits for, then holds, an exclusive lock on ``path`` (created if missing).

    The lock file is removed on release. Waiting on a lock file that its holder removes is
    handled (the lock is retaken on the file now at ``path``).
    """
    fd = None
    try:
        with _sigint_deferred():  # a Ctrl-C cannot land between taking the lock and holding fd
            fd = _try_acquire(path)
        if fd is None:  # another process holds it: wait, interruptible
            fd = _acquire(path)
        yield
    finally:
        if fd is not None:
            with _sigint_deferred():
                _release(path, fd)


@contextlib.contextmanager
def _sigint_deferred():
    """A SIGINT that arrives while open is recorded, and handled as before on exit (main thread;
    elsewhere, where Python runs no signal handler, nothing changes).

    Blocking the signal in this thread would not do: the kernel hands a process-directed SIGINT
    to any thread that does not block it (TensorFlow's, a Ctrl-C watcher's), and Python then runs
    its handler in the main thread at the next bytecode check anyway, e.g. right after ``os.open``
    created a lock file and before its descriptor was stored (seen in CI: ``.p1.lock`` left behind).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, received[-1])  # e.g. raises KeyboardInterrupt
        elif received and previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)


def _try_acquire(path):
    """The descriptor of ``path`` locked exclusively by this process, or None if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    os.close(fd)
    return None


class LockHeld(RuntimeError):
    """Another live process holds the lock; ``pid`` is its process id as it wrote it (None if unknown)."""

    def __init__(self, path, pid):
        super().__init__(f"{path}: held by process {pid if pid is not None else '(unknown)'}")
        self.path, self.pid = path, pid


@contextlib.contextmanager
def claim(path, log=None):
    """Context manager: holds an exclusive lock on ``path`` without waiting, with this PID written in it.

    Raises :class:`LockHeld` (naming the holder's PID) when a live process holds it. A lock file
    left by a dead holder (its PID still in it) is taken over, saying so through ``log(message)``.
    The lock file is removed on release.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise LockHeld(path, pid) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:  # its holder removed it between our open and lock
            same = False
        if same:
            break
        os.close(fd)
    try:
        stale = _read_pid(fd)
        if stale is not None and log is not None:
            log(f"{path}: taking over the lock of process {stale}, which is no longer running")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        yield
    finally:
        _release(path, fd)


def _release(path, fd):
    """Removes the lock file ``path`` (if still there) and closes its descriptor, which unlocks it."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(fd)


def _read_pid(fd):
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


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
