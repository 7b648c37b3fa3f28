"""The photos a batch reads: files and folders expanded, the missing ones, and what is passed over."""

import os
import pathlib

from hdr_keras.errors import UsageError


def collect(inputs, say, quiet=False):
    """(paths of the photos among ``inputs``: files, or folders listed non-recursively, see
    :func:`hdr_keras.io.list_images`; the number of files given that do not exist). ``say(line)``
    names each missing file and, unless ``quiet``, each folder entry passed over (:func:`passed_over`).
    UsageError when there is no photo."""
    from hdr_keras import io as hio

    paths = hio.list_images(inputs, hio.LDR_EXTS)
    missing = [path for path in paths if not os.path.lexists(path)]  # a symlink loop fails when read
    paths = [path for path in paths if os.path.lexists(path)]
    for path in missing:
        say(f"{path}: file not found")
    for path, reason in [] if quiet else passed_over(inputs, paths):
        say(f"{path}: skipped ({reason})")
    if not paths:
        raise UsageError("no input images found in " + ", ".join(map(str, inputs)))
    return paths, len(missing)


def passed_over(inputs, taken):
    """(path, reason) for every entry of the folders among ``inputs`` that is not in ``taken``."""
    from hdr_keras import io as hio

    taken = {os.path.realpath(path) for path in taken}  # realpath: a symlink loop does not raise
    types = " ".join(sorted(hio.LDR_EXTS))
    result = []
    for folder in (pathlib.Path(item) for item in inputs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if os.path.realpath(path) in taken:
                continue
            if path.name.startswith("."):
                reason = "hidden file"
            elif path.is_dir():
                reason = "a folder; folders are not searched recursively"
            elif not path.is_file():
                reason = "not a regular file"
            else:
                reason = f"{path.suffix or 'no extension'} is not a photo type ({types})"
            result.append((path, reason))
    return result
