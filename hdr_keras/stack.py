"""Exposure stacks of real photos: read, align (OpenCV MTB), calibrate and merge (Debevec) to HDR.

A stack is a folder of 8-bit photos of one scene and ``exposures.tsv``: tab-separated, a header
row naming at least ``file`` and ``exposure_time_s`` (seconds, a number or a fraction such as
``1/80``), one row per photo; other columns are ignored. :func:`load_stack` gives the aligned
frames, the camera's inverse response and the merged reference HDR that the real-camera protocol
of :mod:`hdr_keras.evaluate` scores single exposures against.
"""

import dataclasses
import fractions
import pathlib

import cv2
import numpy as np

EXPOSURES_FILE = "exposures.tsv"
DEFAULT_LONG_SIDE = 1024
CALIBRATION_SAMPLES = 70
CALIBRATION_LAMBDA = 10.0


@dataclasses.dataclass(frozen=True)
class Stack:
    """One aligned exposure stack, frames sorted by exposure time (shortest first).

    ``images`` uint8 [E, H, W, 3] RGB, aligned to the middle exposure and cropped to the pixels
    every frame covers; ``times`` float32 [E] seconds; ``shifts`` int [E, 2] the (dx, dy) found by
    MTB for each frame (content of frame e at (x, y) moved to (x + dx, y + dy)); ``response``
    float32 [256, 3] the Debevec inverse response (relative irradiance of each 8-bit value, per
    channel); ``hdr`` float32 [H, W, 3] the merged relative radiance (exposure time 1 s).
    """

    name: str
    files: tuple
    times: np.ndarray
    images: np.ndarray
    shifts: np.ndarray
    response: np.ndarray
    hdr: np.ndarray


def find_stacks(path):
    """``path`` if it holds ``exposures.tsv``, else its sub-folders that do (sorted by name)."""
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: exposure-stack folder not found")
    if (path / EXPOSURES_FILE).is_file():
        return [path]
    stacks = sorted(p for p in path.iterdir() if (p / EXPOSURES_FILE).is_file())
    if not stacks:
        raise FileNotFoundError(f"{path}: no {EXPOSURES_FILE} in this folder or its sub-folders")
    return stacks


def read_exposures(folder):
    """``[(file name, exposure time in s), ...]`` from ``folder/exposures.tsv``, in file order."""
    return read_exposures_file(pathlib.Path(folder) / EXPOSURES_FILE)


def read_exposures_file(path):
    """``[(file name, exposure time in s), ...]`` from a TSV in the layout of ``exposures.tsv``."""
    path = pathlib.Path(path)
    lines = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    header = [h.strip() for h in lines[0]] if lines else []
    if "file" not in header or "exposure_time_s" not in header:
        raise ValueError(f"{path}: header must name the columns 'file' and 'exposure_time_s'")
    col_file, col_time = header.index("file"), header.index("exposure_time_s")
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        try:
            time = float(fractions.Fraction(fields[col_time].strip()))
        except (IndexError, ValueError, ZeroDivisionError):
            raise ValueError(f"{path}: line {number}: bad exposure_time_s") from None
        if not time > 0:
            raise ValueError(f"{path}: line {number}: exposure_time_s must be positive")
        rows.append((fields[col_file].strip(), time))
    if len(rows) < 2:
        raise ValueError(f"{path}: a stack needs at least 2 photos, found {len(rows)}")
    return rows


def read_frames(folder, long_side=DEFAULT_LONG_SIDE):
    """The photos of a stack: ``(files, times float32 [E], images uint8 [E, H, W, 3] RGB)``.

    Sorted by exposure time. Frames larger than ``long_side`` on their long side are downscaled
    (``cv2.INTER_AREA``, rounded back to 8 bits); ``None`` keeps the full size.
    """
    folder = pathlib.Path(folder)
    rows = sorted(read_exposures(folder), key=lambda row: row[1])
    images = []
    for name, _ in rows:
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{folder / name}: cannot read this photo")
        if images and image.shape != images[0].shape:
            raise ValueError(f"{folder / name}: size {image.shape[:2]} differs from {images[0].shape[:2]}")
        images.append(image)
    height, width = images[0].shape[:2]
    if long_side is not None and max(height, width) > long_side:
        scale = long_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        images = [cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in images]
    rgb = np.stack([cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in images])
    return tuple(name for name, _ in rows), np.asarray([t for _, t in rows], np.float32), rgb


def align(images):
    """Aligns uint8 frames [E, H, W, 3] to the middle one with MTB; returns ``(aligned, shifts)``.

    ``cv2.AlignMTB.calculateShift`` finds each frame's translation (dx, dy) against the middle
    frame (by exposure when sorted); every frame is shifted by it and all are cropped to the
    region covered by every frame, so no border is filled in. The pyramid depth (search range
    ``+-2^max_bits`` pixels) is 6 (OpenCV's default) or less, so that its coarsest level keeps
    at least 8 pixels on the short side.
    """
    images = np.asarray(images)
    max_bits = int(np.clip(np.floor(np.log2(min(images.shape[1:3]) / 8.0)), 1, 6))
    mtb = cv2.createAlignMTB(max_bits=max_bits)
    gray = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in images]
    pivot = len(images) // 2
    shifts = np.asarray([mtb.calculateShift(gray[pivot], g) for g in gray], int)
    height, width = images.shape[1:3]
    x0, y0 = max(shifts[:, 0].max(), 0), max(shifts[:, 1].max(), 0)
    x1, y1 = width + min(shifts[:, 0].min(), 0), height + min(shifts[:, 1].min(), 0)
    if x1 - x0 < 16 or y1 - y0 < 16:
        raise ValueError(f"frames overlap on only {x1 - x0}x{y1 - y0} pixels after alignment")
    aligned = np.stack([image[y0 - dy : y1 - dy, x0 - dx : x1 - dx] for image, (dx, dy) in zip(images, shifts)])
    return aligned, shifts


