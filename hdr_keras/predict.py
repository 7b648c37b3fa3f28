"""Reconstruct linear HDR images (OpenEXR or Radiance .hdr) from ordinary photos.

For every input photo STEM.EXT it writes OUT_DIR/STEM.exr (or .hdr) holding linear RGB radiance at
the photo's full size and displayed (EXIF) orientation, at relative scale: well-exposed pixels are
at the level of the linearised input. Beside it, OUT_DIR/STEM.json holds the estimated inverse
camera curve and how the image was made, and with --preview OUT_DIR/STEM.png a tone-mapped preview.
Large images are processed in overlapping tiles. Exit status: 0 all written, 1 some file failed,
2 usage error or no weights. Documentation: docs/predict.md.
"""

import argparse
import contextlib
import json
import math
import os
import pathlib
import sys
import time
import uuid

import numpy as np

from hdr_keras import tiling
from hdr_keras.presets import PRESETS

DEFAULT_PRESET = "lite"
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 128
DEFAULT_TILE_ABOVE_MP = 4.0
TILE_MULTIPLE = 32
"""``--tile`` must be a multiple of this (the largest downsampling factor of the networks)."""
CURVE_SIDE = 1024
"""The camera curve is estimated on the image downscaled (area interpolation) so that its long side
is at most this many pixels: once per image, and shared by all tiles."""
MIN_SIZE = 8
"""Smallest accepted input height and width, in pixels."""
PREVIEW_ROWS = 512
"""Rows tone-mapped at a time for the preview (bounds memory on large images)."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with the command as a whole (exit status 2), not with one input file."""


# --------------------------------------------------------------------------- arguments


