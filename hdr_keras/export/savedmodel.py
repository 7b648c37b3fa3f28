"""SavedModel export (``export_dir/<version>/``, the layout TF Serving loads), swapped in atomically."""

import ctypes
import errno
import os
import pathlib
import shutil
import uuid

import tensorflow as tf

from hdr_keras import filelock
from hdr_keras.export.serving import DEFAULT_MAX_PIXELS, ServingModule


def export_savedmodel(
    model, export_dir, version=1, bytes_signature=True, overwrite=False, max_pixels=DEFAULT_MAX_PIXELS
):
    """Writes ``model`` as a SavedModel at ``export_dir/<version>/``; returns that path.

    ``version`` must be a positive integer (TF Serving loads numeric subdirectories only and
    serves the highest by default). An existing version directory raises FileExistsError
    unless ``overwrite``. ``max_pixels`` caps a request (see :class:`ServingModule`); the signatures
    refuse bad inputs (:func:`check_ldr`).

    The SavedModel is written to a hidden sibling ``.<version>.partial-<id>`` (which TF Serving
    ignores) and renamed into place; an existing version is swapped with it in one atomic
    exchange (``renameat2(RENAME_EXCHANGE)``), so a kill at any moment leaves the old version or
    the new one, complete, never an absent or half-written one. Exports of one version are
    serialised by a lock file ``.<version>.lock``; hidden siblings that a killed export left
    behind are removed first.
    """
    version = int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    export_dir = pathlib.Path(export_dir)
    path = export_dir / str(version)
    export_dir.mkdir(parents=True, exist_ok=True)
    with filelock.hold(export_dir / f".{version}.lock"):  # one export of a version at a time
        _recover_version(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists (pass overwrite=True / --overwrite to replace it)")
        partial = export_dir / f".{version}.partial-{uuid.uuid4().hex[:12]}"
        try:
            module = ServingModule(model, bytes_signature=bytes_signature, max_pixels=max_pixels, check_inputs=True)
            tf.saved_model.save(module, str(partial), signatures=module.signatures())
            _swap_in(partial, path)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return path


def _recover_version(path):
    """Undoes what a killed :func:`export_savedmodel` of ``path`` left: restores ``path`` from a
    ``.<version>.old-*`` sibling if it is missing (a kill between the two renames of the fallback
    swap), then removes the hidden ``.partial-*`` / ``.old-*`` siblings."""
    siblings = sorted(path.parent.glob(f".{path.name}.old-*")) + sorted(path.parent.glob(f".{path.name}.partial-*"))
    for sibling in siblings:
        if ".old-" in sibling.name and not path.exists():
            os.rename(sibling, path)
        else:
            shutil.rmtree(sibling, ignore_errors=True)


def _rename_exchange(a, b):
    """Atomically swaps the paths ``a`` and ``b`` (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(new, path):
    """Moves the complete folder ``new`` to ``path``; an old ``path`` ends up at ``new`` (then removed)."""
    if not path.exists():
        os.rename(new, path)
        return
    if _rename_exchange(new, path):
        return
    old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
    os.rename(path, old)  # a kill here leaves `old`, which _recover_version moves back
    os.rename(new, path)
