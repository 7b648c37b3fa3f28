"""Measure a camera's response curve from bracketed exposure stacks and write a camera profile.

Shoot a static scene at several exposure times (a bracketed burst; hand-held is fine), then run
``hdr-keras calibrate STACK_FOLDER --save``: the inverse response curve recovered from the frames
is saved as this camera's profile, and ``predict`` uses it for every later photo whose EXIF names
the same camera make and model (docs/calibrate.md).

Each INPUT is a folder (one stack: its JPEG/PNG/TIFF files) or image files (together one stack).
Exposure times come from EXIF, else from an exposures.tsv in the folder, unless --times gives
them. Frames are read at a working size (--long_side), aligned with median-threshold bitmaps (MTB)
and fitted by each method (Debevec, Robertson, a monotone EMoR fit); the method and the channel
mode (one curve shared by R, G, B, or one per channel) that predict held-out frames best (frames
the fit did not use, or each frame left out of a refit in turn, predicted from the nearest
exposure through the curve and the exposure ratio) are kept. Exit status: 0 profile written, 2 stack refused or bad arguments.
"""

import concurrent.futures
import dataclasses
import fractions
import os
import pathlib
import sys
import time

import cv2
import numpy as np

from hdr_keras import crf, profiles
from hdr_keras import stack as stack_lib

METHODS = ("debevec", "robertson", "emor")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
DEFAULT_LONG_SIDE = 512
"""Working size of the fit: frames are downscaled to this many pixels on their long side."""
DEFAULT_OUTPUT = "camera_profile.json"
WELL_EXPOSED = (5, 250)
"""8-bit values (inclusive) that the fits and the held-out error use; outside, noise or clipping."""
TRUSTED_TOP = 240
"""Highest 8-bit value whose fitted response is trusted; the curve above is extrapolated."""
MAX_MISALIGNMENT = 0.15
"""Largest residual misalignment accepted: the fraction of MTB bits that still disagree with the
middle frame after alignment (docs/calibrate.md: 0-0.03 on aligned stacks, 0.075 for a frame rotated
by 2 degrees, 0.21 by 5 degrees, 0.47 for another scene)."""
PER_CHANNEL_MARGIN = 0.9
"""Per-channel curves are kept only when their held-out error is below this times the shared curve's."""
DEBEVEC_SAMPLES = 100
DEBEVEC_LAMBDA = 10.0
ROBERTSON_LONG_SIDE = 256
"""Robertson runs on every pixel; this smaller working size keeps it as fast as the others."""
MAX_HELD_OUT = 4
"""Frames per stack whose prediction measures the held-out error (spread over the exposures)."""
MAX_FIT_FRAMES = 7
"""The fits use at most this many frames of a stack, spread over the exposures; the others are held out."""
EMOR_BASIS = 11
EMOR_ITERATIONS = 6
EMOR_SMOOTHNESS = 10.0
"""Weight of the second-difference penalty of the EMoR fit (real stacks of few frames need it)."""
EMOR_PAIRS = 2
"""The EMoR fit pairs each frame with this many next longer exposures."""


class CalibrationError(ValueError):
    """A stack that cannot be calibrated; the message is one line naming the file(s) and the reason."""


@dataclasses.dataclass(frozen=True)
class Stack:
    """One bracketed stack at working size, sorted by exposure time (shortest first).

    ``files`` paths [E]; ``times`` float64 [E] seconds; ``images`` uint8 [E, h, w, 3] RGB aligned
    (MTB) and cropped to the pixels every frame covers; ``misalignment`` float [E] the fraction of
    MTB bits disagreeing with the middle frame after alignment; ``size`` (width, height) of the
    photos; ``make``, ``model`` from EXIF (or ``None``).
    """

    name: str
    files: tuple
    times: np.ndarray
    images: np.ndarray
    shifts: np.ndarray
    misalignment: np.ndarray
    size: tuple
    make: str
    model: str


# ----------------------------------------------------------------------------- reading stacks


