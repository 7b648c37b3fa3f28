"""Evaluation metrics for single-image HDR reconstruction, in pure numpy.

Conventions (docs/design.md#evaluation):

* Images are linear, float, shaped [H, W] or [H, W, C]; every function computes in float64 and
  returns a Python float.
* A ``mask`` is a bool array whose shape equals the leading dimensions of the images ([H, W] for
  an [H, W, C] image) and selects the pixels (all their channels) that enter the score. An empty
  mask gives ``nan``, so that per-image scores can be averaged with ``np.nanmean``.
* HDR predictions are relative (unknown exposure). Score them after ``match_scale``; PU21 scores
  additionally map both images to absolute display luminance with ``to_display_luminance``.
"""

import numpy as np

REC709_LUMA = (0.2126, 0.7152, 0.0722)
"""Rec. 709 luminance weights of linear RGB (the one copy: previews, augmentation, highlight figures)."""

# PU21 'banding_glare' parameters p(1)..p(7), copied from the reference implementation
# gfxdisp/pu21, matlab/pu21_encoder.m ("The paraeters were updated on 06/02/2020"); the authors
# recommend only this variant. Mantiuk & Azimi, "PU21: A novel perceptually uniform encoding for
# adapting existing quality metrics for HDR", Picture Coding Symposium 2021.
PU21_BANDING_GLARE = (0.353487901, 0.3734658629, 8.277049286e-05, 0.9062562627,
                      0.09150303166, 0.9099517204, 596.3148142)
PU21_L_MIN = 0.005  # cd/m^2, lower clamp of the encoder
PU21_L_MAX = 10000.0  # cd/m^2, upper clamp of the encoder
PU21_PSNR_PEAK = 256.0  # peak used by pu21_metric.m: psnr(P_test, P_reference, 256)


