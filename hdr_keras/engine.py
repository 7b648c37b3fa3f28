"""The inference engine: one photo [H, W, 3] in [0, 1] -> linear HDR, by stages, tiled when large.

Every entry point (``predict``, :mod:`hdr_keras.api`, ``evaluate``'s runtime, the Beam pipeline)
reconstructs through :class:`Engine`. The stages run in a runtime (:mod:`hdr_keras.runtimes`):

1. the inverse camera curve [1024], once per image, on the image downscaled (area interpolation)
   to at most :data:`CURVE_SIDE` pixels on its long side, unless a curve (a camera profile) is given;
2. ``linearize`` (Dequantization-Net + the curve) on the whole image, or per tile when it is large
   (:func:`plan`), the tiles blended by :mod:`hdr_keras.tiling`;
3. ``hallucinate``: once on the whole linear image when the model's Hallucination stage says
   ``whole_image`` (it works at its own reduced resolution), else per tile together with step 2;
4. the Refinement-Net, per tile like step 2, only when it is not the identity.
"""

import dataclasses
import math
import pathlib

import numpy as np

from hdr_keras import tiling
from hdr_keras.errors import UsageError

DEFAULT_PRESET = "lite"
DEFAULT_DTYPE = "auto"
"""bfloat16 where the CPU runs it natively: on val it moves PU21 by 0.01 dB and the curve by ~1e-3
(``docs/evaluate.md``), invisible in the output, for a ~2.1x faster forward pass."""
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 128
DEFAULT_TILE_ABOVE_MP = 4.0
CURVE_SIDE = 1536
"""The camera curve is estimated on the image downscaled so that its long side is at most this; up to
it, in the same pass as the full-resolution stages (a 1 MP photo: one Dequantization pass, not two).
On val (native protocol) a curve from 512 px copies scores 0.16 dB PU21 lower than from 1024 px;
1536 scores as 1024 (-0.006 dB) and spares 1 MP photos a second Dequantization pass (docs/predict.md)."""
CURVE_POINTS = 1024
MIN_SIZE = 8
"""Smallest accepted image height and width, in pixels."""
TILE_MULTIPLE = 32
"""``tile`` must be a multiple of this (the largest downsampling factor of the networks)."""
MAX_TILE = 4096
"""Largest ``tile``: one tile of 4096x4096 already needs several GB."""


@dataclasses.dataclass
class Result:
    """One reconstruction: ``hdr`` float32 [H, W, 3] linear radiance >= 0 at relative scale (the
    well-exposed pixels at the level of the linearised input), ``inverse_crf`` float32 [1024] (the
    inverse camera curve used, 0 to 1) and ``info``, what a sidecar records (:meth:`Engine.describe`
    plus ``curve``: "estimated" or "given", ``curve_size``, ``tiled``, ``tile``, ``tile_overlap``,
    ``tiles``, ``hdr_max``)."""

    hdr: np.ndarray
    inverse_crf: np.ndarray
    info: dict