def parse_times(text):
    """``--times``: ``{"list": [seconds, ...]}`` from ``"1/80,1/20,0.2"``, or ``{"file": {name: seconds}}``
    from a path to a TSV with the columns ``file`` and ``exposure_time_s`` (as exposures.tsv)."""
    path = pathlib.Path(text)
    if path.is_file():
        try:
            rows = stack_lib.read_exposures_file(path)
        except ValueError as error:
            raise CalibrationError(str(error)) from None
        return {"file": dict(rows)}
    try:
        values = [float(fractions.Fraction(part.strip())) for part in text.split(",") if part.strip()]
    except (ValueError, ZeroDivisionError):
        raise CalibrationError(
            f"--times {text!r}: neither a file nor comma-separated seconds (1/80,1/20,...)"
        ) from None
    if not values or min(values) <= 0:
        raise CalibrationError(f"--times {text!r}: exposure times must be positive seconds")
    return {"list": values}


def group_inputs(inputs):
    """``[(stack name, [image paths])]``: one stack per folder (its image files, sorted), one for all files."""
    stacks, loose = [], []
    for item in inputs:
        path = pathlib.Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not files:
                raise CalibrationError(f"{path}: no JPEG, PNG or TIFF files in this folder")
            stacks.append((path.name, files))
        elif path.is_file():
            loose.append(path)
        else:
            raise CalibrationError(f"{path}: no such file or folder")
    if loose:
        stacks.append((loose[0].parent.name or "stack", loose))
    return stacks


