import math

import numpy as np
import pytest

from hdr_keras import metrics
from hdr_keras.metrics import (crf_rmse, log_psnr, match_scale, overexposed_mask, psnr,
                               pu21_decode, pu21_encode, pu21_psnr, to_display_luminance)

RNG = np.random.default_rng(0)


def test_psnr_constant_offset_is_20db():
    target = RNG.uniform(0.0, 0.9, size=(8, 8, 3))
    # MSE = 0.1**2 = 0.01 -> 10*log10(1 / 0.01) = 20 dB
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-9)
    # peak 255 with an offset of 25.5 is the same ratio -> 20 dB
    assert psnr(255 * target + 25.5, 255 * target, peak=255.0) == pytest.approx(20.0, abs=1e-9)


def test_psnr_identical_is_inf_and_mask_selects_pixels():
    target = RNG.uniform(size=(4, 4, 3))
    assert psnr(target, target) == math.inf
    pred = target.copy()
    pred[0, 0] += 0.5  # one of 16 pixels, all 3 channels
    mask = np.zeros((4, 4), bool)
    mask[1:, :] = True
    assert psnr(pred, target, mask=mask) == math.inf
    # whole image: MSE = 3 * 0.25 / 48 = 1/64 -> 10*log10(64) = 18.0618 dB
    assert psnr(pred, target) == pytest.approx(10 * math.log10(64.0), abs=1e-9)
    assert math.isnan(psnr(pred, target, mask=np.zeros((4, 4), bool)))
    with pytest.raises(ValueError):
        psnr(pred, target[..., :2])


def test_crf_rmse_x_vs_x_squared():
    n = 1023  # grid x_i = i/n, i = 0..n (1024 points)
    x = np.linspace(0.0, 1.0, n + 1)
    # sum_i (i/n - i^2/n^2)^2 = sum_i i^2 (n-i)^2 / n^4 = (n^5 - n) / (30 n^4)
    # (identity checked by hand: n=2 -> 1 = 30/30, n=3 -> 4+4 = 8 = 240/30);
    # mean over n+1 points = (n^2+1)(n-1) / (30 n^3) ~ (1/30)(1 - 1/n), so the RMSE is
    # sqrt(1/30) = 0.1825742 times ~(1 - 1/(2n)) = 0.999511 -> 0.182485
    expected = math.sqrt((n * n + 1) * (n - 1) / (30.0 * n ** 3))
    assert expected == pytest.approx(0.182485, abs=1e-6)
    assert crf_rmse(x ** 2, x) == pytest.approx(expected, rel=1e-12)
    # 3-point grid 0, 0.5, 1: differences 0, 0.25, 0 -> sqrt(0.0625 / 3) = 0.25 / sqrt(3)
    g = np.array([0.0, 0.5, 1.0])
    assert crf_rmse(g ** 2, g) == pytest.approx(0.25 / math.sqrt(3.0), rel=1e-12)


def test_crf_rmse_batch_is_mean_of_per_curve_rmse():
    x = np.linspace(0.0, 1.0, 1024)
    pred = np.stack([x + 0.1, x + 0.3])  # per-curve RMSE 0.1 and 0.3
    true = np.stack([x, x])
    # mean of per-curve RMSE = 0.2 (the pooled RMSE would be sqrt(0.05) = 0.2236)
    assert crf_rmse(pred, true) == pytest.approx(0.2, rel=1e-12)
    assert crf_rmse(x, x) == 0.0
    with pytest.raises(ValueError):
        crf_rmse(x, x[:-1])


def test_pu21_parameters_and_hand_values():
    p1, p2, p3, p4, p5, p6, p7 = metrics.PU21_BANDING_GLARE
    assert (p1, p7) == (0.353487901, 596.3148142)
    # Y = 1: Y**p4 = 1, so V = p7 * (((p1 + p2) / (1 + p3))**p5 - p6)
    #   (0.353487901 + 0.3734658629) / 1.00008277049286 = 0.72689360
    #   0.72689360**0.09150303166 = 0.97123464; (0.97123464 - 0.9099517204) * 596.3148 = 36.544
    v1 = p7 * (((p1 + p2) / (1 + p3)) ** p5 - p6)
    assert v1 == pytest.approx(36.5439111394, abs=1e-8)
    assert pu21_encode(1.0) == pytest.approx(v1, rel=1e-14)
    # Y = 100: 100**p4 = exp(0.9062562627 * ln 100) = 64.940036053
    y100 = 100.0 ** p4
    assert y100 == pytest.approx(64.940036053, abs=1e-8)
    v100 = p7 * (((p1 + p2 * y100) / (1 + p3 * y100)) ** p5 - p6)
    assert v100 == pytest.approx(256.3838973127, abs=1e-8)  # ~256: the MATLAB PSNR peak
    assert pu21_encode(100.0) == pytest.approx(v100, rel=1e-14)
    # the ends of the clamped range: ~0 at 0.005 cd/m^2, ~595.39 at 10000 cd/m^2
    assert pu21_encode(0.005) == pytest.approx(5.4705e-10, rel=1e-3)
    assert pu21_encode(10000.0) == pytest.approx(595.3939, abs=1e-4)