def add_arguments(parser):
    """Adds the ``predict`` options to an argparse parser."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="photo files, or folders (their JPEG/PNG/TIFF/BMP/WebP files, not recursive)",
    )
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="output folder, created if missing (required)")
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
        default="exr",
        choices=("exr", "hdr"),
        help="output format: OpenEXR (half float, ZIP) or Radiance RGBE .hdr (default: %(default)s)",
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
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the Refinement-Net after the Hallucination-Net (default: on)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=DEFAULT_TILE,
        metavar="PX",
        help="tile side in pixels for large images (see --tile-above); 0 disables tiling "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        metavar="PX",
        help="overlap between neighbouring tiles, blended with linear ramps (default: %(default)s)",
    )
    parser.add_argument(
        "--tile-above",
        type=float,
        default=DEFAULT_TILE_ABOVE_MP,
        metavar="MP",
        help="tile images larger than this many megapixels; 0 tiles every image larger than one "
        "tile (default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (default: off: a file whose outputs exist fails)",
    )
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip, without error, files whose outputs all exist (to resume a batch; default: off)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bars or summary; errors still print (default: off)"
    )


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

    def __init__(self, preset, weights, refine=True):
        import tensorflow as tf

        from hdr_keras import pretrained

        self.preset, self.weights, self.refine = preset, weights, refine
        self.model = model = pretrained.build_model(preset, weights, refine=bool(refine))
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


def get_predictor(preset, weights, weights_sha256, refine):
    """A cached :class:`Predictor` (the last two configurations are kept, keyed by weights checksum)."""
    key = (preset, str(pathlib.Path(weights).resolve()), weights_sha256, bool(refine))
    if key not in _PREDICTORS:
        while len(_PREDICTORS) >= 2:
            _PREDICTORS.pop(next(iter(_PREDICTORS)))
        _PREDICTORS[key] = Predictor(preset, weights, refine)
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


def output_paths(out_dir, stem, fmt, with_preview):
    """The files written for an input named ``stem``: {'hdr', 'json'[, 'preview']} -> Path."""
    paths = {"hdr": out_dir / f"{stem}.{fmt}", "json": out_dir / f"{stem}.json"}
    if with_preview:
        paths["preview"] = out_dir / f"{stem}.png"
    return paths


# --------------------------------------------------------------------------- command


def _resolve_weights(args):
    from hdr_keras import pretrained

    if args.weights is None:
        weights = pretrained.shipped_weights(args.preset)
        if weights is None:
            raise UsageError(
                f"no shipped weights for preset '{args.preset}'; train them (see train_stage.py) "
                "or pass --weights FILE"
            )
        return pathlib.Path(weights)
    weights = pathlib.Path(args.weights)
    if not weights.is_file():
        raise UsageError(f"{weights}: weights file not found")
    return weights


def _validate(args):
    if args.float32 and args.format != "exr":
        raise UsageError("--float32 applies to --format exr only")
    if args.tile < 0 or args.tile % TILE_MULTIPLE:
        raise UsageError(f"--tile must be 0 or a positive multiple of {TILE_MULTIPLE}, got {args.tile}")
    if args.tile and not 0 <= args.tile_overlap < args.tile:
        raise UsageError(f"--tile-overlap must be in [0, --tile), got {args.tile_overlap}")
    if args.tile and args.tile < 2 * args.tile_overlap + 32:
        raise UsageError(
            f"--tile {args.tile} is too small for --tile-overlap {args.tile_overlap}; need >= 2 * overlap + 32"
        )
    if not (math.isfinite(args.tile_above) and args.tile_above >= 0):
        raise UsageError(f"--tile-above must be >= 0, got {args.tile_above}")
    if args.overwrite and args.skip_existing:
        raise UsageError("--overwrite and --skip-existing exclude each other")


def run(args):
    """Runs ``predict`` with parsed ``args``; returns the exit status (0 ok, 1 a file failed, 2 usage)."""
    from tqdm import tqdm

    from hdr_keras import io as hio

    def say(message):
        tqdm.write(message, file=sys.stderr)

    try:
        _validate(args)
        weights = _resolve_weights(args)
        paths = hio.list_images(args.inputs, hio.LDR_EXTS)
        if not paths:
            raise UsageError("no input images found in " + ", ".join(map(str, args.inputs)))
        out_dir = pathlib.Path(args.out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"{out_dir}: cannot create output folder ({e.strerror or e})") from e
    except UsageError as e:
        print(f"predict: error: {e}", file=sys.stderr)
        return EXIT_USAGE

    from hdr_keras import __version__, pretrained

    weights_sha256 = pretrained.sha256(weights)
    try:
        predictor = get_predictor(args.preset, weights, weights_sha256, args.refine)
    except Exception as e:  # incompatible or corrupt weights file
        print(f"predict: error: cannot load weights {weights} for preset '{args.preset}': {e}", file=sys.stderr)
        return EXIT_USAGE

    written, failed, skipped = 0, 0, 0
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
        existing = [p for p in outputs.values() if p.exists()]
        if existing and not args.overwrite:
            if args.skip_existing and len(existing) == len(outputs):
                skipped += 1
                continue
            say(f"{path}: output exists: {existing[0]} (pass --overwrite to replace it)")
            failed += 1
            continue
        try:
            image = hio.read_ldr(path, min_size=MIN_SIZE)
            claimed[stem] = path  # only inputs that were read claim their output name
            height, width = image.shape[:2]
            bar.set_postfix_str(f"{path.name} {width}x{height}", refresh=False)
            hdr, inverse_crf, info = predictor.predict(
                image, args.tile, args.tile_overlap, args.tile_above, progress=tile_progress
            )
            del image
            if args.format == "exr":
                _write_atomic(outputs["hdr"], lambda tmp: hio.write_exr(tmp, hdr, half=not args.float32))
            else:
                _write_atomic(outputs["hdr"], lambda tmp: hio.write_hdr(tmp, hdr))
            if args.preview:
                _write_atomic(outputs["preview"], lambda tmp: hio.write_png(tmp, preview(hdr)))
            meta = {
                "hdr_keras_version": __version__,
                "input": str(path),
                "output": outputs["hdr"].name,
                "preview": outputs["preview"].name if args.preview else None,
                "format": args.format,
                "precision": "rgbe" if args.format == "hdr" else ("float32" if args.float32 else "half"),
                "width": int(width),
                "height": int(height),
                "preset": args.preset,
                "refine": bool(args.refine),
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
            say(f"{path}: out of memory ({type(e).__name__}); try a smaller --tile or --tile-above")
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
