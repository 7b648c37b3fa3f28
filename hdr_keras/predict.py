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
import contextlib
import glob
import json
import math
import os
import pathlib
import re
import sys
import tempfile
import time
import uuid

import numpy as np

from hdr_keras import filelock, tiling
from hdr_keras.display import avif, ultrahdr
from hdr_keras.precision import DTYPES
from hdr_keras.presets import PRESETS

DEFAULT_PRESET = "lite"
DEFAULT_DTYPE = "auto"
"""bfloat16 where the CPU runs it natively: on val it moves PU21 by 0.01 dB and the curve by ~1e-3
(``docs/evaluate.md``), invisible in the output, for a ~2.1x faster forward pass."""
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 128
DEFAULT_TILE_ABOVE_MP = 4.0
TILE_MULTIPLE = 32
"""``--tile`` must be a multiple of this (the largest downsampling factor of the networks)."""
MAX_TILE = 4096
"""Largest ``--tile``: one tile of 4096x4096 already needs several GB."""
DEFAULT_MAX_MP = 50.0
"""Default ``--max_megapixels``: larger photos are refused from the size their header declares."""
CURVE_SIDE = 1024
"""The camera curve is estimated on the image downscaled (area interpolation) so that its long side
is at most this many pixels: once per image, and shared by all tiles."""
MIN_SIZE = 8
"""Smallest accepted input height and width, in pixels."""
PREVIEW_ROWS = 512
"""Rows tone-mapped at a time for the preview (bounds memory on large images)."""
FORMATS = {"exr": ".exr", "hdr": ".hdr", "uhdr": ".jpg", "avif": ".avif"}
"""``--format`` values and the suffix of the file each writes (docs/predict.md, "Formats")."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem with the command as a whole (exit status 2), not with one input file."""


# --------------------------------------------------------------------------- arguments


def _old_spelling(parser, option, **kwargs):
    """Accepts ``option``'s hyphenated spelling (``--out_dir`` for ``--out_dir``), hidden from --help.

    Flags are spelled with underscores everywhere (README, "Command-line convention"); the
    hyphenated ones of earlier releases keep working in users' scripts.
    """
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
        default=DEFAULT_PRESET,
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
        "--dtype",
        default=DEFAULT_DTYPE,
        choices=DTYPES,
        help="compute dtype of the networks: bfloat16 runs the convolutions in bfloat16 (curve, "
        "histogram, masks and outputs stay float32); auto picks it only on a CPU with AMX or "
        "AVX512-BF16 or a bfloat16 GPU; the choice is logged and written to the sidecar "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=DEFAULT_TILE,
        metavar="PX",
        help=f"tile side in pixels for large images (see --tile_above), a multiple of {TILE_MULTIPLE} "
        f"up to {MAX_TILE} (default: %(default)s)",
    )
    parser.add_argument(
        "--tile_overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        metavar="PX",
        help="overlap between neighbouring tiles, blended with linear ramps (default: %(default)s)",
    )
    _old_spelling(parser, "--tile_overlap", type=int)
    parser.add_argument(
        "--tile_above",
        type=float,
        default=DEFAULT_TILE_ABOVE_MP,
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
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bars or summary; errors still print (default: off)"
    )


def _formats(text):
    """``--format`` value: comma-separated names of FORMATS -> list without repeats, in order."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"invalid format {', '.join(unknown) or repr(text)}: choose from {', '.join(FORMATS)}, comma-separated"
        )
    return list(dict.fromkeys(names))


def build_parser(prog="python -m hdr_keras predict"):
    """A standalone parser for ``predict`` (what ``python -m hdr_keras predict`` uses)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return parser


