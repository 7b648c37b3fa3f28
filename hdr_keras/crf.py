"""Camera response curves: EMoR tables, DoRF curves, inversion, projection, sampling.

Conventions (DESIGN §2): a curve is 1024 float samples on the grid ``x_i = i / 1023``.
A forward curve ``F`` maps irradiance to brightness, an inverse curve ``G = F^-1`` maps
brightness back to irradiance; both are non-decreasing with ``F(0) = 0`` and ``F(1) = 1``.
Everything here is NumPy; the TensorFlow side lives in :mod:`hdr_keras.camera` and
:mod:`hdr_keras.layers.curve`.
"""

import dataclasses
import pathlib
import re

import numpy as np

from hdr_keras.paths import DEFAULT_CRF_DIR

NUM_SAMPLES = 1024
NUM_BASIS = 11
GRID = np.linspace(0.0, 1.0, NUM_SAMPLES)
_ASSET = pathlib.Path(__file__).resolve().parent / "assets" / "invemor_k11.npy"


def _read_emor_table(path):
    """Parses an EMoR text table into ``{name: float64[1024]}`` (names as in the file)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: EMoR table not found (set --crf_dir to the folder holding it)")
    blocks, name = {}, None
    for line in path.read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9()_]+)\s*=", line)
        if match:
            name = match.group(1)
            blocks[name] = []
        elif line.strip():
            if name is None:
                raise ValueError(f"{path}: numbers before the first block name")
            blocks[name].extend(float(v) for v in line.split())
    for key, values in blocks.items():
        if len(values) != NUM_SAMPLES:
            raise ValueError(f"{path}: block {key!r} has {len(values)} numbers, expected {NUM_SAMPLES}")
    return {key: np.asarray(values) for key, values in blocks.items()}


@dataclasses.dataclass(frozen=True)
class Emor:
    """An EMoR model: ``curve ~ mean + weights @ basis``; ``basis`` is [25, 1024]."""

    mean: np.ndarray
    basis: np.ndarray

    def decode(self, weights):
        """EMoR weights [..., K] -> curves [..., 1024] (K first basis vectors)."""
        weights = np.asarray(weights, np.float64)
        return self.mean + weights @ self.basis[: weights.shape[-1]]

    def project(self, curves, num_basis=NUM_BASIS):
        """Least-squares EMoR weights [..., K] of curves [..., 1024]."""
        basis = self.basis[:num_basis]
        weights, *_ = np.linalg.lstsq(basis.T, (np.asarray(curves) - self.mean).T, rcond=None)
        return weights.T


def load_emor(crf_dir=DEFAULT_CRF_DIR, inverse=True):
    """Loads ``invemor.txt`` (inverse curves, ``g0`` and ``hinv(k)``) or ``emor.txt`` (``f0``, ``h(k)``)."""
    crf_dir = pathlib.Path(crf_dir)
    if inverse:
        table = _read_emor_table(crf_dir / "invemor.txt")
        mean, prefix = table["g0"], "hinv"
    else:
        table = _read_emor_table(crf_dir / "emor.txt")
        mean, prefix = table["f0"], "h"
    basis = np.stack([table[f"{prefix}({k})"] for k in range(1, 26)])
    return Emor(mean=mean, basis=basis)


@dataclasses.dataclass(frozen=True)
class Dorf:
    """The 201 DoRF forward curves on the uniform grid, with the authors' train/test split."""

    forward: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray

    @property
    def train(self):
        return self.forward[self.train_index]

    @property
    def test(self):
        return self.forward[self.test_index]


def load_dorf(crf_dir=DEFAULT_CRF_DIR):
    """Loads ``dorf_curves.npz`` and resamples each brightness curve onto :data:`GRID`."""
    path = pathlib.Path(crf_dir) / "dorf_curves.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: DoRF curves not found (set --crf_dir to the folder holding them)")
    data = np.load(path)
    forward = np.stack([np.interp(GRID, irr, bri) for irr, bri in zip(data["irradiance"], data["brightness"])])
    return Dorf(forward=forward, train_index=data["train_index"], test_index=data["test_index"])


