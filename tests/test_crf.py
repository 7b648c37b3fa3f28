"""Tests for hdr_keras.crf (NumPy curves, docs/design.md#curves) and the MonotonicCRF layer against it.

Reads the EMoR tables and DoRF curves from ``crf.DEFAULT_CRF_DIR`` (``../shared/data/crf``).
"""

import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hdr_keras import crf

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def emor():
    return crf.load_emor()


@pytest.fixture(scope="module")
def dorf():
    return crf.load_dorf()


def _assert_valid_curves(curves, atol=0.0):
    """Non-decreasing, exactly 0 at 0 and 1 at 1 (up to ``atol``), values in [0, 1]."""
    curves = np.asarray(curves, np.float64)
    assert curves.shape[-1] == crf.NUM_SAMPLES
    assert np.all(np.diff(curves, axis=-1) >= 0.0)
    np.testing.assert_allclose(curves[..., 0], 0.0, atol=atol, rtol=0)
    np.testing.assert_allclose(curves[..., -1], 1.0, atol=atol, rtol=0)
    assert curves.min() >= -atol and curves.max() <= 1.0 + atol


def _compose(outer, inner):
    """``outer(inner(x))`` on the grid, both curves [M, 1024] applied by linear interpolation."""
    return np.stack([np.interp(np.interp(crf.GRID, crf.GRID, g), crf.GRID, f) for f, g in zip(outer, inner)])


# ----------------------------------------------------------------------------- loading


def test_load_emor_inverse_and_forward(emor):
    assert emor.mean.shape == (crf.NUM_SAMPLES,)
    assert emor.basis.shape == (25, crf.NUM_SAMPLES)
    # g0 is a curve from 0 to 1; the basis vectors vanish at both ends.
    assert emor.mean[0] == pytest.approx(0.0, abs=1e-9) and emor.mean[-1] == pytest.approx(1.0, abs=1e-9)
    assert np.all(np.diff(emor.mean) >= 0)
    np.testing.assert_allclose(emor.basis[:, [0, -1]], 0.0, atol=1e-6)
    forward = crf.load_emor(crf.DEFAULT_CRF_DIR, inverse=False)
    assert forward.mean.shape == (crf.NUM_SAMPLES,) and forward.basis.shape == (25, crf.NUM_SAMPLES)
    # f0 is a forward curve from 0 to 1 (the mean of the forward curves, not the inverse of g0).
    assert forward.mean[0] == pytest.approx(0.0, abs=1e-9) and forward.mean[-1] == pytest.approx(1.0, abs=1e-9)
    assert np.all(np.diff(forward.mean) >= 0)
    assert not np.allclose(forward.mean, emor.mean, atol=1e-2)


def test_load_dorf(dorf):
    assert dorf.forward.shape == (201, crf.NUM_SAMPLES)
    assert len(dorf.train_index) == 191 and len(dorf.test_index) == 10
    assert sorted(np.concatenate([dorf.train_index, dorf.test_index]).tolist()) == list(range(201))
    assert dorf.train.shape == (191, crf.NUM_SAMPLES) and dorf.test.shape == (10, crf.NUM_SAMPLES)
    _assert_valid_curves(dorf.forward, atol=1e-9)


def test_missing_crf_dir_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="invemor.txt"):
        crf.load_emor(tmp_path)
    with pytest.raises(FileNotFoundError, match="dorf_curves.npz"):
        crf.load_dorf(tmp_path)


# ------------------------------------------------------------------- EMoR representation


