"""Highlight fidelity: how filled clipped regions compare with the truth, beside PU21 (numpy).

PU21 rewards added energy even where its colour and shape are wrong, so the fill of clipped
regions is also scored on its own (docs/evaluate.md, "Native resolution"). Every figure is taken
inside ``mask`` ([H, W] bool, the pixels clipped in the photo) after the prediction was scaled to
the truth (:func:`hdr_keras.metrics.match_scale` on the well-exposed pixels):

* ``chroma_error``: mean per-pixel Euclidean distance of the chromaticities ``(r, b) = (R, B) / (R + G + B)``;
* ``colour_cast``: distance between the mean chromaticities of prediction and truth;
* ``dark_share``: share of the pixels whose luminance is below 0.7x the clipped photo's through the
  true curve (the truth clipped at 1, what the camera recorded): holes and specks, but also a curve
  or a scale match that puts the clip level low (inverse sRGB, which fills nothing, scores as high);
* ``hole_share`` (given the photo as the method itself linearised it): share of the pixels whose
  luminance is below 0.7x that, at the same scale: holes and specks of the fill alone (0 for a
  method that leaves the clipped photo as it is);
* ``speckle``: RMS of the band-passed (difference of Gaussians, sigma 1 and 4 px) chromaticity,
  prediction over truth: 1 is as busy as the truth, above 1 blotches and specks.
"""

import cv2
import numpy as np

from hdr_keras.metrics import REC709_LUMA

LUMA = np.array(REC709_LUMA)
DARK_FRACTION = 0.7
SPECKLE_SIGMAS = (1.0, 4.0)
EPS = 1e-6


def chromaticity(image):
    """(r, b) chromaticity [H, W, 2] of a linear RGB image [H, W, 3] >= 0; grey (1/3, 1/3) where black."""
    image = np.maximum(np.asarray(image, np.float64), 0.0)
    total = image.sum(axis=-1, keepdims=True)
    rb = image[..., [0, 2]]
    return np.where(total > EPS, rb / np.maximum(total, EPS), 1.0 / 3.0)


def _band_pass(chroma):
    low, high = SPECKLE_SIGMAS
    chroma = chroma.astype(np.float32)
    return cv2.GaussianBlur(chroma, (0, 0), low) - cv2.GaussianBlur(chroma, (0, 0), high)


def fidelity(pred, truth, mask, photo=None):
    """Highlight-fidelity figures (module doc) of a scaled prediction [H, W, 3] against the truth.

    ``pred`` and ``truth`` are linear at the same scale (the truth's: 1 = the camera's clip level);
    ``mask`` [H, W] bool; ``photo`` [H, W, 3] the clipped photo through the method's own curve, at
    ``pred``'s scale (adds ``hole_share``). Returns a dict of floats, all nan when ``mask`` is empty.
    """
    mask = np.asarray(mask, bool)
    keys = ("chroma_error", "colour_cast", "dark_share", "speckle") + (() if photo is None else ("hole_share",))
    if not mask.any():
        return dict.fromkeys(keys, float("nan"))
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    c_pred, c_true = chromaticity(pred), chromaticity(truth)
    error = np.linalg.norm(c_pred[mask] - c_true[mask], axis=-1)
    cast = np.linalg.norm(c_pred[mask].mean(axis=0) - c_true[mask].mean(axis=0))
    clipped_luma = np.minimum(truth, 1.0)[mask] @ LUMA
    dark = (pred[mask] @ LUMA) < DARK_FRACTION * clipped_luma
    band_pred, band_true = _band_pass(c_pred)[mask], _band_pass(c_true)[mask]
    rms_true = float(np.sqrt(np.mean(band_true.astype(np.float64) ** 2)))
    rms_pred = float(np.sqrt(np.mean(band_pred.astype(np.float64) ** 2)))
    figures = {
        "chroma_error": float(error.mean()),
        "colour_cast": float(cast),
        "dark_share": float(dark.mean()),
        "speckle": rms_pred / max(rms_true, 1e-4),
    }
    if photo is not None:
        own = np.asarray(photo, np.float64)[mask] @ LUMA
        figures["hole_share"] = float(((pred[mask] @ LUMA) < DARK_FRACTION * own).mean())
    return figures