def test_pu21_monotone_clamped_and_invertible():
    y = np.geomspace(0.005, 10000.0, 200)
    v = pu21_encode(y)
    assert np.all(np.diff(v) > 0)
    assert pu21_encode(0.0) == pu21_encode(0.005)
    assert pu21_encode(1e6) == pu21_encode(1e4)
    np.testing.assert_allclose(pu21_decode(v), y, rtol=1e-9)


def test_to_display_luminance_common_factor():
    ref = np.array([[0.5, 2.0], [1.0, 0.25]])
    img = np.array([[1.0, 1.0], [4.0, 0.0]])
    img_abs, ref_abs = to_display_luminance(img, ref, peak_cd_m2=4000.0)
    # k = 4000 / max(ref) = 2000
    np.testing.assert_allclose(ref_abs, ref * 2000.0)
    np.testing.assert_allclose(img_abs, img * 2000.0)
    # 50th percentile of ref = (0.5 + 1.0) / 2 = 0.75 -> k = 4000 / 0.75
    _, ref_abs = to_display_luminance(img, ref, peak_cd_m2=4000.0, percentile=50.0)
    np.testing.assert_allclose(ref_abs, ref * 4000.0 / 0.75)
    with pytest.raises(ValueError):
        to_display_luminance(img, np.zeros_like(ref))


def test_pu21_psnr_identical_inf_and_scale_mapping():
    target = RNG.uniform(0.01, 3.0, size=(6, 5, 3))
    assert pu21_psnr(target, target) == math.inf
    # relative input: mapping is by target's max, so a common factor does not change the score
    pred = target * RNG.uniform(0.8, 1.2, size=target.shape)
    assert pu21_psnr(7.0 * pred, 7.0 * target) == pytest.approx(pu21_psnr(pred, target), rel=1e-12)


def test_pu21_psnr_per_channel_peak_256_and_mask():
    # absolute cd/m^2 (peak_cd_m2=None): target 1 cd/m^2, pred 100 cd/m^2 at one of 4 pixels,
    # in the red channel only.
    target = np.ones((2, 2, 3))
    pred = target.copy()
    pred[0, 0, 0] = 100.0
    d = 256.3838973127 - 36.5439111394  # PU(100) - PU(1) = 219.8399861733
    # one of 12 elements differs: MSE = d^2 / 12 -> 10*log10(256^2 * 12 / d^2) = 12.1138 dB
    expected_all = 10 * math.log10(256.0 ** 2 * 12 / d ** 2)
    assert pu21_psnr(pred, target, peak_cd_m2=None) == pytest.approx(expected_all, abs=1e-8)
    mask = np.array([[True, False], [False, False]])
    # inside the mask one of 3 elements differs: MSE = d^2 / 3 -> 6.0932 dB
    expected_mask = 10 * math.log10(256.0 ** 2 * 3 / d ** 2)
    assert pu21_psnr(pred, target, peak_cd_m2=None, mask=mask) == pytest.approx(
        expected_mask, abs=1e-8)
    assert pu21_psnr(pred, target, peak_cd_m2=None, mask=~mask) == math.inf


def test_match_scale_recovers_factor():
    target = RNG.uniform(0.01, 5.0, size=(8, 8, 3))
    scaled, s = match_scale(target / 3.7, target)
    assert s == pytest.approx(3.7, rel=1e-12)
    np.testing.assert_allclose(scaled, target, rtol=1e-12)
    # robust: a quarter of the pixels are wrong (outside the mask, or outvoted by the median)
    pred = target / 3.7
    pred[:2] *= 50.0
    mask = np.ones((8, 8), bool)
    mask[:2] = False
    assert match_scale(pred, target, mask=mask)[1] == pytest.approx(3.7, rel=1e-12)
    assert match_scale(pred, target)[1] == pytest.approx(3.7, rel=1e-12)
    with pytest.raises(ValueError):
        match_scale(np.zeros((2, 2)), np.ones((2, 2)))


def test_log_psnr_known_case():
    target = np.geomspace(1e-3, 1.0, 24).reshape(4, 6)
    assert log_psnr(target, target) == math.inf
    # one decade too bright everywhere (no clamping): log10 error 1 -> MSE 1,
    # peak = -log10(1e-5) = 5 decades -> 20*log10(5) = 13.9794 dB
    assert log_psnr(10.0 * target, target) == pytest.approx(20 * math.log10(5.0), abs=1e-9)
    # invariant to a common scale factor
    assert log_psnr(123.0 * target, 12.3 * target) == pytest.approx(13.9794, abs=1e-4)
    # values below floor * max(target) are clamped, so they compare equal
    dark = np.array([1.0, 1e-7, 0.0])
    assert log_psnr(np.array([1.0, 0.0, 1e-9]), dark) == math.inf


def test_overexposed_mask():
    ldr = np.zeros((2, 2, 3))
    ldr[0, 0] = [1.0, 0.2, 0.2]  # one saturated channel is enough
    ldr[0, 1] = [249 / 255, 0.0, 0.0]  # exactly the threshold
    ldr[1, 0] = [248 / 255] * 3
    expected = np.array([[True, True], [False, False]])
    np.testing.assert_array_equal(overexposed_mask(ldr), expected)
    np.testing.assert_array_equal(overexposed_mask(np.round(ldr * 255).astype(np.uint8)), expected)
    np.testing.assert_array_equal(overexposed_mask(ldr[..., 0]), expected)