def test_emor_11_basis_reproduces_dorf_inverse_curves(emor, dorf):
    """docs/design.md#curves: the 11 vectors fit the 201 DoRF inverse curves to an RMSE of about 5e-4 (no projection)."""
    inverse = crf.invert_curve(dorf.forward)
    weights = emor.project(inverse, crf.NUM_BASIS)
    assert weights.shape == (201, crf.NUM_BASIS)
    rmse = np.sqrt(np.mean((emor.decode(weights) - inverse) ** 2))
    assert rmse < 1e-3
    # More basis vectors fit better; the mean curve alone is far off (docs/design.md#curves: ~0.074 on the test curves).
    rmse_25 = np.sqrt(np.mean((emor.decode(emor.project(inverse, 25)) - inverse) ** 2))
    assert rmse_25 < rmse
    per_curve_g0 = np.sqrt(np.mean((emor.mean - inverse[dorf.test_index]) ** 2, axis=1))
    assert 0.05 < per_curve_g0.mean() < 0.1


def test_asset_equals_script_output(tmp_path):
    """The committed asset is what scripts/make_emor_asset.py computes (run with np.save captured)."""
    out = tmp_path / "table.npy"
    wrapper = textwrap.dedent(
        f"""
        import runpy, sys
        import numpy as np
        real_save = np.save
        np.save = lambda path, array: real_save({str(out)!r}, array)
        sys.argv = ["make_emor_asset", "--crf_dir", {str(crf.DEFAULT_CRF_DIR)!r}]
        try:
            runpy.run_path({str(ROOT / "scripts" / "make_emor_asset.py")!r}, run_name="__main__")
        except SystemExit as exit:
            if exit.code not in (0, None):
                raise
        """
    )
    subprocess.run([sys.executable, "-c", wrapper], cwd=ROOT, check=True, capture_output=True, timeout=120)
    expected = np.load(out)
    asset = crf.inverse_basis_asset()
    assert asset.dtype == np.float32 and asset.shape == (crf.NUM_BASIS + 1, crf.NUM_SAMPLES)
    np.testing.assert_array_equal(asset, expected)
    # And it is g0 plus hinv(1..11) of the table.
    emor = crf.load_emor()
    np.testing.assert_array_equal(asset, np.concatenate([emor.mean[None], emor.basis[:11]]).astype(np.float32))


# ---------------------------------------------------------------- inversion, projection


def test_invert_curve_dorf(dorf):
    forward = dorf.forward
    inverse = crf.invert_curve(forward)
    assert inverse.shape == forward.shape
    _assert_valid_curves(inverse, atol=1e-12)
    np.testing.assert_allclose(_compose(forward, inverse), np.broadcast_to(crf.GRID, forward.shape), atol=1e-6)


def test_invert_curve_gamma_and_shapes():
    gamma = crf.GRID ** (1 / 2.2)
    inverse = crf.invert_curve(gamma)
    assert inverse.shape == (crf.NUM_SAMPLES,)
    np.testing.assert_allclose(inverse, crf.GRID**2.2, atol=2e-3)
    # Inverting twice gives back a strictly increasing curve; batch axes are kept.
    batch = np.stack([crf.GRID**p for p in (0.3, 0.5, 1.0, 2.0)]).reshape(2, 2, crf.NUM_SAMPLES)
    twice = crf.invert_curve(crf.invert_curve(batch))
    assert twice.shape == (2, 2, crf.NUM_SAMPLES)
    np.testing.assert_allclose(twice, batch, atol=2e-3)


def test_invert_curve_with_flat_stretch():
    """A curve with a flat stretch still inverts to a valid curve with F(G(x)) ~ x."""
    curve = np.clip(crf.GRID * 1.6 - 0.3, 0, 1)  # flat at 0 below 0.1875 and at 1 above 0.8125
    inverse = crf.invert_curve(curve)
    _assert_valid_curves(inverse, atol=1e-12)
    np.testing.assert_allclose(_compose(curve[None], inverse[None])[0], crf.GRID, atol=1e-6)


@pytest.mark.parametrize("scale", [0.0, 0.1, 1.0, 10.0, 1e3, 1e5])
def test_monotone_projection_random_and_extreme_weights(emor, scale):
    rng = np.random.default_rng(int(scale * 7) + 1)
    weights = rng.normal(size=(64, crf.NUM_BASIS)) * scale
    # Extreme single-coefficient weights too.
    weights = np.concatenate([weights, scale * np.eye(crf.NUM_BASIS), -scale * np.eye(crf.NUM_BASIS)])
    curves = crf.monotone_projection(emor.decode(weights))
    assert curves.shape == (len(weights), crf.NUM_SAMPLES)
    assert np.all(curves[:, 0] == 0.0)
    _assert_valid_curves(curves, atol=1e-12)