def _select(pred, target, mask):
    """Return float64 copies of pred and target (same shape), restricted to ``mask`` if given."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: {pred.shape} vs {target.shape}")
    if mask is None:
        return pred, target
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != pred.shape[:mask.ndim]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {pred.shape}")
    return pred[mask], target[mask]


def _psnr_from(pred, target, peak):
    """PSNR in dB of already-selected float64 arrays; inf if equal, nan if empty."""
    if pred.size == 0:
        return float("nan")
    mse = np.mean((pred - target) ** 2)
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak ** 2 / mse))


def psnr(pred, target, peak=1.0, mask=None):
    """PSNR in dB: ``10*log10(peak**2 / MSE)``, MSE over all elements (all channels).

    pred, target: same shape, any range (e.g. [0, 1] LDR or linear images with ``peak=1``).
    Also the dequantization PSNR (paper Table 2) and linear-image PSNR (Table 3).
    Returns inf when the selected elements are identical, nan when ``mask`` selects nothing.
    """
    return _psnr_from(*_select(pred, target, mask), peak)


def crf_rmse(pred_curve, true_curve):
    """RMSE between inverse camera response curves sampled at 1024 uniform points in [0, 1].

    pred_curve, true_curve: [1024] or [N, 1024], values in [0, 1]. For [N, 1024] the result is the
    mean over the N curves of each curve's RMSE (not the RMSE of all N*1024 samples pooled).
    """
    pred = np.asarray(pred_curve, dtype=np.float64)
    true = np.asarray(true_curve, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim not in (1, 2):
        raise ValueError(f"expected two [L] or [N, L] curves, got {pred.shape} and {true.shape}")
    per_curve = np.sqrt(np.mean((pred - true) ** 2, axis=-1))
    return float(np.mean(per_curve))


def log_psnr(pred, target, floor=1e-5, mask=None):
    """PSNR of log10 images relative to the reference maximum, over ``-log10(floor)`` decades.

    With ``m = max(target)`` (over the whole image, before masking), each image x becomes
    ``y = log10(max(x / m, floor))``, so the reference lies in ``[log10(floor), 0]`` and
    ``log_psnr = 10*log10(P**2 / mean((y_pred - y_target)**2))`` with the fixed peak
    ``P = -log10(floor)`` (5 decades for the default ``floor=1e-5``). The score is invariant to
    scaling both images by the same factor; scale a relative prediction with ``match_scale`` first.
    pred, target: linear, non-negative, same shape; ``target`` must have a positive maximum.
    Returns inf when identical after clamping, nan when ``mask`` selects nothing.
    """
    m = float(np.max(target))
    if not m > 0.0:
        raise ValueError("target must have a positive maximum")
    pred, target = _select(pred, target, mask)
    log_pred = np.log10(np.maximum(pred / m, floor))
    log_target = np.log10(np.maximum(target / m, floor))
    return _psnr_from(log_pred, log_target, -np.log10(floor))


def pu21_encode(luminance_cd_m2):
    """PU21 'banding_glare' encoding of absolute linear values (cd/m^2) to perceptual units.

    ``V = p7 * (((p1 + p2*Y**p4) / (1 + p3*Y**p4))**p5 - p6)`` with Y clamped to
    [0.005, 10000] cd/m^2, exactly as gfxdisp/pu21 ``pu21_encoder.encode``; parameters in
    ``PU21_BANDING_GLARE``. Applied elementwise, so RGB channels are encoded separately.
    Range: ~5.5e-10 at 0.005 cd/m^2, 36.54 at 1, 256.38 at 100, 595.39 at 10000 cd/m^2.
    """
    p1, p2, p3, p4, p5, p6, p7 = PU21_BANDING_GLARE
    y = np.clip(np.asarray(luminance_cd_m2, dtype=np.float64), PU21_L_MIN, PU21_L_MAX)
    y_p4 = y ** p4
    return p7 * (((p1 + p2 * y_p4) / (1.0 + p3 * y_p4)) ** p5 - p6)


def pu21_decode(encoded):
    """Inverse of ``pu21_encode`` (``pu21_encoder.decode``): PU units -> cd/m^2 in [0.005, 1e4]."""
    p1, p2, p3, p4, p5, p6, p7 = PU21_BANDING_GLARE
    v_p = np.maximum(np.asarray(encoded, dtype=np.float64) / p7 + p6, 0.0) ** (1.0 / p5)
    return (np.maximum(v_p - p1, 0.0) / (p2 - p3 * v_p)) ** (1.0 / p4)


def to_display_luminance(image, reference, peak_cd_m2=4000.0, percentile=100.0):
    """Map a relative HDR pair to absolute display luminance with one common factor.

    ``k = peak_cd_m2 / percentile(reference, percentile)`` over all elements (all channels), and
    returns ``(image * k, reference * k)`` in cd/m^2. The default (maximum -> 4000 cd/m^2) is the
    gfxdisp/pu21 README convention ``I_ref = I_ref/max(I_ref(:)) * L_peak`` with ``L_peak = 4000``;
    a percentile below 100 keeps a few very bright pixels (sun) from darkening the whole image.
    image, reference: linear, same shape; the reference's percentile must be positive.
    """
    level = float(np.percentile(np.asarray(reference, dtype=np.float64), percentile))
    if not level > 0.0:
        raise ValueError("reference percentile must be positive")
    k = peak_cd_m2 / level
    return np.asarray(image, dtype=np.float64) * k, np.asarray(reference, dtype=np.float64) * k


def pu21_psnr(pred, target, peak_cd_m2=4000.0, percentile=100.0, mask=None):
    """PU21-PSNR in dB, as ``pu21_metric(pred, target, 'PSNR')`` of gfxdisp/pu21.

    pred, target: linear [H, W] luminance or [H, W, 3] RGB, same shape. Both are first mapped to
    cd/m^2 by ``to_display_luminance(pred, target, peak_cd_m2, percentile)``; pass
    ``peak_cd_m2=None`` for images already in absolute cd/m^2. Each colour channel is
    PU21-encoded separately (no conversion to luminance), then
    ``10*log10(256**2 / MSE)`` over all elements, peak 256 as in the MATLAB code (roughly the
    PU value of 100 cd/m^2; the encoded range reaches ~595). ``mask`` ([H, W] bool) restricts the
    MSE to those pixels, e.g. ``overexposed_mask(ldr)`` for scores inside clipped regions.
    Returns inf when identical, nan when ``mask`` selects nothing.
    """
    if peak_cd_m2 is not None:
        pred, target = to_display_luminance(pred, target, peak_cd_m2, percentile)
    pred, target = _select(pred, target, mask)
    return _psnr_from(pu21_encode(pred), pu21_encode(target), PU21_PSNR_PEAK)


def match_scale(pred, target, mask=None, eps=1e-6):
    """Scale a relative HDR prediction to the reference; returns ``(pred * s, s)``.

    ``s = exp(median(log(target) - log(pred)))`` over the elements (all channels) where both
    images exceed ``eps`` and, if given, inside ``mask`` ([H, W] bool, e.g. well-exposed pixels
    ``~overexposed_mask(ldr)``). This is the L1-optimal (median, robust to outliers) single scalar
    in the log domain. pred, target: linear, non-negative, same shape. Raises ValueError when no
    element qualifies.
    """
    p, t = _select(pred, target, mask)
    valid = (p > eps) & (t > eps)
    if not np.any(valid):
        raise ValueError("no elements above eps to estimate the scale from")
    s = float(np.exp(np.median(np.log(t[valid]) - np.log(p[valid]))))
    return np.asarray(pred, dtype=np.float64) * s, s


def overexposed_mask(ldr, threshold=249 / 255):
    """Bool [H, W]: pixels whose maximum over channels is ``>= threshold``.

    ldr: [H, W] or [H, W, C] display-referred LDR input; floats in [0, 1], or integers, which
    are divided by their dtype's maximum (255 for uint8) first. ``threshold`` is on the [0, 1]
    scale.
    """
    ldr = np.asarray(ldr)
    if np.issubdtype(ldr.dtype, np.integer):
        ldr = ldr / np.iinfo(ldr.dtype).max
    if ldr.ndim == 3:
        ldr = ldr.max(axis=-1)
    return ldr >= threshold