class Engine:
    """A model of ``preset`` with ``weights`` (a file; None: the preset's shipped weights) loaded
    once into ``runtime`` (:mod:`hdr_keras.runtimes`) at compute ``dtype`` ("auto", "float32",
    "bfloat16"; see :func:`hdr_keras.precision.resolve`). Raises UsageError for an unknown preset,
    runtime or dtype or missing weights, :class:`hdr_keras.pretrained.WeightsError` for a file that
    does not fit the preset."""

    def __init__(self, preset=DEFAULT_PRESET, weights=None, refine=True, dtype=DEFAULT_DTYPE, runtime="tensorflow"):
        from hdr_keras import pretrained, runtimes

        check_preset(preset)
        self.runtime_name, self.dtype, self.dtype_reason = runtimes.pick(runtime, dtype)
        try:
            self.weights = pretrained.resolve_weights(preset, weights)
        except (ValueError, FileNotFoundError) as e:
            raise UsageError(str(e)) from None
        self.preset = preset
        self.weights_sha256 = pretrained.sha256(self.weights)
        self.runtime = runtimes.load(self.runtime_name, preset, self.weights, refine=refine, dtype=self.dtype)

    @property
    def refine(self):
        """Whether the Refinement-Net runs: asked for, and not the identity with these weights."""
        return self.runtime.refines

    @property
    def align(self):
        """Tiles start at multiples of this (the networks' downsampling factor)."""
        return self.runtime.align

    def describe(self):
        """What made the outputs: preset, weights file and SHA-256, dtype, runtime, refine."""
        return {
            "preset": self.preset,
            "refine": self.refine,
            "dtype": self.dtype,
            "runtime": self.runtime_name,
            "weights": {"file": self.weights.name, "sha256": self.weights_sha256},
        }

    def estimate_curve(self, image):
        """Inverse camera curve [1024] of ``image`` [H, W, 3], from its <= CURVE_SIDE downscaled copy."""
        return self.runtime.curve(downscale(image, CURVE_SIDE)[None])[0]

    def reconstruct(
        self,
        image,
        inverse_crf=None,
        tile=DEFAULT_TILE,
        overlap=DEFAULT_OVERLAP,
        tile_above=DEFAULT_TILE_ABOVE_MP,
        progress=None,
    ):
        """``image`` float32 [H, W, 3] in [0, 1] -> :class:`Result`.

        ``inverse_crf``: a [1024] curve (a camera profile) used instead of the estimate. Images above
        ``tile_above`` megapixels are processed in ``tile`` px tiles overlapping by ``overlap``
        (:func:`plan`); ``progress(n_tiles)`` may return a callback called after each tile.
        """
        check_tiling(tile, overlap, tile_above)
        image = np.asarray(image, np.float32)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise UsageError(f"image must be [H, W, 3], got shape {list(image.shape)}")
        height, width = image.shape[:2]
        given = inverse_crf is not None
        tiles = plan(height, width, tile, overlap, tile_above, self.align)
        rt, linear = self.runtime, None
        if given:
            curve = check_curve(inverse_crf)
        elif not tiles and curve_size(height, width) == (height, width) and hasattr(rt, "curve_and_linearize"):
            curve, linear = (a[0] for a in rt.curve_and_linearize(image[None]))
        else:
            curve = self.estimate_curve(image)
        curves = curve[None]
        on_tile = progress(len(tiles)) if progress is not None and tiles else None

        def tiled(fn, array):
            if not tiles:
                return fn(array)
            return tiling.run_tiled(array, fn, tile, overlap, self.align, on_tile)

        def linearized(window):
            return rt.linearize(window[None], curves)[0] if linear is None else linear

        def refined(ldr, linear, hallucinated):
            return rt.refine(ldr[None], linear[None], hallucinated[None])[0] if rt.refines else hallucinated

        if rt.whole_image:
            linear = tiled(linearized, image)
            hallucinated = rt.hallucinate(linear[None])[0]
            if rt.refines:
                stacked = np.concatenate([image, linear, hallucinated], axis=-1)
                on_tile = None
                hallucinated = tiled(lambda w: refined(w[..., :3], w[..., 3:6], w[..., 6:]), stacked)
            hdr = hallucinated
        else:

            def chain(window):
                lin = linearized(window)
                return refined(window, lin, rt.hallucinate(lin[None])[0])

            hdr = tiled(chain, image)
        ch, cw = curve_size(height, width)
        info = {
            **self.describe(),
            "curve": "given" if given else "estimated",
            "curve_size": None if given else {"width": cw, "height": ch},
            "tiled": bool(tiles),
            "tile": tile if tiles else None,
            "tile_overlap": overlap if tiles else None,
            "tiles": max(1, len(tiles)),
            "hdr_max": float(np.max(hdr)),
        }
        return Result(hdr=hdr, inverse_crf=curve, info=info)


def check_preset(preset):
    """UsageError naming the known presets if ``preset`` is not one."""
    from hdr_keras.presets import PRESETS

    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose from {', '.join(sorted(PRESETS))}")


def check_tiling(tile, overlap, tile_above):
    """UsageError unless ``tile`` is a multiple of TILE_MULTIPLE up to MAX_TILE, ``overlap`` at most
    (tile - 32) / 2 and ``tile_above`` (megapixels) >= 0."""
    if not TILE_MULTIPLE <= tile <= MAX_TILE or tile % TILE_MULTIPLE:
        raise UsageError(f"tile must be a multiple of {TILE_MULTIPLE} from {TILE_MULTIPLE} to {MAX_TILE}, got {tile}")
    if not 0 <= overlap <= (tile - 32) / 2:
        raise UsageError(f"tile overlap must be in [0, (tile - 32) / 2] = [0, {(tile - 32) // 2}], got {overlap}")
    if not (math.isfinite(tile_above) and tile_above >= 0):
        raise UsageError(f"tile_above must be >= 0 megapixels, got {tile_above}")


def check_curve(inverse_crf):
    """A given inverse camera curve as float32 [1024]; UsageError if it has another shape or is not finite."""
    curve = np.asarray(inverse_crf, np.float32).reshape(-1)
    if curve.size != CURVE_POINTS or not np.all(np.isfinite(curve)):
        raise UsageError(f"inverse_crf must be {CURVE_POINTS} finite values, got shape {list(np.shape(inverse_crf))}")
    return curve


_ENGINES = {}


def get_engine(preset=DEFAULT_PRESET, weights=None, refine=True, dtype=DEFAULT_DTYPE, runtime="tensorflow"):
    """A cached :class:`Engine` (the last two configurations are kept, keyed by the settings and
    the weights file's path and SHA-256)."""
    from hdr_keras import pretrained, runtimes

    check_preset(preset)
    try:
        path = pretrained.resolve_weights(preset, weights)
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    runtime, dtype, _ = runtimes.pick(runtime, dtype)
    key = (preset, str(pathlib.Path(path).resolve()), pretrained.sha256(path), bool(refine), dtype, runtime)
    if key not in _ENGINES:
        while len(_ENGINES) >= 2:
            _ENGINES.pop(next(iter(_ENGINES)))
        _ENGINES[key] = Engine(preset, path, refine, dtype, runtime)
    return _ENGINES[key]


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