def test_monotone_projection_rule():
    """By hand: negative steps to 0, normalise, cumsum from 0 (paper eq. 3 shifts them instead)."""
    decreasing = 1.0 - crf.GRID  # all diffs negative -> none left: the identity
    flat = np.full(crf.NUM_SAMPLES, 0.3)
    valid = crf.GRID**2.2  # already valid: unchanged
    bumpy = crf.GRID + 0.05 * np.sin(40 * crf.GRID)
    out = crf.monotone_projection(np.stack([decreasing, flat, valid, bumpy]))
    _assert_valid_curves(out, atol=1e-12)
    np.testing.assert_allclose(out[2], valid, atol=1e-12)
    d = np.maximum(np.diff(bumpy), 0.0)
    np.testing.assert_allclose(out[3], np.concatenate([[0.0], np.cumsum(d / d.sum())]), atol=1e-12)
    np.testing.assert_allclose(out[0], crf.GRID, atol=1e-12)
    assert np.isfinite(out).all()


def test_monotone_projection_keeps_the_toe_of_a_curve_with_one_dip():
    # A linear toe (sRGB: x / 12.92) and one small dip near white: the toe must stay within a few
    # percent, not be lifted by the dip as paper eq. 3 would (a constant added to every step).
    curve = crf.srgb_inverse_curve().astype(np.float64)
    curve[900:905] -= np.linspace(0, 0.002, 5)
    out = crf.monotone_projection(curve)
    np.testing.assert_allclose(out[13:256], curve[13:256], rtol=0.02)


def test_monotonic_crf_layer_matches_numpy_projection():
    from hdr_keras.layers import MonotonicCRF

    table = crf.inverse_basis_asset().astype(np.float64)
    rng = np.random.default_rng(3)
    weights = np.concatenate([rng.normal(size=(16, crf.NUM_BASIS)), 5.0 * rng.normal(size=(4, crf.NUM_BASIS))])
    weights = weights.astype(np.float32)
    layer = MonotonicCRF()
    got = np.asarray(layer(weights))
    expected = crf.monotone_projection(table[0] + weights.astype(np.float64) @ table[1:])
    assert got.shape == (len(weights), crf.NUM_SAMPLES)
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=0)
    # The weights it holds are the asset, non-trainable: 1024 + 11 * 1024 numbers.
    assert not layer.trainable_weights
    assert sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights) == 1024 + 11 * 1024


@pytest.mark.parametrize("scale", [0.0, 1.0, 100.0, 1e4])
def test_monotonic_crf_layer_valid_for_extreme_weights(scale):
    from hdr_keras.layers import MonotonicCRF

    rng = np.random.default_rng(5)
    weights = np.concatenate([rng.normal(size=(8, crf.NUM_BASIS)) * scale, scale * np.eye(crf.NUM_BASIS)])
    curves = np.asarray(MonotonicCRF()(weights.astype(np.float32)))
    assert np.isfinite(curves).all()
    assert np.all(curves[:, 0] == 0.0) and np.all(curves[:, -1] == 1.0)
    assert np.all(np.diff(curves, axis=-1) >= 0.0)


# ------------------------------------------------------------------ training curves


