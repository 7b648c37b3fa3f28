"""Output units of ``predict``: paths, format writers, atomic writes, the sidecar, previews, locks.

An input photo STEM makes one output unit in the output folder: one file per format
(:data:`FORMATS`), optionally STEM.png (a tone-mapped preview), and STEM.json, the sidecar, written
last: it lists every other file with its size and SHA-256, so it marks the unit complete
(:func:`unit_state`). Every file is written to a hidden temporary beside it, flushed to disk and
renamed into place (:func:`write_atomic`): a file is whole or absent, never half-written.
"""

import contextlib
import glob
import json
import math
import os
import pathlib
import re
import tempfile
import uuid

import numpy as np

from hdr_keras import durable
from hdr_keras.display import avif, ultrahdr
from hdr_keras.errors import UsageError
from hdr_keras.metrics import REC709_LUMA

FORMATS = {"exr": ".exr", "hdr": ".hdr", "uhdr": ".jpg", "avif": ".avif"}
"""``--format`` values and the suffix of the file each writes (docs/predict.md, "Formats")."""
PREVIEW_ROWS = 512
"""Rows tone-mapped at a time for the preview (bounds memory on large images)."""


def prepare_folder(out_dir):
    """Creates the output folder ``out_dir`` if missing; UsageError if it cannot be created or
    written in (a read-only folder fails before the first inference, not after)."""
    out_dir = pathlib.Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{out_dir}: cannot create output folder ({e.strerror or e})") from e
    try:
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise UsageError(f"{out_dir}: cannot write in the output folder ({e.strerror or e})") from e


def output_paths(out_dir, stem, formats, with_preview):
    """The output unit of an input named ``stem``: {role: Path}, roles the ``formats`` (names of
    FORMATS), 'json'[, 'preview'].

    'json' is the sidecar, the unit's completion marker: written last, it lists every other file
    with its size and SHA-256 (see :func:`unit_state`). A new output kind is one more role here.
    """
    paths = {fmt: out_dir / f"{stem}{FORMATS[fmt]}" for fmt in formats}
    paths["json"] = out_dir / f"{stem}.json"
    if with_preview:
        paths["preview"] = out_dir / f"{stem}.png"
    return paths


def format_writers(
    formats,
    hdr,
    photo,
    details,
    float32=False,
    max_boost=ultrahdr.DEFAULT_MAX_BOOST_STOPS,
    uhdr_quality=ultrahdr.DEFAULT_QUALITY,
    avif_quality=avif.DEFAULT_QUALITY,
):
    """{format: write(tmp_path)} for ``formats``, writing ``hdr`` [H, W, 3]; each writer records
    what it wrote (precision; gain map; nits mapping) in ``details[format]``.

    ``photo``: the input as read ([H, W, 3] in [0, 1], displayed orientation), uhdr's base image.
    """
    from hdr_keras import io as hio

    def exr(tmp):
        hio.write_exr(tmp, hdr, half=not float32)
        details["exr"] = {"precision": "float32" if float32 else "half"}

    def rgbe(tmp):
        hio.write_hdr(tmp, hdr)
        details["hdr"] = {"precision": "rgbe"}

    def gain_map_jpeg(tmp):
        details["uhdr"] = ultrahdr.write(tmp, photo, hdr, max_boost, uhdr_quality).as_dict()

    def pq_avif(tmp):
        details["avif"] = avif.write(tmp, hdr, avif_quality)

    writers = {"exr": exr, "hdr": rgbe, "uhdr": gain_map_jpeg, "avif": pq_avif}
    return {fmt: writers[fmt] for fmt in formats}


def writer_options(args):
    """The :func:`format_writers` options of parsed command-line ``args`` (``predict``, ``beam``)."""
    return {key: getattr(args, key) for key in ("float32", "max_boost", "uhdr_quality", "avif_quality")}