def main(argv=None):
    """Runs ``predict`` with command-line arguments ``argv`` in this process; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    return run(args)


# --------------------------------------------------------------------------- model


class Predictor:
    """A built SingleHDR, its three traced inference functions, and the per-image procedure.

    ``full(ldr)`` runs the whole model ([1, H, W, 3] -> hdr, inverse curve); ``curve(ldr)`` only
    the Dequantization- and Linearization-Nets (the curve, as ``SingleHDR.call`` computes it);
    ``with_curve(ldr, curve)`` the model with a given curve. All take dynamic H and W, so each
    traces once.
    """

    def __init__(self, preset, weights, refine=True, dtype="float32"):
        import tensorflow as tf

        from hdr_keras import precision, pretrained

        self.preset, self.weights, self.dtype = preset, weights, dtype
        with precision.policy_scope(dtype):
            self.model = model = pretrained.build_model(preset, weights, refine=bool(refine))
        # An untrained Refinement-Net is the identity: skip it (same output, a third less time).
        model.refine = bool(refine) and model.refinement is not None and not model.refinement.is_identity()
        self.refine = model.refine
        """Whether the Refinement-Net runs: asked for, and not the identity with these weights."""
        image_spec = tf.TensorSpec([1, None, None, 3], tf.float32)
        curve_spec = tf.TensorSpec([1, 1024], tf.float32)

        @tf.function(input_signature=[image_spec], reduce_retracing=True)
        def full(ldr):
            out = model(ldr, training=False)
            return out["hdr"], out["inverse_crf"]

        @tf.function(input_signature=[image_spec], reduce_retracing=True)
        def curve(ldr):
            dequantized = model.dequantization(ldr, training=False)
            return model.linearization(dequantized, training=False)["inverse_crf"]

        @tf.function(input_signature=[image_spec, curve_spec], reduce_retracing=True)
        def with_curve(ldr, inverse_crf):
            return model(ldr, training=False, inverse_crf=inverse_crf)["hdr"]

        self.full, self.curve, self.with_curve = full, curve, with_curve
        multiples = [model.dequantization.unet.multiple, model.hallucination.multiple]
        if model.refinement is not None:
            multiples.append(model.refinement.unet.multiple)
        self.align = math.lcm(*multiples)
        """Tiles start at multiples of this (the networks' downsampling factor), see :mod:`hdr_keras.tiling`."""

    def estimate_curve(self, image):
        """Inverse camera curve [1024] of ``image`` [H, W, 3], from its <= CURVE_SIDE downscaled copy."""
        small = downscale(image, CURVE_SIDE)
        return self.curve(small[None])[0].numpy()

    def predict(
        self, image, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP, tile_above=DEFAULT_TILE_ABOVE_MP, progress=None
    ):
        """``image`` [H, W, 3] LDR in [0, 1] -> (hdr [H, W, 3] float32, inverse curve [1024], info dict).

        Images up to CURVE_SIDE on their long side and not tiled run the whole model in one pass.
        Otherwise the curve is estimated once on the downscaled image and the model runs with it on
        the full image or on each tile. ``progress(n_tiles)`` may return a callback called per tile.
        """
        height, width = image.shape[:2]
        tiles = plan(height, width, tile, overlap, tile_above, self.align)
        info = {"tiled": len(tiles) > 1, "tiles": len(tiles), "curve_size": list(curve_size(height, width))}
        if len(tiles) <= 1 and max(height, width) <= CURVE_SIDE:
            hdr, inverse_crf = self.full(image[None])
            return hdr[0].numpy(), inverse_crf[0].numpy(), info
        inverse_crf = self.estimate_curve(image)
        curve = inverse_crf[None]
        if len(tiles) <= 1:
            return self.with_curve(image[None], curve)[0].numpy(), inverse_crf, info
        on_tile = progress(len(tiles)) if progress is not None else None
        hdr = tiling.run_tiled(
            image, lambda window: self.with_curve(window[None], curve)[0].numpy(), tile, overlap, self.align, on_tile
        )
        return hdr, inverse_crf, info


_PREDICTORS = {}


def get_predictor(preset, weights, weights_sha256, refine, dtype="float32"):
    """A cached :class:`Predictor` (the last two configurations are kept, keyed by weights checksum).

    ``dtype`` is ``float32`` or ``bfloat16`` (see :func:`hdr_keras.precision.resolve` for ``auto``).
    """
    key = (preset, str(pathlib.Path(weights).resolve()), weights_sha256, bool(refine), dtype)
    if key not in _PREDICTORS:
        while len(_PREDICTORS) >= 2:
            _PREDICTORS.pop(next(iter(_PREDICTORS)))
        _PREDICTORS[key] = Predictor(preset, weights, refine, dtype)
    return _PREDICTORS[key]


def downscale(image, side):
    """``image`` resized with area interpolation so that its long side is at most ``side`` (or as is)."""
    import cv2

    height, width = image.shape[:2]
    new_h, new_w = curve_size(height, width, side)
    if (new_h, new_w) == (height, width):
        return np.ascontiguousarray(image, np.float32)
    return cv2.resize(np.asarray(image, np.float32), (new_w, new_h), interpolation=cv2.INTER_AREA)


def curve_size(height, width, side=CURVE_SIDE):
    """(height, width) of the image the curve is estimated on."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def plan(height, width, tile, overlap, tile_above, align=1):
    """Tiles for an image: ``[]`` (whole image) unless tiling applies, else :func:`tiling.plan_tiles`."""
    if tile <= 0 or height * width <= tile_above * 1e6 or (height <= tile and width <= tile):
        return []
    return tiling.plan_tiles(height, width, tile, overlap, align)


# --------------------------------------------------------------------------- outputs


def preview(hdr):
    """Tone-mapped uint8 preview of ``hdr``: :func:`hdr_keras.io.tonemap_preview`, by row blocks.

    The automatic exposure of ``tonemap_preview`` (median positive Rec.709 luminance to 0.18) is
    computed once on the whole image, then blocks of PREVIEW_ROWS rows are tone-mapped with it.
    """
    from hdr_keras import io as hio

    lum = np.where(np.isfinite(hdr), np.maximum(hdr, 0.0), 0.0) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    positive = lum[lum > 0]
    exposure = 0.18 / float(np.median(positive)) if positive.size else 1.0
    del lum, positive
    out = np.empty(hdr.shape, np.uint8)
    for r in range(0, hdr.shape[0], PREVIEW_ROWS):
        out[r : r + PREVIEW_ROWS] = hio.tonemap_preview(hdr[r : r + PREVIEW_ROWS], exposure=exposure)
    return out


def _write_atomic(path, write):
    """Calls ``write(tmp)`` on a temporary file beside ``path`` (same suffix), then renames it to ``path``."""
    tmp = path.parent / f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sidecar_text(meta, inverse_crf):
    """JSON text of ``meta`` plus ``inverse_crf`` (float32 values written to round-trip exactly)."""
    head = json.dumps(meta, indent=2)
    curve = "[" + ", ".join(f"{float(v):.9g}" for v in np.asarray(inverse_crf, np.float32)) + "]"
    return head[:-2] + ',\n  "inverse_crf": ' + curve + "\n}\n"


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


def _format_writers(formats, hdr, photo, args, details):
    """{format: write(tmp_path)} for ``formats``, writing ``hdr`` [H, W, 3]; each writer records
    what it wrote (precision; gain map; nits mapping) in ``details[format]``.

    ``photo``: the input as read ([H, W, 3] in [0, 1], displayed orientation), uhdr's base image.
    """
    from hdr_keras import io as hio

    def exr(tmp):
        hio.write_exr(tmp, hdr, half=not args.float32)
        details["exr"] = {"precision": "float32" if args.float32 else "half"}

    def rgbe(tmp):
        hio.write_hdr(tmp, hdr)
        details["hdr"] = {"precision": "rgbe"}

    def gain_map_jpeg(tmp):
        details["uhdr"] = ultrahdr.write(tmp, photo, hdr, args.max_boost, args.uhdr_quality).as_dict()

    def pq_avif(tmp):
        details["avif"] = avif.write(tmp, hdr, args.avif_quality)

    writers = {"exr": exr, "hdr": rgbe, "uhdr": gain_map_jpeg, "avif": pq_avif}
    return {fmt: writers[fmt] for fmt in formats}


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


def _write_unit(outputs, writers):
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
        _write_atomic(outputs[role], write)
        path = outputs[role]
        files[role] = {"name": path.name, "bytes": path.stat().st_size, "sha256": pretrained.sha256(path)}
    return files


def _remove_stale_temporaries(out_dir, stem):
    """Removes the temporary files of :func:`_write_atomic` for ``stem`` that a killed run left."""
    pattern = re.compile(re.escape(f".{stem}.") + r"[0-9a-f]{12}\.tmp(\.[^.]*)?")
    for path in out_dir.glob(f".{glob.escape(stem)}.*.tmp*"):
        if pattern.fullmatch(path.name):
            with contextlib.suppress(OSError):
                path.unlink()


def _unit_lock(out_dir, stem):
    """The lock file that claims the output unit of ``stem`` while a run writes it."""
    return out_dir / f".{stem}.lock"


# --------------------------------------------------------------------------- command


def _resolve_weights(args):
    from hdr_keras import pretrained

    try:
        return pretrained.resolve_weights(args.preset, args.weights)
    except (FileNotFoundError, pretrained.MissingWeightsError) as e:
        raise UsageError(str(e)) from None


def passed_over(inputs, taken):
    """(path, reason) for every entry of the folders among ``inputs`` that is not in ``taken``."""
    from hdr_keras import io as hio

    taken = {path.resolve() for path in taken}
    types = " ".join(sorted(hio.LDR_EXTS))
    result = []
    for folder in (pathlib.Path(item) for item in inputs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.resolve() in taken:
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


def _validate(args):
    if args.float32 and "exr" not in args.format:
        raise UsageError("--float32 applies to --format exr only")
    if not (math.isfinite(args.max_boost) and args.max_boost > 0):
        raise UsageError(f"--max_boost must be > 0 stops, got {args.max_boost}")
    if not 1 <= args.uhdr_quality <= 100:
        raise UsageError(f"--uhdr_quality must be in 1..100, got {args.uhdr_quality}")
    if not 0 <= args.avif_quality <= 100:
        raise UsageError(f"--avif_quality must be in 0..100, got {args.avif_quality}")
    if not TILE_MULTIPLE <= args.tile <= MAX_TILE or args.tile % TILE_MULTIPLE:
        raise UsageError(
            f"--tile must be a multiple of {TILE_MULTIPLE} from {TILE_MULTIPLE} to {MAX_TILE}, got {args.tile}"
        )
    if not 0 <= args.tile_overlap < args.tile:
        raise UsageError(f"--tile_overlap must be in [0, --tile), got {args.tile_overlap}")
    if args.tile < 2 * args.tile_overlap + 32:
        raise UsageError(
            f"--tile {args.tile} is too small for --tile_overlap {args.tile_overlap}; need >= 2 * overlap + 32"
        )
    if not (math.isfinite(args.tile_above) and args.tile_above >= 0):
        raise UsageError(f"--tile_above must be >= 0, got {args.tile_above}")
    if not (math.isfinite(args.max_megapixels) and args.max_megapixels > 0):
        raise UsageError(f"--max_megapixels must be > 0, got {args.max_megapixels}")
    if args.overwrite and args.skip_existing:
        raise UsageError("--overwrite and --skip_existing exclude each other")


def run(args):
    """Runs ``predict`` with parsed ``args``; returns the exit status (0 ok, 1 a file failed, 2 usage,
    130 interrupted by Ctrl-C, which leaves every output unit complete or visibly incomplete)."""
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(
            "predict: interrupted; the outputs written so far are complete, none is half-written "
            "(rerun with --skip_existing to finish the batch)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _run(args):
    from tqdm import tqdm

    from hdr_keras import io as hio

    def say(message):
        tqdm.write(message, file=sys.stderr)

    try:
        _validate(args)
        weights = _resolve_weights(args)
        paths = hio.list_images(args.inputs, hio.LDR_EXTS)
        missing = [path for path in paths if not os.path.lexists(path)]  # a symlink loop fails when read
        paths = [path for path in paths if os.path.lexists(path)]
        for path in missing:
            say(f"{path}: file not found")
        if not args.quiet:
            for path, reason in passed_over(args.inputs, paths):
                say(f"{path}: skipped ({reason})")
        if not paths:
            raise UsageError("no input images found in " + ", ".join(map(str, args.inputs)))
        out_dir = pathlib.Path(args.out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"{out_dir}: cannot create output folder ({e.strerror or e})") from e
        try:  # a read-only folder fails now, not after the first inference
            with tempfile.TemporaryFile(dir=out_dir):
                pass
        except OSError as e:
            raise UsageError(f"{out_dir}: cannot write in the output folder ({e.strerror or e})") from e
    except UsageError as e:
        print(f"predict: error: {e}", file=sys.stderr)
        return EXIT_USAGE

    from hdr_keras.quiet import import_tensorflow

    import_tensorflow()  # first import of TensorFlow: without its C++ start-up noise
    from hdr_keras import __version__, precision, pretrained

    dtype, dtype_reason = precision.resolve(args.dtype)
    if not args.quiet:
        say(f"predict: compute dtype {dtype} ({dtype_reason})")
    weights_sha256 = pretrained.sha256(weights)
    try:
        predictor = get_predictor(args.preset, weights, weights_sha256, args.refine, dtype)
    except pretrained.WeightsError as e:  # a file of another preset or stage, truncated, not HDF5
        print(f"predict: error: {e}", file=sys.stderr)
        return EXIT_USAGE

    written, failed, skipped = 0, len(missing), 0
    claimed = {}  # output stem -> the input that produces it in this run
    bar = tqdm(paths, desc="predict", unit="image", disable=args.quiet, file=sys.stderr, dynamic_ncols=True)

    def tile_progress(total):
        tiles_bar = tqdm(
            total=total, desc="  tiles", unit="tile", leave=False, disable=args.quiet, file=sys.stderr, dynamic_ncols=True
        )

        def advance(_tile):
            tiles_bar.update(1)
            if tiles_bar.n >= total:
                tiles_bar.close()

        return advance

    for path in bar:
        start = time.perf_counter()
        stem = path.stem
        outputs = output_paths(out_dir, stem, args.format, args.preview)
        if stem in claimed:
            say(f"{path}: output name '{stem}' is already used by {claimed[stem]} in this run; rename one of them")
            failed += 1
            continue
        replaced = next((p for p in outputs.values() if os.path.realpath(p) == os.path.realpath(path)), None)
        if replaced is not None:
            say(f"{path}: output {replaced} would replace the input photo; pass another --out_dir")
            failed += 1
            continue
        with filelock.hold(_unit_lock(out_dir, stem)):  # another run writing this unit: wait for it
            state, reason = unit_state(outputs)
            if state == "complete" and args.skip_existing:
                skipped += 1
                continue
            if state != "absent" and not args.overwrite and not args.skip_existing:
                existing = next(p for p in outputs.values() if p.exists())
                hint = "" if state == "complete" else f"; it is incomplete ({reason}): --skip_existing redoes it"
                say(f"{path}: output exists: {existing} (pass --overwrite to replace it{hint})")
                failed += 1
                continue
            if state == "partial" and args.skip_existing:
                say(f"{path}: redoing incomplete outputs ({reason})")
            _remove_stale_temporaries(out_dir, stem)
            try:
                image = hio.read_ldr(
                    path, min_size=MIN_SIZE, max_pixels=round(args.max_megapixels * 1e6), notice=say
                )
                claimed[stem] = path  # only inputs that were read claim their output name
                height, width = image.shape[:2]
                bar.set_postfix_str(f"{path.name} {width}x{height}", refresh=False)
                hdr, inverse_crf, info = predictor.predict(
                    image, args.tile, args.tile_overlap, args.tile_above, progress=tile_progress
                )
                photo = image if "uhdr" in args.format else None  # the Ultra HDR base image
                del image
                details = {}
                writers = _format_writers(args.format, hdr, photo, args, details)
                if args.preview:
                    writers["preview"] = lambda tmp: hio.write_png(tmp, preview(hdr))
                files = _write_unit(outputs, writers)
                del photo
                for role, extra in details.items():
                    files[role].update(extra)
                meta = {
                    "hdr_keras_version": __version__,
                    "input": str(path),
                    "preview": outputs["preview"].name if args.preview else None,
                    "files": files,
                    "formats": args.format,
                    "width": int(width),
                    "height": int(height),
                    "preset": args.preset,
                    "refine": predictor.refine,
                    "dtype": dtype,
                    "weights": {"file": weights.name, "sha256": weights_sha256},
                    "tiled": info["tiled"],
                    "tile": args.tile if info["tiled"] else None,
                    "tile_overlap": args.tile_overlap if info["tiled"] else None,
                    "tiles": info["tiles"] if info["tiled"] else 1,
                    "curve_size": {"width": info["curve_size"][1], "height": info["curve_size"][0]},
                    "hdr_max": float(np.max(hdr)),
                    "seconds": round(time.perf_counter() - start, 3),
                }
                _write_atomic(outputs["json"], lambda tmp: pathlib.Path(tmp).write_text(_sidecar_text(meta, inverse_crf)))
                written += 1
            except hio.ImageReadError as e:
                say(str(e))
                failed += 1
            except (MemoryError, _oom_error()) as e:
                say(f"{path}: out of memory ({type(e).__name__}); try a smaller --tile or --tile_above")
                failed += 1
            except OSError as e:
                say(f"{path}: cannot write output ({e})")
                failed += 1
            except Exception as e:  # keep going with the other files; the exit status reports it
                say(f"{path}: failed ({type(e).__name__}: {e})")
                failed += 1
    bar.close()
    if failed or not args.quiet:
        parts = [f"{written} written", f"{failed} failed"] + ([f"{skipped} skipped"] if skipped else [])
        print(f"predict: {', '.join(parts)} -> {out_dir}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _oom_error():
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError
