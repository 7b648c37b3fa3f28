"""Ctrl-C that a batch never loses.

Python raises KeyboardInterrupt where the main thread happens to be when SIGINT arrives; raised
inside a finaliser or a callback from C++ it is printed as "Exception ignored" and dropped, and a
batch would go on to the end. :func:`watch` also records the signal, and :func:`check` raises it
again at the next step of the loop.
"""

import contextlib
import signal
import threading


@contextlib.contextmanager
def watch():
    """While open (main thread only; elsewhere a no-op), SIGINT raises KeyboardInterrupt as usual and
    is also recorded in the yielded list; the previous handler is restored on exit."""
    requested = []
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def on_sigint(signum, frame):
        requested.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


def check(requested):
    """Raises KeyboardInterrupt if :func:`watch` recorded a SIGINT."""
    if requested:
        raise KeyboardInterrupt