def check_options(
    formats,
    float32=False,
    max_boost=ultrahdr.DEFAULT_MAX_BOOST_STOPS,
    uhdr_quality=ultrahdr.DEFAULT_QUALITY,
    avif_quality=avif.DEFAULT_QUALITY,
):
    """UsageError (naming the ``predict`` flag) unless the :func:`format_writers` options are valid."""
    if float32 and "exr" not in formats:
        raise UsageError("--float32 applies to --format exr only")
    if not (math.isfinite(max_boost) and max_boost > 0):
        raise UsageError(f"--max_boost must be > 0 stops, got {max_boost}")
    if not 1 <= uhdr_quality <= 100:
        raise UsageError(f"--uhdr_quality must be in 1..100, got {uhdr_quality}")
    if not 0 <= avif_quality <= 100:
        raise UsageError(f"--avif_quality must be in 0..100, got {avif_quality}")


def tonemap_preview(hdr, exposure=None):
    """Tone map linear HDR to an 8-bit sRGB preview (for viewing only).

    Operator: NaN/Inf and negatives are set to 0; the image is multiplied by
    `exposure` (default: 0.18 / median of the positive Rec.709 luminances,
    i.e. the median pixel maps to 18% grey; 1 if nothing is positive);
    Reinhard ``L / (1 + L)`` is applied to the luminance and the RGB values are
    scaled by the same factor (preserving colour ratios), clipped to [0, 1],
    encoded with the sRGB OETF and rounded to 8 bits.

    Args:
        hdr: float array [H, W, 3], RGB linear radiance.
        exposure: positive linear multiplier, or None for automatic.

    Returns:
        uint8 array [H, W, 3].
    """
    rgb = np.asarray(hdr, np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {rgb.shape}")
    rgb = np.where(np.isfinite(rgb), np.maximum(rgb, 0.0), 0.0).astype(np.float32)
    lum = rgb @ np.array(REC709_LUMA, np.float32)
    if exposure is None:
        positive = lum[lum > 0]
        exposure = 0.18 / float(np.median(positive)) if positive.size else 1.0
    elif not (np.isfinite(exposure) and exposure > 0):
        raise ValueError(f"exposure must be a positive number, got {exposure}")
    lum = lum * np.float32(exposure)
    # Reinhard on luminance: scale = L_d / L = 1 / (1 + L); applied to exposed RGB.
    rgb = rgb * (np.float32(exposure) / (1.0 + lum))[..., None]
    rgb = np.clip(rgb, 0.0, 1.0)
    srgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)


def preview(hdr):
    """Tone-mapped uint8 preview of ``hdr``: :func:`tonemap_preview`, by row blocks.

    The automatic exposure of ``tonemap_preview`` (median positive Rec.709 luminance to 0.18) is
    computed once on the whole image, then blocks of PREVIEW_ROWS rows are tone-mapped with it.
    """
    lum = np.where(np.isfinite(hdr), np.maximum(hdr, 0.0), 0.0) @ np.array(REC709_LUMA, np.float32)
    positive = lum[lum > 0]
    exposure = 0.18 / float(np.median(positive)) if positive.size else 1.0
    del lum, positive
    out = np.empty(hdr.shape, np.uint8)
    for r in range(0, hdr.shape[0], PREVIEW_ROWS):
        out[r : r + PREVIEW_ROWS] = tonemap_preview(hdr[r : r + PREVIEW_ROWS], exposure=exposure)
    return out


def write_atomic(path, write):
    """Calls ``write(tmp)`` on a temporary file beside ``path`` (same suffix), flushes it to disk
    (fsync) and renames it to ``path``; the temporary is removed if anything fails."""
    tmp = path.parent / f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}"
    try:
        write(tmp)
        durable.fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    durable.fsync_folder(path.parent)


def sidecar_text(meta, inverse_crf):
    """JSON text of ``meta`` plus ``inverse_crf`` (float32 values written to round-trip exactly)."""
    head = json.dumps(meta, indent=2)
    curve = "[" + ", ".join(f"{float(v):.9g}" for v in np.asarray(inverse_crf, np.float32)) + "]"
    return head[:-2] + ',\n  "inverse_crf": ' + curve + "\n}\n"