def read_frame(path, long_side):
    """An image at working size and its full size: ``(uint8 RGB [h, w, 3], (width, height))``, the
    long side at most ``long_side``.

    JPEGs are decoded at 1/2, 1/4 or 1/8 scale when that still leaves ``long_side`` pixels (the
    decoder's DCT scaling, much faster on large photos), then area-downscaled; 16-bit PNG/TIFF are
    rounded to 8 bits.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            is_jpeg = image.format == "JPEG"
    except Exception:  # Pillow raises many types for a file that is not an image
        raise CalibrationError(f"{path}: cannot read this image (not a JPEG, PNG or TIFF file, or damaged)") from None
    flags = cv2.IMREAD_COLOR
    if is_jpeg:
        reductions = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))
        for factor, reduced in reductions:
            if max(width, height) / factor >= long_side:
                flags = reduced
                break
    else:
        flags |= cv2.IMREAD_ANYDEPTH
    image = cv2.imread(str(path), flags)
    if image is None:
        raise CalibrationError(f"{path}: cannot decode this image")
    if image.dtype == np.uint16:
        image = np.round(image / 257.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise CalibrationError(f"{path}: {image.dtype} pixels; calibrate takes 8- or 16-bit images")
    h, w = image.shape[:2]
    if max(h, w) > long_side:
        scale = long_side / max(h, w)
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (width, height)


def _frame_exif(path):
    try:
        return profiles.read_exif(path)
    except Exception:  # unreadable: read_frame says so
        return profiles.Exif()


def load_stack(name, files, times=None, long_side=DEFAULT_LONG_SIDE, pool=None):
    """Reads, checks and aligns one stack; raises :class:`CalibrationError` (one line) if it is unusable.

    ``times``: seconds [E] in the order of ``files``, or ``None`` for EXIF (then the folder's
    exposures.tsv). Refuses one frame, equal exposure times, frames of different sizes or cameras,
    and a scene that moved too much to align (:data:`MAX_MISALIGNMENT`). ``pool``: the thread pool
    that reads the frames (default: one of a thread per core).
    """
    if pool is None:
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            return load_stack(name, files, times, long_side, pool)
    files = [pathlib.Path(f) for f in files]
    where = files[0].parent if len({f.parent for f in files}) == 1 else name
    if len(files) < 2:
        raise CalibrationError(f"{files[0]}: a stack needs at least 2 frames at different exposure times, got 1")
    exifs = list(pool.map(_frame_exif, files))
    frames = list(pool.map(lambda f: read_frame(f, long_side), files))
    sizes = [size for _, size in frames]
    for f, size in zip(files, sizes):
        if size != sizes[0]:
            raise CalibrationError(
                f"{f}: size {size[0]}x{size[1]} differs from {files[0].name}'s {sizes[0][0]}x{sizes[0][1]}"
            )
    cameras = [e.camera for e in exifs]
    for f, camera in zip(files, cameras):
        if camera and cameras[0] and camera != cameras[0]:
            raise CalibrationError(
                f"{f}: taken with {camera!r}, {files[0].name} with {cameras[0]!r}; one camera per profile"
            )
    if times is None:
        times = [e.exposure_time for e in exifs]
        if None in times:
            table = {}
            if (files[0].parent / stack_lib.EXPOSURES_FILE).is_file():
                table = dict(stack_lib.read_exposures_file(files[0].parent / stack_lib.EXPOSURES_FILE))
            times = [t if t is not None else table.get(f.name) for t, f in zip(times, files)]
            missing = [f for f, t in zip(files, times) if t is None]
            if missing:
                raise CalibrationError(f"{missing[0]}: no exposure time in its EXIF; pass --times")
    times = np.asarray(times, np.float64)
    if np.unique(np.round(np.log2(times), 3)).size < 2:
        raise CalibrationError(f"{where}: all {len(files)} frames have the same exposure time ({times[0]:g} s); "
                               "a stack needs different exposure times")
    order = np.argsort(times, kind="stable")
    images = np.stack([frames[i][0] for i in order])
    aligned, shifts = stack_lib.align(images)
    residual = stack_lib.misalignment(aligned)
    worst = int(np.nanargmax(np.nan_to_num(residual, nan=-1.0)))
    if residual[worst] > MAX_MISALIGNMENT:
        raise CalibrationError(
            f"{files[order[worst]]}: the scene moved too much to align ({residual[worst]:.0%} of the bitmap "
            f"still disagrees with the middle frame after alignment, limit {MAX_MISALIGNMENT:.0%})"
        )
    make = next((e.make for e in exifs if e.make), None)
    model = next((e.model for e in exifs if e.model), None)
    return Stack(name, tuple(files[i] for i in order), times[order], aligned, shifts, residual, sizes[0], make, model)


# ----------------------------------------------------------------------------- curves


def _observed_range(stacks):
    """The well-exposed 8-bit values that the frames of ``stacks`` (uint8 arrays) hold: ``(lowest,
    highest)`` within :data:`WELL_EXPOSED`."""
    lo, hi = WELL_EXPOSED
    counts = sum(np.bincount(np.asarray(images).ravel(), minlength=256) for images in stacks)[lo : hi + 1]
    seen = np.flatnonzero(counts >= max(1, counts.sum() // 20000))
    return (lo + int(seen[0]), lo + int(seen[-1])) if seen.size else (lo, hi)


def _response_curves(response, stacks):
    """A response [256, C] (relative irradiance of each 8-bit value, any scale) fitted to the frames
    of ``stacks`` (uint8 arrays) -> monotone inverse curves [C, 1024], 0 at 0 and 1 at 1.

    Only the values the frames hold well exposed (:func:`_observed_range`) are trusted, and at most
    up to :data:`TRUSTED_TOP` (downscaling blends clipped pixels into the values just below them):
    below them the curve runs straight to 0, above them it continues as the power law through its
    values at ``top - 24`` and ``top``, which is where ``g(1)`` (the normalisation) comes from.
    """
    lo, hi = _observed_range(stacks)
    top = max(min(hi, TRUSTED_TOP), lo + 24)
    values = np.arange(256, dtype=np.float64)
    curves = []
    for r in np.asarray(response, np.float64).reshape(256, -1).T:
        r = np.where(np.isfinite(r), r, 0.0)
        if r[top - 24] > 0 and r[top] > r[top - 24]:
            power = np.clip(np.log(r[top] / r[top - 24]) / np.log(top / (top - 24)), 0.5, 8.0)
        else:
            power = 1.0
        g = np.where(values < lo, r[lo] * values / lo, np.where(values > top, r[top] * (values / top) ** power, r))
        curves.append(np.interp(crf.GRID, values / 255.0, g))
    return crf.monotone_projection(np.stack(curves))


def _fit_debevec(images, times):
    calibrator = cv2.createCalibrateDebevec(samples=DEBEVEC_SAMPLES, lambda_=DEBEVEC_LAMBDA, random=False)
    return _response_curves(calibrator.process(list(images), np.asarray(times, np.float32)), [images])


def _fit_robertson(images, times):
    h, w = images.shape[1:3]
    if max(h, w) > ROBERTSON_LONG_SIDE:
        scale = ROBERTSON_LONG_SIDE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        images = np.stack([cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in images])
    response = cv2.createCalibrateRobertson().process(list(images), np.asarray(times, np.float32))
    return _response_curves(response, [images])


def _emor_basis():
    """The inverse EMoR mean and basis at the 8-bit values: [1 + K, 256]."""
    basis = crf.inverse_basis_asset()[: 1 + EMOR_BASIS].astype(np.float64)
    return np.stack([np.interp(np.arange(256) / 255.0, crf.GRID, b) for b in basis])


def pair_histograms(stacks):
    """Joint histograms of well-exposed pixel pairs: ``{ratio: int64 [3, 256 * 256]}``.

    For every frame ``a`` and the next :data:`EMOR_PAIRS` longer frames ``b`` of a stack, the pixels
    well exposed in both are counted per channel at ``va * 256 + vb``, pooled over pairs with the
    same exposure ratio ``t_b / t_a`` (to 3 digits).
    """
    lo, hi = WELL_EXPOSED
    table = {}
    for images, times in stacks:
        well = (images >= lo) & (images <= hi)
        for a in range(len(times)):
            for b in range(a + 1, min(a + 1 + EMOR_PAIRS, len(times))):
                ratio = round(float(times[b] / times[a]), 3)
                if ratio <= 1.0:
                    continue
                hist = table.setdefault(ratio, np.zeros((3, 65536), np.int64))
                keep = well[a] & well[b]
                for c in range(3):
                    pairs = images[a][..., c][keep[..., c]].astype(np.int64) * 256 + images[b][..., c][keep[..., c]]
                    hist[c] += np.bincount(pairs, minlength=65536)
    return table


def _pair_counts(histograms, channels):
    """``(va, vb, ratio, count)`` of the pairs in ``histograms`` pooled over ``channels``; ``None`` if none."""
    va, vb, ratio, count = [], [], [], []
    for r, hist in histograms.items():
        pooled = hist[list(channels)].sum(axis=0)
        index = np.flatnonzero(pooled)
        va.append(index // 256)
        vb.append(index % 256)
        ratio.append(np.full(index.size, r))
        count.append(pooled[index])
    if not va or not sum(len(v) for v in va):
        return None
    return np.concatenate(va), np.concatenate(vb), np.concatenate(ratio), np.concatenate(count).astype(np.float64)


def _fit_emor_channels(histograms, channels):
    """EMoR response [256] (relative scale) that maps every well-exposed pair as ``g(vb) = r g(va)``.

    The curve is ``a g0 + sum_k w_k h_k`` (the EMoR mean scaled, so that the data need not pin
    ``g(1)``: values above the well-exposed range are never seen), held at 1 at the median observed
    value. Iteratively reweighted least squares on ``(a, w)``: the residual ``r g(va) - g(vb)`` is
    divided by its slope-weighted 8-bit noise ``sqrt((r g'(va))^2 + g'(vb)^2)``, i.e. measured in
    8-bit values like the held-out error; a second-difference penalty keeps it smooth, and steps
    that came out falling are pushed up (kept rising) in the next iterations.
    """
    at_values = _emor_basis()
    pairs = _pair_counts(histograms, channels)
    if pairs is None:
        return at_values[0]
    va, vb, r, count = pairs
    values, weights = np.concatenate([va, vb]), np.concatenate([count, count])
    order = np.argsort(values)
    middle = values[order][np.searchsorted(np.cumsum(weights[order]), count.sum())]  # the median value
    params = np.zeros(1 + EMOR_BASIS)
    params[0] = 1.0 / at_values[0, middle]
    steps = np.diff(at_values, axis=1).T
    falling = np.zeros(255, bool)
    for _ in range(EMOR_ITERATIONS):
        g = params @ at_values
        slope = np.gradient(g)
        slope = np.maximum(slope, 0.2 * np.median(slope[WELL_EXPOSED[0] : WELL_EXPOSED[1]]))
        w = np.sqrt(count) / np.sqrt((r * slope[va]) ** 2 + slope[vb] ** 2)
        design = (r[:, None] * at_values[:, va].T - at_values[:, vb].T) * w[:, None]
        anchor = np.sqrt(count.sum()) * 10.0 / slope[middle]
        smooth = np.sqrt(count.sum() / 256.0) * EMOR_SMOOTHNESS / np.median(slope)
        falling |= steps @ params < 0  # held non-decreasing where the curve fell (an active set)
        design = np.vstack([design, anchor * at_values[:, middle], smooth * np.diff(at_values, 2, axis=1).T,
                            anchor * steps[falling]])
        rise = np.full(falling.sum(), 0.1 * anchor * np.median(slope))
        target = np.concatenate([np.zeros(len(w)), [anchor], np.zeros(254), rise])
        params = np.linalg.solve(design.T @ design + 1e-9 * np.eye(len(params)), design.T @ target)
    return params @ at_values


def fit_curves(method, stacks):
    """Inverse curves fitted by ``method`` to ``stacks``: ``{"shared": [3, 1024], "per_channel": [3, 1024]}``
    (the shared curve repeated on the three rows).

    ``stacks``: ``[(uint8 images [E, h, w, 3], times [E])]``, frames aligned. Debevec and
    Robertson (OpenCV) fit each stack and channel; their curves are averaged over stacks (weighted by
    frames), and over channels for the shared curve. The EMoR fit pools all stacks, and the
    channels for the shared curve.
    """
    stacks = [(images, times) for images, times in stacks if len(images) >= 2]
    if method == "emor":
        frames, histograms = [images for images, _ in stacks], pair_histograms(stacks)
        shared = _response_curves(_fit_emor_channels(histograms, (0, 1, 2))[:, None], frames)[0]
        per_channel = _response_curves(
            np.stack([_fit_emor_channels(histograms, (c,)) for c in range(3)], axis=1), frames
        )
    else:
        fit = {"debevec": _fit_debevec, "robertson": _fit_robertson}[method]
        per_channel = np.average([fit(images, times) for images, times in stacks], axis=0,
                                 weights=[len(t) for _, t in stacks])
        shared = crf.monotone_projection(per_channel.mean(axis=0))
    return {"shared": np.repeat(shared[None], 3, axis=0), "per_channel": per_channel}


def predict_frame(curves, source, ratio):
    """Frame ``source`` (uint8 [h, w, 3]) re-exposed by ``ratio`` through inverse curves [3, 1024]:
    ``F(ratio * g(source))`` per channel, float [h, w, 3] in [0, 1] (``F = g^-1``, clipped at 1)."""
    forward = crf.invert_curve(curves)
    out = np.empty(source.shape, np.float64)
    for c in range(3):
        g = np.interp(np.arange(256) / 255.0, crf.GRID, curves[c])
        out[..., c] = np.interp(np.minimum(ratio * g, 1.0), crf.GRID, forward[c])[source[..., c]]
    return out


def _nearest(times, frame, candidates):
    """The frame among ``candidates`` nearest in exposure to ``frame`` (the longer one on a tie)."""
    return min(candidates, key=lambda e: (abs(np.log(times[e] / times[frame])), -times[e]))


def frame_error(curves, images, times, source, target):
    """Squared error sum and pixel count of frame ``target`` predicted from ``source`` through
    ``curves`` (8-bit values / 255), on the pixels well exposed in both."""
    lo, hi = WELL_EXPOSED
    x, y = images[source], images[target]
    keep = (x >= lo) & (x <= hi) & (y >= lo) & (y <= hi)
    if not keep.any():
        return 0.0, 0
    diff = predict_frame(curves, x, times[target] / times[source])[keep] - y[keep] / 255.0
    return float(np.sum(diff**2)), int(keep.sum())


def _rmse(parts):
    total = sum(n for _, n in parts)
    return float(np.sqrt(sum(s for s, _ in parts) / total)) if total else float("nan")


def _spread(count, number):
    """``number`` indices of ``range(count)`` spread evenly, first and last included (all if fewer)."""
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, min(count, number))})


def fitted_frames(times):
    """The frames of a stack that the fits use: all, or :data:`MAX_FIT_FRAMES` spread over the exposures."""
    return _spread(len(times), MAX_FIT_FRAMES)


def held_out_frames(times):
    """The frames of a stack whose prediction measures the held-out error.

    A stack of more than :data:`MAX_FIT_FRAMES` frames: up to :data:`MAX_HELD_OUT` of the frames
    the fits do not use (no refit needed). Else, of 3 frames or more: up to :data:`MAX_HELD_OUT`
    frames spread over the exposures, each left out of a refit in turn. None of a 2-frame stack.
    """
    count = len(times)
    spare = sorted(set(range(count)) - set(fitted_frames(times)))
    if spare:
        return [spare[i] for i in _spread(len(spare), MAX_HELD_OUT)]
    return _spread(count, MAX_HELD_OUT) if count >= 3 else []


def held_out_errors(method, stacks, full, pool):
    """Held-out RMSE of ``method``: ``{"shared": rmse, "per_channel": rmse}``.

    ``stacks``: all frames; ``full``: the method's curves fitted to the :func:`fitted_frames` of
    every stack. Each frame of :func:`held_out_frames` is predicted from its nearest fitted exposure,
    through ``full`` when the fits did not use it, else through curves refitted without it (its
    stack's other fitted frames, and the other stacks); the errors are pooled over all those pixels.
    ``nan`` where no frame can be held out.
    """
    fitted = [(images[fitted_frames(times)], times[fitted_frames(times)]) for images, times in stacks]
    jobs = [(s, e) for s, (_, times) in enumerate(stacks) for e in held_out_frames(times)]

    def one(job):
        s, e = job
        images, times = stacks[s]
        used = fitted_frames(times)
        curves = full
        if e in used:
            keep = [i for i in range(len(used)) if used[i] != e]
            curves = fit_curves(method, fitted[:s] + [(fitted[s][0][keep], fitted[s][1][keep])] + fitted[s + 1:])
        source = _nearest(times, e, [i for i in used if i != e])
        return {mode: frame_error(curves[mode], images, times, source, e) for mode in curves}

    results = list(pool.map(one, jobs))
    return {mode: _rmse([r[mode] for r in results]) for mode in ("shared", "per_channel")}


def in_sample_errors(curves, stacks):
    """RMSE of every frame predicted from its nearest exposure with curves fitted to all frames."""
    parts = {mode: [] for mode in curves}
    for images, times in stacks:
        for e in range(len(times)):
            source = _nearest(times, e, [i for i in range(len(times)) if i != e])
            for mode in curves:
                parts[mode].append(frame_error(curves[mode], images, times, source, e))
    return {mode: _rmse(p) for mode, p in parts.items()}


def calibrate(stacks, methods=METHODS, threads=None):
    """Fits every method to loaded :class:`Stack` s and picks the best: a :class:`profiles.Profile`.

    The method and channel mode with the lowest held-out error win (per-channel curves only when
    below :data:`PER_CHANNEL_MARGIN` times the best shared error); without a frame to leave out
    (stacks of 2 frames) the in-sample error decides.
    """
    data = [(s.images, s.times) for s in stacks]
    fitted = [(images[fitted_frames(times)], times[fitted_frames(times)]) for images, times in data]
    threads = threads or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        full = dict(zip(methods, pool.map(lambda m: fit_curves(m, fitted), methods)))
        errors = {m: held_out_errors(m, data, full[m], pool) for m in methods}
    evaluated = any(held_out_frames(s.times) for s in stacks)
    if not evaluated:
        errors = {m: in_sample_errors(full[m], data) for m in methods}

    def best(mode):
        return min(methods, key=lambda m: np.nan_to_num(errors[m][mode], nan=np.inf))

    per_channel = errors[best("per_channel")]["per_channel"] < PER_CHANNEL_MARGIN * errors[best("shared")]["shared"]
    mode = "per_channel" if per_channel else "shared"
    method = best(mode)
    frames = [
        {"stack": s.name, "file": str(f), "exposure_time_s": float(t), "misalignment": round(float(m), 4),
         "fitted": e in fitted_frames(s.times)}
        for s in stacks for e, (f, t, m) in enumerate(zip(s.files, s.times, s.misalignment))
    ]
    fit_error = {
        "metric": "RMSE (8-bit values / 255) of frames predicted from their nearest exposure through the curve, "
        + ("each frame left out of the fit" if evaluated else "in-sample (no stack of 3 or more frames)"),
        "held_out": evaluated,
        "rmse": float(errors[method][mode]),
        "methods": {m: {k: round(float(v), 6) for k, v in e.items()} for m, e in errors.items()},
        "working_long_side": int(max(stacks[0].images.shape[1:3])),
    }
    return profiles.Profile(
        make=stacks[0].make,
        model=stacks[0].model,
        method=method,
        inverse_crf=full[method]["shared"][0].astype(np.float32),
        inverse_crf_rgb=full[method]["per_channel"].astype(np.float32) if per_channel else None,
        fit_error=fit_error,
        frames=frames,
    )


# ----------------------------------------------------------------------------- command


def add_arguments(parser):
    """Adds the ``calibrate`` options to an argparse parser."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="a folder per stack (its JPEG/PNG/TIFF files), or the image files of one stack")
    parser.add_argument("--times", default=None, metavar="TIMES",
                        help="exposure times replacing EXIF: seconds per frame in the order of the files "
                        "(a folder's sorted by name; 1/80,1/20,0.2), or a TSV file with the columns file and "
                        "exposure_time_s")
    parser.add_argument("--output", default=None, metavar="FILE",
                        help=f"profile JSON to write (default: {DEFAULT_OUTPUT} unless --save)")
    parser.add_argument("--save", action="store_true",
                        help=f"save the profile for predict's automatic use, in {profiles.profile_dir()} "
                        "(per camera make and model; replaces an earlier one)")
    parser.add_argument("--methods", default=",".join(METHODS), metavar="LIST",
                        help="methods to compare, comma-separated (default: %(default)s)")
    parser.add_argument("--long_side", type=int, default=DEFAULT_LONG_SIDE, metavar="PX",
                        help="working size: frames are downscaled to this long side (default: %(default)s)")


def _stacks_from_args(args, pool):
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise CalibrationError(
            f"--methods: unknown {', '.join(unknown) or 'empty list'}; choose among {', '.join(METHODS)}"
        )
    if args.long_side < 64:
        raise CalibrationError(f"--long_side {args.long_side}: at least 64 pixels")
    groups = group_inputs(args.inputs)
    times = parse_times(args.times) if args.times else None
    if times and "list" in times and len(times["list"]) != sum(len(files) for _, files in groups):
        raise CalibrationError(f"--times gives {len(times['list'])} times for "
                               f"{sum(len(files) for _, files in groups)} frames")
    stacks, start = [], 0
    for name, files in groups:
        if times is None:
            stack_times = None
        elif "list" in times:
            stack_times = times["list"][start:start + len(files)]
        else:
            missing = [f for f in files if f.name not in times["file"]]
            if missing:
                raise CalibrationError(f"{missing[0]}: not in the --times file {args.times}")
            stack_times = [times["file"][f.name] for f in files]
        start += len(files)
        stacks.append(load_stack(name, files, stack_times, args.long_side, pool))
    cameras = {profiles.camera_key(s.make, s.model) for s in stacks if s.make or s.model}
    if len(cameras) > 1:
        raise CalibrationError(f"stacks from different cameras ({', '.join(sorted(cameras))}); one camera per profile")
    return stacks, methods


def run(args):
    """Runs the ``calibrate`` command; returns the exit status (0 written, 2 refused)."""
    start = time.perf_counter()
    threads = os.cpu_count() or 1
    cv2.setNumThreads(threads)
    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            stacks, methods = _stacks_from_args(args, pool)
        profile = calibrate(stacks, methods, threads)
        written = []
        if args.output or not args.save:
            written.append(profiles.write_profile(profile, args.output or DEFAULT_OUTPUT))
        if args.save:
            written.append(profiles.save_profile(profile))
    except (CalibrationError, profiles.ProfileError) as error:
        print(f"calibrate: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"calibrate: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 2
    camera = profile.camera or "unknown camera (no EXIF make/model)"
    print(f"calibrate: {camera}: {len(profile.frames)} frames in {len(stacks)} stack(s), "
          f"{time.perf_counter() - start:.1f} s")
    kind = "held-out" if profile.fit_error["held_out"] else "in-sample"
    for method, error in profile.fit_error["methods"].items():
        mark = " <- used" if method == profile.method else ""
        print(f"  {method:10s} {kind} RMSE shared {error['shared'] * 255:6.2f}/255, "
              f"per channel {error['per_channel'] * 255:6.2f}/255{mark}")
    channels = "per-channel curves" if profile.inverse_crf_rgb is not None else "one curve shared by R, G, B"
    print(f"  profile: {profile.method}, {channels}")
    if not profile.fit_error["held_out"]:
        print("  note: no stack has 3 frames, so no frame could be held out to check the curve; "
              "a stack of 3 or more frames 1-2 stops apart gives a checked (and usually better) profile")
    for path in written:
        print(f"wrote {path}")
    return 0
