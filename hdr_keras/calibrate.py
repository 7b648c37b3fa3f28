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

from hdr_keras import profiles, response_fit
from hdr_keras import stack as stack_lib

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
DEFAULT_LONG_SIDE = 512
"""Working size of the fit: frames are downscaled to this many pixels on their long side."""
DEFAULT_OUTPUT = "camera_profile.json"
MAX_MISALIGNMENT = 0.15
"""Largest residual misalignment accepted: the fraction of MTB bits that still disagree with the
middle frame after alignment (docs/calibrate.md: 0-0.03 on aligned stacks, 0.075 for a frame rotated
by 2 degrees, 0.21 by 5 degrees, 0.47 for another scene)."""
PER_CHANNEL_MARGIN = 0.9
"""Per-channel curves are kept only when their held-out error is below this times the shared curve's."""


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


# ----------------------------------------------------------------------------- choosing the curve


def calibrate(stacks, methods=response_fit.METHODS, threads=None):
    """Fits every method to loaded :class:`Stack` s and picks the best: a :class:`profiles.Profile`.

    The method and channel mode with the lowest held-out error win (per-channel curves only when
    below :data:`PER_CHANNEL_MARGIN` times the best shared error); without a frame to leave out
    (stacks of 2 frames) the in-sample error decides.
    """
    data = [(s.images, s.times) for s in stacks]
    fitted = [(images[response_fit.fitted_frames(t)], t[response_fit.fitted_frames(t)]) for images, t in data]
    threads = threads or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        full = dict(zip(methods, pool.map(lambda m: response_fit.fit_curves(m, fitted), methods)))
        errors = {m: response_fit.held_out_errors(m, data, full[m], pool) for m in methods}
    evaluated = any(response_fit.held_out_frames(s.times) for s in stacks)
    if not evaluated:
        errors = {m: response_fit.in_sample_errors(full[m], data) for m in methods}

    def best(mode):
        return min(methods, key=lambda m: np.nan_to_num(errors[m][mode], nan=np.inf))

    per_channel = errors[best("per_channel")]["per_channel"] < PER_CHANNEL_MARGIN * errors[best("shared")]["shared"]
    mode = "per_channel" if per_channel else "shared"
    method = best(mode)
    frames = [
        {"stack": s.name, "file": str(f), "exposure_time_s": float(t), "misalignment": round(float(m), 4),
         "fitted": e in response_fit.fitted_frames(s.times)}
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
    parser.add_argument("--methods", default=",".join(response_fit.METHODS), metavar="LIST",
                        help="methods to compare, comma-separated (default: %(default)s)")
    parser.add_argument("--long_side", type=int, default=DEFAULT_LONG_SIDE, metavar="PX",
                        help="working size: frames are downscaled to this long side (default: %(default)s)")


def _stacks_from_args(args, pool):
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in methods if m not in response_fit.METHODS]
    if unknown or not methods:
        raise CalibrationError(
            f"--methods: unknown {', '.join(unknown) or 'empty list'}; choose among {', '.join(response_fit.METHODS)}"
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
