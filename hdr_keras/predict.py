"""Reconstruct HDR images (OpenEXR, Radiance .hdr, Ultra HDR JPEG, HDR AVIF) from ordinary photos.

For every input photo STEM.EXT it writes, per --format, OUT_DIR/STEM.exr (or .hdr) holding linear
RGB radiance at the photo's full size and displayed (EXIF) orientation, at relative scale:
well-exposed pixels are at the level of the linearised input; STEM.jpg, an Ultra HDR JPEG (the
photo, plus a gain map up to --max_boost stops); STEM.avif, 10-bit PQ with 1.0 at 203 nits.
Beside them, OUT_DIR/STEM.json holds the estimated inverse camera curve and how the image was made,
and with --preview OUT_DIR/STEM.png a tone-mapped preview.
Large images are processed in overlapping tiles. Exit status: 0 all written, 1 some file failed,
2 usage error or no weights. Documentation: docs/predict.md.
"""

import argparse
import math
import os
import pathlib
import sys
import time

from hdr_keras import engine, filelock, inputs, interrupts, profiles, runtimes
from hdr_keras import outputs as units
from hdr_keras.display import avif, ultrahdr
from hdr_keras.errors import UsageError
from hdr_keras.precision import DTYPES
from hdr_keras.presets import PRESETS