def unit_state(outputs):
    """'absent' (no file of ``outputs`` exists), 'complete' or 'partial', with a reason.

    Complete: the sidecar ``outputs['json']`` parses and lists every other role of ``outputs``
    under ``files`` with the file's name and its current size. Anything else that exists
    (files without a sidecar, a sidecar of another or an interrupted run) is partial.
    """
    existing = [path for path in outputs.values() if path.exists()]
    if not existing:
        return "absent", None
    try:
        files = dict(json.loads(outputs["json"].read_text())["files"])
    except FileNotFoundError:
        return "partial", f"{existing[0].name} exists but no sidecar {outputs['json'].name} marks it complete"
    except (OSError, ValueError, KeyError, TypeError):
        return "partial", f"sidecar {outputs['json'].name} is unreadable or from an older version"
    for role, path in outputs.items():
        if role == "json":
            continue
        entry = files.get(role)
        if not isinstance(entry, dict) or entry.get("name") != path.name:
            return "partial", f"sidecar {outputs['json'].name} does not list {path.name}"
        if not path.exists() or path.stat().st_size != entry.get("bytes"):
            return "partial", f"{path.name} is missing or not the file the sidecar describes"
    return "complete", None


def plan_unit(outputs, overwrite=False, skip_existing=False):
    """What to do with the output unit ``outputs`` (see :func:`unit_state`): (action, note or None),
    action "write", "skipped" (complete, ``skip_existing``) or "failed" (exists, neither flag)."""
    state, reason = unit_state(outputs)
    if state == "complete" and skip_existing:
        return "skipped", None
    if state != "absent" and not overwrite and not skip_existing:
        existing = next(p for p in outputs.values() if p.exists())
        hint = "" if state == "complete" else f"; it is incomplete ({reason}): --skip_existing redoes it"
        return "failed", f"output exists: {existing} (pass --overwrite to replace it{hint})"
    if state == "partial" and skip_existing:
        return "write", f"redoing incomplete outputs ({reason})"
    return "write", None


def write_unit(outputs, writers):
    """Writes the files of an output unit but its sidecar: ``writers`` {role: write(tmp_path)}.

    The old sidecar is removed first, so an interruption leaves a partial unit, never new files
    beside a sidecar that describes others. Returns the sidecar's ``files`` entry:
    {role: {"name", "bytes", "sha256"}}.
    """
    from hdr_keras import pretrained

    with contextlib.suppress(FileNotFoundError):
        os.unlink(outputs["json"])
    files = {}
    for role, write in writers.items():
        write_atomic(outputs[role], write)
        path = outputs[role]
        files[role] = {"name": path.name, "bytes": path.stat().st_size, "sha256": pretrained.sha256(path)}
    return files


def write(outputs, result, photo, meta, start, **writer_options):
    """Writes the output unit ``outputs`` of ``result`` (an :class:`hdr_keras.engine.Result`): its
    format files and preview, then the sidecar: ``meta``, the files written, ``result.info``, the
    seconds since ``start`` (a ``time.perf_counter()``) and the curve. ``photo`` and
    ``writer_options``: see :func:`format_writers`."""
    import time

    from hdr_keras import io as hio

    details = {}
    writers = format_writers([role for role in outputs if role in FORMATS], result.hdr, photo, details, **writer_options)
    if "preview" in outputs:
        writers["preview"] = lambda tmp: hio.write_png(tmp, preview(result.hdr))
    files = write_unit(outputs, writers)
    for role, extra in details.items():
        files[role].update(extra)
    preview_name = outputs["preview"].name if "preview" in outputs else None
    meta = {**meta, "preview": preview_name, "files": files, **result.info}
    meta["seconds"] = round(time.perf_counter() - start, 3)
    write_atomic(outputs["json"], lambda tmp: pathlib.Path(tmp).write_text(sidecar_text(meta, result.inverse_crf)))


def remove_stale_temporaries(out_dir, stem):
    """Removes the temporary files of :func:`write_atomic` for ``stem`` that a killed run left."""
    pattern = re.compile(re.escape(f".{stem}.") + r"[0-9a-f]{12}\.tmp(\.[^.]*)?")
    for path in out_dir.glob(f".{glob.escape(stem)}.*.tmp*"):
        if pattern.fullmatch(path.name):
            with contextlib.suppress(OSError):
                path.unlink()


def unit_lock(out_dir, stem):
    """The lock file that claims the output unit of ``stem`` while a run writes it."""
    return out_dir / f".{stem}.lock"
