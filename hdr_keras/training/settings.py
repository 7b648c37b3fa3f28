"""A training run's settings, written into its ``--model_dir`` at start and compared on resume.

``model_dir/settings.json`` holds the flags, the package versions, and every input the run reads
with content hashes: the training, validation (and real-pair) HDR sets, the camera-curve files
of ``--crf_dir`` and the weights it starts from. A run started again on the same ``--model_dir``
warns once per flag (and per input) that differs from the last start; the earlier file is kept
as ``settings-<UTC time>.json``. Paths may be local or any ``tf.io.gfile`` scheme (``gs://``).
"""

import hashlib
import importlib.metadata
import json
import os
import platform
import sys
import time

from hdr_keras import io
from hdr_keras.training import files

SETTINGS_FILE = "settings.json"
CURVE_FILES = ("invemor.txt", "emor.txt", "dorf_curves.npz", "modern_curves.npz")
PACKAGES = ("hdr-keras", "numpy", "opencv-python-headless", "absl-py", "OpenEXR")
_SKIPPED_FLAG_MODULES = ("absl", "tensorflow", "tensorboard", "keras")


def flag_values(flags_values):
    """{flag: value} of the run's own flags: an absl ``FlagValues`` (absl's own flags left out) or a namespace."""
    if hasattr(flags_values, "flags_by_module_dict"):
        return {
            flag.name: flag.value
            for module, module_flags in flags_values.flags_by_module_dict().items()
            if not module.startswith(_SKIPPED_FLAG_MODULES)
            for flag in module_flags
        }
    return dict(vars(flags_values))


def file_sha256(path):
    """Hex sha256 of a file's content (local or ``tf.io.gfile``)."""
    digest = hashlib.sha256()
    with files.open_file(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_set(folder, exts):
    """{"dir", "files": {name: sha256}, "sha256": of the sorted names and hashes} of ``folder``'s files with ``exts``."""
    names = sorted(n for n in files.listdir(folder) if n.lower().endswith(exts))
    hashes = {name: file_sha256(os.path.join(folder, name)) for name in names}
    blob = json.dumps(hashes, sort_keys=True).encode()
    return {"dir": str(folder), "files": hashes, "sha256": hashlib.sha256(blob).hexdigest()}


def collect(flags_values):
    """The settings dict of a run configured by ``flags_values`` (see the module doc)."""
    values = flag_values(flags_values)
    inputs = {}
    for key, exts in (("data_dir", io.HDR_EXTS), ("val_dir", io.HDR_EXTS), ("pairs_dir", io.HDR_EXTS + io.LDR_EXTS)):
        if values.get(key):
            inputs[key] = file_set(values[key], exts)
    crf_dir = values.get("crf_dir")
    if crf_dir:
        inputs["crf_dir"] = {
            "dir": str(crf_dir),
            "files": {n: file_sha256(os.path.join(crf_dir, n)) for n in CURVE_FILES if files.exists(os.path.join(crf_dir, n))},
        }
    for key in ("init_weights", "vgg_weights"):
        if values.get(key):
            inputs[key] = {"file": str(values[key]), "sha256": file_sha256(values[key])}
    if values.get("stage_weights_dir"):
        inputs["stage_weights_dir"] = file_set(values["stage_weights_dir"], (".weights.h5",))
    return {
        "command": [os.path.basename(sys.argv[0]), *sys.argv[1:]],
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(),
        "flags": {k: _jsonable(v) for k, v in sorted(values.items())},
        "versions": {"python": platform.python_version(), **_versions()},
        "inputs": inputs,
    }


def differences(previous, current):
    """One line per flag, then per input, whose value differs between two settings dicts."""
    lines = []
    old_flags, new_flags = previous.get("flags", {}), current["flags"]
    for name in sorted(set(old_flags) | set(new_flags)):
        if old_flags.get(name) != new_flags.get(name):
            lines.append(f"--{name} was {old_flags.get(name)!r} at the last start, now {new_flags.get(name)!r}")
    old_inputs, new_inputs = previous.get("inputs", {}), current["inputs"]
    for name in sorted(set(old_inputs) | set(new_inputs)):
        old, new = old_inputs.get(name, {}), new_inputs.get(name, {})
        if old.get("sha256", old.get("files")) != new.get("sha256", new.get("files")):
            lines.append(f"the content of --{name} differs from the last start")
    return lines


def record(model_dir, settings, log):
    """Writes ``settings`` to ``model_dir/settings.json``; ``log``s each difference from the last start.

    The previous file, when it differs, is kept as ``settings-<UTC time>.json``.
    """
    import tensorflow as tf

    path = os.path.join(model_dir, SETTINGS_FILE)
    if tf.io.gfile.exists(path):
        try:
            with tf.io.gfile.GFile(path) as f:
                previous = json.load(f)
        except ValueError:
            previous = {}
            log(f"{path}: unreadable settings of an earlier start; kept aside")
        changes = differences(previous, settings)
        for line in changes:
            log(f"resuming {model_dir} with other settings: {line}")
        if changes or not previous:
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
            tf.io.gfile.rename(path, os.path.join(model_dir, f"settings-{stamp}.json"), overwrite=True)
    tf.io.gfile.makedirs(model_dir)
    files.write_text(path, json.dumps(settings, indent=1) + "\n")
    return path


def _versions():
    import keras
    import tensorflow as tf

    found = {"tensorflow": tf.__version__, "keras": keras.__version__}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)
