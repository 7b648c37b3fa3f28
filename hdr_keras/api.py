"""The Python API: photos (arrays or files) -> linear HDR arrays, and the Keras model.

    import hdr_keras
    result = hdr_keras.reconstruct("photo.jpg")        # or an H x W x 3 uint8 / uint16 / float array
    result.hdr, result.inverse_crf, result.info         # float32 [H, W, 3]; float32 [1024]; dict

:func:`reconstruct` and :class:`Reconstructor` run :class:`hdr_keras.engine.Engine`, exactly what
``python -m hdr_keras predict`` runs (same curve, tiling and stages, so the same numbers as its
OpenEXR files); :func:`load_model` gives the Keras model itself. Documentation: docs/api.md.
"""

import os

import numpy as np

from hdr_keras import engine
from hdr_keras.engine import DEFAULT_OVERLAP, DEFAULT_PRESET, DEFAULT_TILE, DEFAULT_TILE_ABOVE_MP, Result
from hdr_keras.errors import UsageError

__all__ = ["Reconstructor", "Result", "load_model", "reconstruct"]


class Reconstructor:
    """A model loaded once, for many photos: ``Reconstructor(...).reconstruct(image)`` -> :class:`Result`.

    ``preset``: "lite" (shipped weights) or "paper"; ``weights``: a whole-SingleHDR
    ``.weights.h5`` file (default: the preset's shipped weights); ``runtime``: "auto" or a name of
    :data:`hdr_keras.runtimes.RUNTIMES`; ``dtype``: "auto", "float32" or "bfloat16"; ``refine``:
    run the Refinement-Net unless it is the identity. Problems with these raise
    :class:`hdr_keras.errors.UsageError` (a ``ValueError``) with one line.
    """

    def __init__(self, preset=DEFAULT_PRESET, weights=None, runtime="auto", dtype="auto", refine=True):
        self.engine = engine.get_engine(preset, weights, refine, dtype, runtime)

    def reconstruct(
        self, image, camera_profile=None, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP, tile_above=DEFAULT_TILE_ABOVE_MP
    ):
        """``image``: an H x W x 3 array (uint8, uint16, or float in [0, 1]; RGB) or a photo file
        (read as ``predict`` reads it: EXIF orientation applied). ``camera_profile``: None (the curve
        is estimated), a camera profile file (``calibrate``) or its inverse curve, 1024 values.
        Images above ``tile_above`` megapixels run in ``tile`` px tiles overlapping by ``overlap``.
        """
        ldr = as_ldr(image)
        curve, source = _profile_curve(camera_profile)
        result = self.engine.reconstruct(ldr, inverse_crf=curve, tile=tile, overlap=overlap, tile_above=tile_above)
        result.info["camera_profile"] = source
        return result


def reconstruct(
    image, *, preset=DEFAULT_PRESET, weights=None, runtime="auto", dtype="auto", refine=True, camera_profile=None,
    tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP, tile_above=DEFAULT_TILE_ABOVE_MP,
):  # fmt: skip
    """One photo -> :class:`Result` (``.hdr`` float32 [H, W, 3] linear radiance >= 0, ``.inverse_crf``
    float32 [1024], ``.info``). Arguments: see :class:`Reconstructor`; the loaded model is kept for
    the next call with the same settings."""
    reconstructor = Reconstructor(preset, weights, runtime, dtype, refine)
    return reconstructor.reconstruct(image, camera_profile, tile=tile, overlap=overlap, tile_above=tile_above)


def load_model(preset=DEFAULT_PRESET, weights=None):
    """The Keras :class:`~hdr_keras.models.SingleHDR` of ``preset`` with ``weights`` (default: the
    preset's shipped weights) strictly loaded: call it on LDR [N, H, W, 3] in [0, 1] for a dict
    of outputs (``hdr``, ``inverse_crf``, ``linear``, ...)."""
    from hdr_keras import pretrained
    from hdr_keras.models import SingleHDR

    engine.check_preset(preset)
    try:
        weights = pretrained.resolve_weights(preset, weights)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    return SingleHDR.from_preset(preset, weights=weights)


def as_ldr(image):
    """A photo file or an H x W x 3 array -> float32 [H, W, 3] in [0, 1]; UsageError if it is not one."""
    if isinstance(image, (str, os.PathLike)):
        from hdr_keras import io as hio

        try:
            return hio.read_ldr(image, min_size=engine.MIN_SIZE)
        except hio.ImageReadError as e:
            raise UsageError(str(e)) from None
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3 or min(array.shape[:2]) < engine.MIN_SIZE:
        raise UsageError(f"image must be H x W x 3 with H, W >= {engine.MIN_SIZE}, got shape {list(array.shape)}")
    if array.dtype in (np.uint8, np.uint16):
        return array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)
    if not np.issubdtype(array.dtype, np.floating):
        raise UsageError(f"image must be uint8, uint16 or float in [0, 1], got {array.dtype}")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise UsageError("a float image must hold finite values in [0, 1] (divide 8-bit values by 255)")
    return array


def _profile_curve(camera_profile):
    """(inverse curve [1024] or None, what a sidecar records of a profile file or None) of ``camera_profile``."""
    if camera_profile is None:
        return None, None
    if isinstance(camera_profile, (str, os.PathLike)):
        from hdr_keras import profiles

        try:
            profile = profiles.load_profile(camera_profile)
        except ValueError as e:
            raise UsageError(str(e)) from None
        return engine.check_curve(profile.inverse_crf), profiles.describe(profile, camera_profile)
    return engine.check_curve(camera_profile), None
