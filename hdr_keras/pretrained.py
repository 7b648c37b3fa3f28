"""Weights files: the shipped ones, and the one strict loader every command and script uses.

A Keras ``.weights.h5`` file holds one HDF5 dataset per variable, at a path that follows the
model's attributes (``dequantization/layers/u_net/head/vars/0``). Before anything is loaded the
file's {path: shape} layout is compared with the model's: a file that does not match exactly is
refused with one line naming the file, what differs, the preset (or single stage) it fits if
any, and what was expected. Nothing is ever run with part of its weights at random initialisation.
Resolving and checking files imports no TensorFlow; building a model does.
"""

import functools
import hashlib
import pathlib
import re
import tempfile
import warnings

from hdr_keras.errors import UsageError
from hdr_keras.presets import PRESETS

WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "assets" / "weights"
WHOLE = "SingleHDR"
STAGES = ("dequantization", "linearization", "hallucination", "refinement")


class WeightsError(UsageError):
    """A weights file that cannot be loaded into the model; the message is one line naming the file."""


class MissingWeightsError(UsageError):
    """No weights file given and none shipped for the preset."""


def shipped_weights(preset):
    """Path of the weights shipped for ``preset`` (``<preset>.weights.h5``), or None if none ship."""
    path = WEIGHTS_DIR / f"{preset}.weights.h5"
    return path if path.is_file() else None


def resolve_weights(preset, weights=None, allow_random=False, random_flag=None):
    """The weights file to use: ``weights`` if given, else the preset's shipped weights.

    Returns None (random initial weights) only with ``allow_random``. A given file that does not
    exist raises FileNotFoundError naming it; a preset without shipped weights raises
    :class:`MissingWeightsError` saying what to pass (``random_flag``, if the command has one).
    """
    if weights:
        weights = pathlib.Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: weights file not found")
        return weights
    shipped = shipped_weights(preset)
    if shipped is not None or allow_random:
        return shipped
    hint = f", or {random_flag} for a smoke test with random initial weights (its outputs are meaningless)"
    raise MissingWeightsError(
        f"no weights are shipped for preset {preset!r} (expected {WEIGHTS_DIR / (preset + '.weights.h5')}); "
        "pass --weights FILE, a .weights.h5 of the whole SingleHDR (a training run's single_hdr.weights.h5)"
        + (hint if random_flag else "")
    )


def sha256(path):
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_layout(path):
    """{variable path: shape} of a ``.weights.h5`` file; WeightsError if HDF5 cannot read it."""
    import h5py

    layout = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            layout[name] = tuple(item.shape)

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except OSError as e:
        reason = re.search(r"\(([^()]*)\)\s*$", str(e))
        reason = reason.group(1) if reason else str(e)
        truncated = re.match(r"truncated file: eof = (\d+),.*stored_eof = (\d+)", reason)
        if truncated:
            reason = f"truncated: {truncated.group(1)} of {truncated.group(2)} bytes"
        elif "signature not found" in reason:
            reason = "not an HDF5 file"
        raise WeightsError(f"{path}: not a readable Keras .weights.h5 file ({reason})") from None
    return layout


def model_layout(model):
    """{variable path: shape} that ``model.save_weights`` writes (and ``load_weights`` expects)."""
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "layout.weights.h5"
        model.save_weights(path)
        return file_layout(path)


def build_model(preset, weights=None, refine=True):
    """:meth:`SingleHDR.from_preset <hdr_keras.models.SingleHDR.from_preset>`, the one loader
    (kept for the training scripts and tests that call it by this name)."""
    from hdr_keras.models import SingleHDR

    return SingleHDR.from_preset(preset, weights=weights, refine=refine)


def load_weights(model, path, preset, part=WHOLE):
    """Loads ``path`` into ``model`` only if the file holds exactly the model's variables.

    ``model`` is the whole SingleHDR of ``preset`` (``part="SingleHDR"``) or one of its stages
    (``part`` in :data:`STAGES`). Raises FileNotFoundError, or :class:`WeightsError` with one line:
    unreadable file, or which variables are missing / unexpected / of another shape, and the
    preset or single stage the file fits, if any.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    found = file_layout(path)
    expected = model_layout(model)
    if found != expected:
        raise WeightsError(_mismatch(path, found, expected, preset, part))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.load_weights(path)


def load_stage_weights(model, folder, preset, required=()):
    """Strictly loads each ``<stage>.weights.h5`` of ``folder`` into that stage of ``model``.

    Stages whose file is absent keep their weights, unless listed in ``required`` (stage
    attribute names), which raises FileNotFoundError naming the file. Returns the files loaded.
    """
    folder = pathlib.Path(folder) if folder else None
    loaded = []
    for stage in STAGES:
        path = folder / f"{stage}.weights.h5" if folder else None
        if path is not None and path.is_file() and getattr(model, stage) is not None:
            load_weights(getattr(model, stage), path, preset, stage)
            loaded.append(path)
        elif stage in required:
            where = path or "no --stage_weights_dir given"
            raise FileNotFoundError(f"{where}: weights of the {stage} stage are needed to start")
    return loaded


@functools.lru_cache(maxsize=None)
def _reference_layouts(preset):
    """{part: layout} of a freshly built model of ``preset``: the whole SingleHDR and each stage."""
    from hdr_keras.models import SingleHDR

    model = SingleHDR.from_preset(preset)
    layouts = {WHOLE: model_layout(model)}
    layouts.update({stage: model_layout(getattr(model, stage)) for stage in STAGES})
    return layouts


def _describe(preset, part):
    return f"a whole SingleHDR of preset '{preset}'" if part == WHOLE else f"the {part} stage alone of preset '{preset}'"


def _mismatch(path, found, expected, preset, part):
    """The one-line reason why ``found`` (a file's layout) does not fit ``expected``."""
    want = _describe(preset, part)
    if not found:
        return f"{path}: holds no weights (an empty Keras file); expected {want}"
    # the expected preset first: another preset is built only when the file fits no part of this one
    ordered = sorted(PRESETS, key=lambda p: p != preset)
    fits = ((p, q) for p in ordered for q, layout in _reference_layouts(p).items() if layout == found)
    fit = next(fits, None)
    if fit:
        fit_preset, fit_part = fit
        hint = ""
        if fit_part == part:
            hint = f"; pass --preset {fit_preset}"
        elif part == WHOLE:
            hint = "; pass the whole chain (a training run's single_hdr.weights.h5)"
        return f"{path}: holds {_describe(fit_preset, fit_part)}, expected {want}{hint}"
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    reshaped = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the {len(expected)} variables missing (e.g. {missing[0]})")
    if extra:
        parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
    if reshaped:
        k = reshaped[0]
        parts.append(f"{len(reshaped)} of another shape (e.g. {k}: {found[k]} in the file, {expected[k]} expected)")
    return f"{path}: does not fit {want} and fits no preset: {'; '.join(parts)}"