def invert_curve(curves):
    """Inverts monotone curves [..., 1024] on :data:`GRID`; returns [..., 1024] in [0, 1].

    Flat stretches are broken by an infinitesimal ramp so that the inverse is single-valued.
    """
    curves = np.asarray(curves, np.float64)
    flat = curves.reshape(-1, NUM_SAMPLES)
    out = np.empty_like(flat)
    ramp = GRID * 1e-9
    for i, curve in enumerate(flat):
        xp = np.maximum.accumulate(np.clip(curve, 0.0, 1.0)) + ramp
        out[i] = np.interp(GRID, (xp - xp[0]) / (xp[-1] - xp[0]), GRID)
    return out.reshape(curves.shape)


def monotone_projection(curves):
    """Paper eq. 3 on curves [..., 1024]: non-decreasing, exactly 0 at 0 and 1 at 1."""
    diffs = np.diff(np.asarray(curves, np.float64), axis=-1)
    diffs = diffs - np.minimum(diffs.min(axis=-1, keepdims=True), 0.0)
    total = diffs.sum(axis=-1, keepdims=True)
    diffs = np.where(total > 0, diffs / np.where(total > 0, total, 1.0), 1.0 / diffs.shape[-1])
    zeros = np.zeros(diffs.shape[:-1] + (1,))
    return np.minimum(np.concatenate([zeros, np.cumsum(diffs, axis=-1)], axis=-1), 1.0)


def inverse_basis_asset():
    """The committed ``float32[12, 1024]`` array: row 0 is ``g0``, rows 1..11 are ``hinv(1..11)``.

    Built by ``scripts/make_emor_asset.py`` from ``invemor.txt``, so that a model runs where
    ``../shared`` is absent.
    """
    return np.load(_ASSET)


def sample_emor_inverse_curves(rng, count, emor, weight_std):
    """Random inverse curves [count, 1024] from Gaussian EMoR weights, kept only when valid.

    ``weight_std`` [K] sets the spread per coefficient (see :func:`dorf_weight_std`), so that the
    mixtures look like real cameras. Draws whose curve is not non-decreasing within [0, 1] are
    rejected (about 3 in 4 at the DoRF spread) rather than projected, which would distort them.
    """
    curves = []
    while sum(len(c) for c in curves) < count:
        drawn = emor.decode(rng.normal(size=(4 * count, len(weight_std))) * np.asarray(weight_std))
        valid = (np.diff(drawn, axis=-1).min(axis=-1) >= 0) & (drawn.min(axis=-1) >= 0) & (drawn.max(axis=-1) <= 1)
        curves.append(drawn[valid])
    return np.clip(np.concatenate(curves)[:count], 0.0, 1.0)


def dorf_weight_std(dorf, emor, num_basis=NUM_BASIS):
    """Standard deviation [num_basis] of the EMoR weights of the DoRF training inverse curves."""
    return emor.project(invert_curve(dorf.train), num_basis).std(axis=0)


def training_curves(crf_dir=DEFAULT_CRF_DIR, num_emor=191, seed=0):
    """Forward and inverse training curves, each float32 [191 + num_emor, 1024].

    The 191 DoRF training curves, then ``num_emor`` random monotone EMoR mixtures (seeded).
    """
    dorf, emor = load_dorf(crf_dir), load_emor(crf_dir)
    inverse = invert_curve(dorf.train)
    if num_emor:
        rng = np.random.default_rng(seed)
        mixtures = sample_emor_inverse_curves(rng, num_emor, emor, dorf_weight_std(dorf, emor))
        inverse = np.concatenate([inverse, mixtures])
    forward = np.concatenate([dorf.train, invert_curve(inverse[len(dorf.train):])])
    return forward.astype(np.float32), inverse.astype(np.float32)


def test_curves(crf_dir=DEFAULT_CRF_DIR):
    """The 10 DoRF test curves: forward and inverse, each float32 [10, 1024]."""
    dorf = load_dorf(crf_dir)
    return dorf.test.astype(np.float32), invert_curve(dorf.test).astype(np.float32)
