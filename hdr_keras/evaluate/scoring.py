"""Scores of one prediction against its reference, and their means over records."""

import math

import numpy as np

from hdr_keras import metrics
from hdr_keras.evaluate.scenes import apply_curves

PSNR_CAP = 100.0
"""Per-image PSNRs (all kinds) are capped at this many dB before averaging (identical images give +inf)."""
SCALE_EPS = 1e-6
"""Elements at or below this (prediction or reference) are left out of scale matching (as ``metrics.match_scale``)."""
LOG_FLOOR = 1e-5
"""Floor of ``metrics.log_psnr`` (5 decades)."""
HDR_KEYS = ("pu21_psnr", "log_psnr", "pu21_psnr_overexposed")


def cap(value):
    return min(float(value), PSNR_CAP)


class Reference:
    """The final-HDR reference ``H t`` of one image, with what every method's score needs computed once.

    :meth:`scores` gives the same numbers as ``metrics.match_scale`` (on the pixels not
    over-exposed in the LDR; all pixels if none qualify there; else ``s = 1``), then
    ``metrics.pu21_psnr``, ``metrics.log_psnr`` and ``metrics.pu21_psnr`` on the over-exposed
    pixels, but the reference's logarithms, mask selections and PU21 encoding are computed once
    for all methods.
    """

    def __init__(self, target, ldr, pu21_peak, pu21_percentile):
        self.target = np.asarray(target, np.float64)
        self.over = metrics.overexposed_mask(ldr)
        # scale matching: (mask, valid reference elements, their log) on the pixels not
        # over-exposed, then on all pixels
        self.scale_sets = []
        for mask in (~self.over, None):
            selected = self.target if mask is None else self.target[mask]
            valid = selected > SCALE_EPS
            self.scale_sets.append((mask, valid, np.log(selected[valid])))
        # The factor k of metrics.to_display_luminance (reference percentile -> pu21_peak cd/m^2).
        level = float(np.percentile(self.target, pu21_percentile))
        if not level > 0.0:  # a percentile below 100 of a mostly black image: use the maximum
            level = float(self.target.max())
        self.k = pu21_peak / level
        self.encoded = metrics.pu21_encode(self.target * self.k)
        self.encoded_over = self.encoded[self.over]
        self.peak = float(self.target.max())
        self.log_target = np.log10(np.maximum(self.target / self.peak, LOG_FLOOR))

    def scale(self, pred):
        """The scale ``s`` of ``metrics.match_scale`` (float64 ``pred``), see the class doc."""
        for mask, valid_target, log_target in self.scale_sets:
            selected = pred if mask is None else pred[mask]
            valid = selected > SCALE_EPS
            both = valid[valid_target]
            if both.any():
                return float(np.exp(np.median(log_target[both] - np.log(selected[valid_target & valid]))))
        return 1.0

    def scores(self, pred):
        """PU21 PSNR, log PSNR, PU21 PSNR in the over-exposed pixels (nan if none) and the scale s."""
        pred = np.asarray(pred, np.float64)
        s = self.scale(pred)
        pred = pred * s
        encoded = metrics.pu21_encode(pred * self.k)
        pu21 = metrics.psnr(encoded, self.encoded, peak=metrics.PU21_PSNR_PEAK)
        over = metrics.psnr(encoded[self.over], self.encoded_over, peak=metrics.PU21_PSNR_PEAK)
        log_pred = np.log10(np.maximum(pred / self.peak, LOG_FLOOR))
        return {
            "pu21_psnr": cap(pu21),
            "log_psnr": cap(metrics.psnr(log_pred, self.log_target, peak=-math.log10(LOG_FLOOR))),
            "pu21_psnr_overexposed": over if math.isnan(over) else cap(over),
            "scale": s,
        }


def traced(model):
    """The model's runtime (:mod:`hdr_keras.runtimes.tensorflow`) and :func:`apply_curves` traced."""
    import tensorflow as tf

    from hdr_keras.runtimes.tensorflow import Runtime

    return Runtime.from_model(model), tf.function(apply_curves, reduce_retracing=True)