def misalignment(images, exclude_range=4):
    """Residual misalignment of aligned uint8 frames [E, H, W, 3]: float [E] in [0, 1].

    For each frame, the fraction of median-threshold bits (``cv2.AlignMTB.computeBitmaps``) that
    disagree with the middle frame's, among the pixels outside both exclusion bands (values within
    ``exclude_range`` of a frame's median). About 0 for a static scene whatever the exposures (the
    bitmaps do not depend on the response curve), about 0.5 for unrelated images; ``nan`` where
    no pixel is outside the bands (a frame clipped or black at its median).
    """
    mtb = cv2.createAlignMTB(exclude_range=exclude_range)
    bitmaps = [mtb.computeBitmaps(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)) for image in images]
    pivot_threshold, pivot_exclude = bitmaps[len(images) // 2]
    out = []
    for threshold, exclude in bitmaps:
        both = (exclude > 0) & (pivot_exclude > 0)
        out.append(float(((threshold > 0) != (pivot_threshold > 0))[both].mean()) if both.any() else float("nan"))
    return np.asarray(out)


def calibrate(images, times):
    """Debevec inverse response float32 [256, 3] of aligned uint8 frames [E, H, W, 3] and times [E]."""
    calibrator = cv2.createCalibrateDebevec(samples=CALIBRATION_SAMPLES, lambda_=CALIBRATION_LAMBDA, random=False)
    response = calibrator.process(list(images), np.asarray(times, np.float32))
    return np.asarray(response, np.float32).reshape(256, 3)


def merge(images, times, response):
    """Debevec merge of aligned uint8 frames [E, H, W, 3]: float32 [H, W, 3] relative radiance."""
    merger = cv2.createMergeDebevec()
    hdr = merger.process(list(images), np.asarray(times, np.float32), response.reshape(256, 1, 3))
    return np.asarray(hdr, np.float32)


def inverse_curve(response):
    """The response [256, 3] as one inverse curve on the 1024-sample grid, float32 [1024] in [0, 1].

    Each channel is mapped to [0, 1] (value 0 -> 0, value 255 -> 1), the channels are averaged
    and sampled at ``x = i / 1023`` by linear interpolation over the 8-bit values ``v / 255``.
    """
    response = np.asarray(response, np.float64)
    normalised = (response - response[0]) / (response[-1] - response[0])
    return np.interp(np.linspace(0.0, 1.0, 1024), np.arange(256) / 255.0, normalised.mean(axis=1)).astype(np.float32)


def apply_response(images, response):
    """The inverse response [256, 3] looked up for uint8 frames [..., 3]: float32 relative irradiance."""
    images = np.asarray(images)
    return np.stack([response[images[..., c], c] for c in range(3)], axis=-1).astype(np.float32)


def load_stack(folder, long_side=DEFAULT_LONG_SIDE):
    """Reads, aligns, calibrates and merges one stack folder into a :class:`Stack`."""
    folder = pathlib.Path(folder)
    files, times, images = read_frames(folder, long_side)
    aligned, shifts = align(images)
    response = calibrate(aligned, times)
    hdr = merge(aligned, times, response)
    return Stack(folder.name, files, times, aligned, shifts, response, hdr)


def synthetic_radiance(height, width, rng, stops=10.0):
    """A smooth random scene: float32 [H, W, 3] relative radiance in ``[2^-stops, 1]``.

    Log-radiance blobs (a random 12x18 field, bicubic upscaled) with mildly coloured channels and
    fine texture (a 1/4-size noise field upscaled), for tests and benchmarks of calibration.
    """
    coarse = rng.uniform(-stops, 0.0, (12, 18, 1)) + rng.normal(0.0, 0.3, (12, 18, 3))
    fine = rng.normal(0.0, 0.25, (max(1, height // 4), max(1, width // 4), 3))
    log2 = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    log2 += cv2.resize(fine.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.exp2(np.clip(log2, -stops, 0.0)).astype(np.float32)


def render_stack(radiance, times, forward_curve):
    """A synthetic stack: uint8 [E, H, W, 3] ``round(255 F(clip(radiance t, 0, 1)))`` for each time ``t``.

    ``radiance`` float [H, W, 3] >= 0; ``forward_curve`` [1024] or [3, 1024] (per channel) on the
    1024-sample grid of :mod:`hdr_keras.crf`. For tests and benchmarks of calibration.
    """
    grid = np.linspace(0.0, 1.0, 1024)
    curves = np.broadcast_to(np.asarray(forward_curve, np.float64), (3, 1024))
    frames = np.empty((len(times),) + radiance.shape, np.uint8)
    for e, t in enumerate(times):
        exposed = np.clip(np.asarray(radiance, np.float32) * np.float32(t), 0.0, 1.0)
        for c in range(3):
            frames[e, ..., c] = np.round(255.0 * np.interp(exposed[..., c], grid, curves[c]))
    return frames
