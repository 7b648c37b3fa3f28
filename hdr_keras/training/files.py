"""Run-folder files on a local disk or any ``tf.io.gfile`` file system (``gs://``, ``s3://``, ``hdfs://``).

Local writes are flushed (fsync) before the rename that publishes them, and the rename itself
(the folder) after it, so a crash or power loss leaves the old file or the new one, never a torn one.
Object stores publish a whole object when it is closed.
"""

import hashlib
import os
import tempfile

from hdr_keras import durable


def write_text(path, text):
    """Writes ``text`` to ``path`` through a temporary name, flushed (fsync) before the rename (local paths)."""
    import tensorflow as tf

    tmp = f"{path}.tmp{os.getpid()}"
    if is_local(path):
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        durable.fsync(os.path.dirname(path) or ".")
    else:  # object stores publish a whole object at close
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(text)
        tf.io.gfile.rename(tmp, path, overwrite=True)


def save_weights(model, path):
    """``model.save_weights(path)`` (a ``.weights.h5`` file) published whole: through a flushed
    temporary file renamed to ``path`` on a local disk, written locally then copied elsewhere."""
    import tensorflow as tf

    folder = os.path.dirname(os.path.abspath(path)) if is_local(path) else None
    with tempfile.TemporaryDirectory(dir=folder, prefix=".saving-") as tmp_dir:
        tmp = os.path.join(tmp_dir, os.path.basename(path))
        model.save_weights(tmp)
        if folder is None:
            tf.io.gfile.copy(tmp, path, overwrite=True)
            return
        durable.fsync(tmp)
        os.replace(tmp, path)
        durable.fsync(folder)


def is_local(path):
    """Whether ``path`` is on a local file system (no ``scheme://``)."""
    return "://" not in str(path)


def open_file(path, mode):
    """``open`` for local paths, ``tf.io.gfile.GFile`` for the others."""
    if is_local(path):
        return open(path, mode)
    import tensorflow as tf

    return tf.io.gfile.GFile(path, mode)


def listdir(folder):
    """The names of the files (not folders) in ``folder``."""
    if is_local(folder):
        return [e.name for e in os.scandir(folder) if e.is_file()]
    import tensorflow as tf

    return [n for n in tf.io.gfile.listdir(folder) if not n.endswith("/")]


def exists(path):
    """Whether ``path`` is a file."""
    if is_local(path):
        return os.path.isfile(path)
    import tensorflow as tf

    return tf.io.gfile.exists(path)


def local_copy(path, cache_dir):
    """``path`` when local; else a local copy, under ``cache_dir/remote/``, of the remote file or of the
    files of the remote folder (copied once: a file of the same size is kept)."""
    if not path or is_local(path):
        return path
    import tensorflow as tf

    key = hashlib.sha256(path.encode()).hexdigest()[:16]
    target = os.path.join(cache_dir, "remote", key, os.path.basename(path.rstrip("/")))
    if tf.io.gfile.isdir(path):
        os.makedirs(target, exist_ok=True)
        pairs = [(os.path.join(path, n), os.path.join(target, n)) for n in listdir(path)]
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        pairs = [(path, target)]
    for source, copy in pairs:
        if not os.path.isfile(copy) or os.path.getsize(copy) != tf.io.gfile.stat(source).length:
            part = f"{copy}.part{os.getpid()}"  # one per process: workers copy at once
            tf.io.gfile.copy(source, part, overwrite=True)
            os.replace(part, copy)
    return target