def test_training_curves(dorf):
    forward, inverse = crf.training_curves(num_emor=200, seed=1, curve_sets=("dorf",))
    assert forward.shape == inverse.shape == (191 + 200, crf.NUM_SAMPLES)
    assert forward.dtype == inverse.dtype == np.float32
    for curves in (forward, inverse):
        assert np.all(np.diff(curves, axis=-1) >= 0)
        assert np.all(curves[:, 0] == 0.0) and np.all(curves[:, -1] == 1.0)
    # The first 191 are the DoRF training curves and their inverses: F(G(x)) ~ x (F may be flat
    # where it saturates, G may not). The mixtures are inverse curves G (flat where the projection
    # zeroed a step) with F = invert_curve(G): G(F(y)) ~ y.
    np.testing.assert_allclose(forward[:191], dorf.train, atol=1e-6)
    grid = np.broadcast_to(crf.GRID, forward.shape)
    np.testing.assert_allclose(_compose(forward[:191], inverse[:191]), grid[:191], atol=1e-5)
    np.testing.assert_allclose(_compose(inverse[191:], forward[191:]), grid[191:], atol=1e-5)
    # Seeded: same seed, same curves; another seed, other mixtures.
    again = crf.training_curves(num_emor=200, seed=1, curve_sets=("dorf",))
    np.testing.assert_array_equal(again[1], inverse)
    other = crf.training_curves(num_emor=200, seed=2, curve_sets=("dorf",))
    np.testing.assert_array_equal(other[1][:191], inverse[:191])
    assert not np.allclose(other[1][191:], inverse[191:])
    # The default: DoRF then modern training curves, no mixtures; modern_repeat lists the modern ones again.
    default = crf.training_curves()
    assert default[0].shape == (191 + 55, crf.NUM_SAMPLES)
    np.testing.assert_allclose(default[0][:191], dorf.train, atol=1e-6)
    assert crf.training_curves(modern_repeat=3)[0].shape == (191 + 3 * 55, crf.NUM_SAMPLES)


def test_modern_curves_load_with_their_split():
    modern = crf.load_modern()
    assert modern.forward.shape == (67, crf.NUM_SAMPLES)
    assert len(modern.train_index) == 55 and len(modern.test_index) == 12
    assert not set(modern.train_index) & set(modern.test_index)
    test = crf.curve_table("modern", "test")
    assert len(test) == 12 and "rec709_oetf" in test.names and set(test.families) <= {"standard", "maker", "tonemap", "s-curve"}
    for curves in (test.forward, test.inverse):
        assert np.all(np.diff(curves, axis=-1) >= 0)
        assert np.all(curves[:, 0] == 0.0) and np.all(curves[:, -1] == 1.0)
    np.testing.assert_allclose(_compose(test.forward, test.inverse), np.broadcast_to(crf.GRID, test.forward.shape), atol=2e-3)
    with pytest.raises(ValueError, match="unknown curve set"):
        crf.curve_table("film", "test")


def test_emor_k11_represents_the_modern_inverse_curves(emor):
    # Why the EMoR K=11 parametrisation stays: its least-squares fit of every modern inverse
    # curve is far below the RMSE targets (measured: mean 0.0017, max 0.0071 on the 55 training
    # curves; mean 0.0008, max 0.0016 on the 12 test curves; DoRF: mean 0.0005).
    for split in ("train", "test"):
        inverse = crf.curve_table("modern", split).inverse
        fit = emor.decode(emor.project(inverse, crf.NUM_BASIS))
        rmse = np.sqrt(np.mean((fit - inverse) ** 2, axis=1))
        assert rmse.max() < 0.008 and rmse.mean() < 0.002


def test_inverse_srgb_curve():
    curve = crf.srgb_inverse_curve()
    assert curve[0] == 0.0 and abs(curve[-1] - 1.0) < 1e-6 and np.all(np.diff(curve) > 0)
    x = crf.GRID[512]
    assert abs(curve[512] - ((x + 0.055) / 1.055) ** 2.4) < 1e-6


def test_test_curves_and_weight_std(dorf, emor):
    forward, inverse = crf.test_curves()
    assert forward.shape == inverse.shape == (10, crf.NUM_SAMPLES)
    np.testing.assert_allclose(forward, dorf.test, atol=1e-6)
    std = crf.dorf_weight_std(dorf, emor)
    assert std.shape == (crf.NUM_BASIS,) and np.all(std > 0)