DEFAULT_MAX_MP = 50.0
"""Default ``--max_megapixels``: larger photos are refused from the size their header declares."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130


def _old_spelling(parser, option, **kwargs):
    """Accepts ``option``'s hyphenated spelling of earlier releases (``--out-dir`` for ``--out_dir``),
    hidden from --help (README, "Command-line convention")."""
    parser.add_argument(option.replace("_", "-"), dest=option[2:], help=argparse.SUPPRESS, **kwargs)


def add_arguments(parser):
    """Adds the ``predict`` options to an argparse parser."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="photo files, or folders (their JPEG/PNG/TIFF/BMP/WebP files, not recursive)",
    )
    out_dir = parser.add_mutually_exclusive_group(required=True)
    out_dir.add_argument("--out_dir", metavar="DIR", help="output folder, created if missing (required)")
    _old_spelling(out_dir, "--out_dir")
    parser.add_argument(
        "--preset",
        default=engine.DEFAULT_PRESET,
        choices=sorted(PRESETS),
        help="model preset (default: %(default)s)",
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="FILE",
        help="Keras .weights.h5 file of the whole SingleHDR model (default: the weights shipped for "
        "the preset, hdr_keras/assets/weights/PRESET.weights.h5; without them the command stops)",
    )
    parser.add_argument(
        "--format",
        default=["exr"],
        type=_formats,
        metavar="FMT[,FMT...]",
        help="output formats, comma-separated: exr (OpenEXR, half float, ZIP), hdr (Radiance RGBE), "
        "uhdr (STEM.jpg: Ultra HDR gain-map JPEG, the photo as its SDR image), avif (10-bit BT.2100 "
        "PQ AVIF, 1.0 = 203 nits) (default: exr)",
    )
    parser.add_argument(
        "--max_boost",
        type=float,
        default=ultrahdr.DEFAULT_MAX_BOOST_STOPS,
        metavar="STOPS",
        help="uhdr: cap on the gain map's boost over the photo, in stops; 2.3 = log2(1000 / 203), "
        "what a ~1000-nit screen shows above SDR white (default: %(default)s)",
    )
    parser.add_argument(
        "--uhdr_quality",
        type=int,
        default=ultrahdr.DEFAULT_QUALITY,
        metavar="Q",
        help="uhdr: JPEG quality 1..100 of the photo and of the gain map (default: %(default)s)",
    )
    parser.add_argument(
        "--avif_quality",
        type=int,
        default=avif.DEFAULT_QUALITY,
        metavar="Q",
        help="avif: libavif quality 0..100, 100 lossless (default: %(default)s)",
    )
    parser.add_argument(
        "--float32",
        action="store_true",
        help="write 32-bit float OpenEXR instead of half float (EXR only; default: off)",
    )
    parser.add_argument(
        "--preview",
        action="store_true",
        help="also write DIR/STEM.png, a tone-mapped 8-bit sRGB preview (default: off)",
    )
    parser.add_argument(
        "--camera_profile",
        default="auto",
        metavar="FILE|auto|none",
        help="camera profile written by 'hdr-keras calibrate' (docs/calibrate.md): its measured curve replaces "
        "the estimated one (the Linearization-Net is skipped); auto uses the saved profile of the camera "
        "that each photo's EXIF names, if there is one; none estimates every curve (default: %(default)s)",
    )
    refine = parser.add_mutually_exclusive_group()
    refine.add_argument(
        "--refine",
        action="store_true",
        default=True,
        help="run the Refinement-Net after the Hallucination-Net, unless the weights' one is the identity "
        "(untrained, as shipped), which is skipped; the sidecar's 'refine' says whether it ran (default: on)",
    )
    refine.add_argument(
        "--norefine", dest="refine", action="store_false", help="do not run the Refinement-Net (default: off)"
    )
    refine.add_argument("--no-refine", dest="refine", action="store_false", help=argparse.SUPPRESS)
    parser.add_argument(
        "--runtime",
        default="auto",
        choices=("auto", *runtimes.RUNTIMES),
        help="what runs the networks: tensorflow, or litert (LiteRT with XNNPACK, float32; its model file is "
        "built once per weights into ~/.cache/hdr_keras, which takes about a minute); auto picks tensorflow "
        "where bfloat16 runs natively (AMX or AVX512-BF16 CPU, GPU) and litert elsewhere, about twice as "
        "fast there; written to the sidecar (default: %(default)s)",
    )
    parser.add_argument(
        "--dtype",
        default=engine.DEFAULT_DTYPE,
        choices=DTYPES,
        help="compute dtype of the networks: bfloat16 runs the convolutions in bfloat16 (curve, "
        "histogram, masks and outputs stay float32); auto picks it only on a CPU with AMX or "
        "AVX512-BF16 or a bfloat16 GPU; the choice is logged and written to the sidecar "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=engine.DEFAULT_TILE,
        metavar="PX",
        help=f"tile side in pixels for large images (see --tile_above), a multiple of {engine.TILE_MULTIPLE} "
        f"up to {engine.MAX_TILE} (default: %(default)s)",
    )
    parser.add_argument(
        "--tile_overlap",
        type=int,
        default=engine.DEFAULT_OVERLAP,
        metavar="PX",
        help="overlap between neighbouring tiles, blended with linear ramps (default: %(default)s)",
    )
    _old_spelling(parser, "--tile_overlap", type=int)
    parser.add_argument(
        "--tile_above",
        type=float,
        default=engine.DEFAULT_TILE_ABOVE_MP,
        metavar="MP",
        help="tile images larger than this many megapixels; 0 tiles every image larger than one "
        "tile (default: %(default)s)",
    )
    _old_spelling(parser, "--tile_above", type=float)
    parser.add_argument(
        "--max_megapixels",
        type=float,
        default=DEFAULT_MAX_MP,
        metavar="MP",
        help="refuse photos larger than this, from the size their header declares, before decoding "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs, whole (default: off: a file whose outputs exist fails)",
    )
    parser.add_argument(
        "--skip_existing",
        action="store_true",
        help="skip, without error, files whose outputs are complete (their sidecar, written last, "
        "describes them) and redo incomplete ones (to resume a batch; default: off)",
    )
    _old_spelling(parser, "--skip_existing", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary; errors still print (default: off)")


def _formats(text):
    """``--format`` value: comma-separated names of :data:`hdr_keras.outputs.FORMATS` -> list without repeats, in order."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in units.FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"invalid format {', '.join(unknown) or repr(text)}: choose from {', '.join(units.FORMATS)}, comma-separated"
        )
    return list(dict.fromkeys(names))


def build_parser(prog="python -m hdr_keras predict"):
    """A standalone parser for ``predict`` (what ``python -m hdr_keras predict`` uses)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def main(argv=None):
    """Runs ``predict`` with command-line arguments ``argv`` in this process; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    return run(args)


def check_options(args):
    """UsageError unless the output, tiling, size and camera-profile options are valid (predict and beam)."""
    units.check_options(args.format, **units.writer_options(args))
    engine.check_tiling(args.tile, args.tile_overlap, args.tile_above)
    if not (math.isfinite(args.max_megapixels) and args.max_megapixels > 0):
        raise UsageError(f"--max_megapixels must be > 0, got {args.max_megapixels}")
    if args.camera_profile not in profiles.PROFILE_CHOICES:
        try:
            profiles.load_profile(args.camera_profile)
        except profiles.ProfileError as e:
            raise UsageError(str(e)) from None


def _validate(args):
    check_options(args)
    if args.overwrite and args.skip_existing:
        raise UsageError("--overwrite and --skip_existing exclude each other")


def run(args):
    """Runs ``predict`` with parsed ``args``; returns the exit status (0 ok, 1 a file failed, 2 usage,
    130 interrupted by Ctrl-C, which leaves every output unit complete or visibly incomplete)."""
    try:
        with interrupts.watch() as requested:
            return _run(args, requested)
    except KeyboardInterrupt:
        message = "the outputs written so far are complete, none is half-written (rerun with --skip_existing)"
        print(f"predict: interrupted; {message}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _inputs(args, say):
    """The photos to read and the number of inputs not found, after checking the command as a whole
    (UsageError: bad flags, no weights, no inputs, an output folder that cannot be written)."""
    from hdr_keras import pretrained

    _validate(args)
    try:
        pretrained.resolve_weights(args.preset, args.weights)  # missing weights stop before any work
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    paths, missing = inputs.collect(args.inputs, say, quiet=args.quiet)
    units.prepare_folder(args.out_dir)
    return paths, missing


def _run(args, interrupted):
    from tqdm import tqdm

    def say(message):
        tqdm.write(message, file=sys.stderr)

    try:
        paths, failed = _inputs(args, say)
        from hdr_keras.quiet import import_tensorflow

        runtime, dtype, reason = runtimes.pick(args.runtime, args.dtype)
        if runtime == "tensorflow":
            import_tensorflow()  # first import of TensorFlow: without its C++ start-up noise
        if not args.quiet:
            say(f"predict: runtime {runtime}, compute dtype {dtype} ({reason})")
        reconstructor = engine.get_engine(args.preset, args.weights, args.refine, dtype, runtime)  # wrong weights: UsageError
    except UsageError as e:
        print(f"predict: error: {e}", file=sys.stderr)
        return EXIT_USAGE

    counts = {"written": 0, "failed": failed, "skipped": 0}
    claimed = {}  # output stem -> the input that produces it in this run
    bar = tqdm(paths, desc="predict", unit="image", disable=args.quiet, file=sys.stderr, dynamic_ncols=True)

    def tile_progress(total):  # a bar per tiled image, cleared after its last tile
        tiles = tqdm(total=total, desc="  tiles", unit="tile", leave=False, disable=args.quiet, file=sys.stderr)
        return lambda _tile: tiles.update(1) or (tiles.n >= total and tiles.close())

    for path in bar:
        interrupts.check(interrupted)  # a Ctrl-C that reached a finaliser instead of this loop
        counts[_predict_one(path, args, reconstructor, claimed, say, bar, tile_progress)] += 1
    bar.close()
    if counts["failed"] or not args.quiet:
        parts = [f"{n} {key}" for key, n in counts.items() if n or key != "skipped"]
        print(f"predict: {', '.join(parts)} -> {pathlib.Path(args.out_dir)}", file=sys.stderr)
    return EXIT_FAILED if counts["failed"] else EXIT_OK


def _predict_one(path, args, reconstructor, claimed, say, bar, tile_progress):
    """Reconstructs one photo into its output unit; returns "written", "failed" or "skipped"."""
    from hdr_keras import __version__
    from hdr_keras import io as hio

    start, stem, out_dir = time.perf_counter(), path.stem, pathlib.Path(args.out_dir)
    outputs = units.output_paths(out_dir, stem, args.format, args.preview)
    if stem in claimed:
        say(f"{path}: output name '{stem}' is already used by {claimed[stem]} in this run; rename one of them")
        return "failed"
    if (replaced := next((p for p in outputs.values() if os.path.realpath(p) == os.path.realpath(path)), None)):
        say(f"{path}: output {replaced} would replace the input photo; pass another --out_dir")
        return "failed"
    with filelock.hold(units.unit_lock(out_dir, stem)):  # another run writing this unit: wait for it
        action, note = units.plan_unit(outputs, args.overwrite, args.skip_existing)
        if note:
            say(f"{path}: {note}")
        if action != "write":
            return action
        units.remove_stale_temporaries(out_dir, stem)
        try:
            image = hio.read_ldr(path, min_size=engine.MIN_SIZE, max_pixels=round(args.max_megapixels * 1e6), notice=say)
            claimed[stem] = path  # only inputs that were read claim their output name
            height, width = image.shape[:2]
            bar.set_postfix_str(f"{path.name} {width}x{height}", refresh=False)
            profile = profiles.resolve(args.camera_profile, path)  # (Profile, its file) or None
            if profile is not None and not args.quiet:
                say(f"{path}: camera profile {profile[1]} ({profile[0].camera}, {profile[0].method} curve)")
            curve = None if profile is None else profile[0].inverse_crf
            result = reconstructor.reconstruct(
                image, curve, tile=args.tile, overlap=args.tile_overlap, tile_above=args.tile_above, progress=tile_progress
            )
            photo = image if "uhdr" in args.format else None  # the Ultra HDR base image
            del image
            meta = {"hdr_keras_version": __version__, "input": str(path), "formats": args.format,
                    "width": int(width), "height": int(height),
                    "camera_profile": None if profile is None else profiles.describe(*profile)}
            units.write(outputs, result, photo, meta, start, **units.writer_options(args))
            return "written"
        except hio.ImageReadError as e:
            say(str(e))
        except MemoryError as e:
            say(f"{path}: out of memory ({type(e).__name__}); try a smaller --tile or --tile_above")
        except OSError as e:
            say(f"{path}: cannot write output ({e})")
        except Exception as e:  # keep going with the other files; the exit status reports it
            say(f"{path}: failed ({type(e).__name__}: {e})")
        return "failed"
