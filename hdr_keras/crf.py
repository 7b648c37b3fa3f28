"""Camera response curves: EMoR tables, DoRF curves, inversion, projection, sampling.

Conventions (docs/design.md#curves): a curve is 1024 float samples on the grid ``x_i = i / 1023``.
A forward curve ``F`` maps irradiance to brightness, an inverse curve ``G = F^-1`` maps
brightness back to irradiance; both are non-decreasing with ``F(0) = 0`` and ``F(1) = 1``.
Everything here is NumPy; the TensorFlow side lives in :mod:`hdr_keras.camera` and
:mod:`hdr_keras.layers.curve`.
"""

import dataclasses
import pathlib
import re

import numpy as np

from hdr_keras.paths import DEFAULT_CRF_DIR, MISSING_HINT

NUM_SAMPLES = 1024
NUM_BASIS = 11
GRID = np.linspace(0.0, 1.0, NUM_SAMPLES)
_ASSET = pathlib.Path(__file__).resolve().parent / "assets" / "invemor_k11.npy"


def _read_emor_table(path):
    """Parses an EMoR text table into ``{name: float64[1024]}`` (names as in the file)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: EMoR table not found; {MISSING_HINT} (--crf_dir)")
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


def _read_curves(crf_dir, name, what):
    """``(npz data, forward curves [M, 1024] on GRID)`` of a DoRF-layout file (``irradiance``, ``brightness``)."""
    path = pathlib.Path(crf_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found; {MISSING_HINT} (--crf_dir)")
    data = np.load(path)
    forward = np.stack([np.interp(GRID, irr, bri) for irr, bri in zip(data["irradiance"], data["brightness"])])
    return data, forward


def load_dorf(crf_dir=DEFAULT_CRF_DIR):
    """Loads ``dorf_curves.npz`` and resamples each brightness curve onto :data:`GRID`."""
    data, forward = _read_curves(crf_dir, "dorf_curves.npz", "DoRF curves")
    return Dorf(forward=forward, train_index=data["train_index"], test_index=data["test_index"])


@dataclasses.dataclass(frozen=True)
class CurveTable:
    """Named camera curves: ``forward`` and ``inverse`` float32 [M, 1024], ``names`` and ``families`` [M]."""

    forward: np.ndarray
    inverse: np.ndarray
    names: tuple
    families: tuple

    @classmethod
    def from_forward(cls, forward, names, families):
        forward = np.asarray(forward, np.float64)
        return cls(forward.astype(np.float32), invert_curve(forward).astype(np.float32), tuple(names), tuple(families))

    def __len__(self):
        return len(self.forward)

    def concat(self, other):
        """This table's curves followed by ``other``'s."""
        return CurveTable(
            np.concatenate([self.forward, other.forward]),
            np.concatenate([self.inverse, other.inverse]),
            self.names + other.names,
            self.families + other.families,
        )


@dataclasses.dataclass(frozen=True)
class Modern:
    """Modern camera and display curves (``modern_curves.npz``) on :data:`GRID`, split by family.

    ``forward`` [M, 1024]; ``names`` and ``families`` (``standard``, ``maker``, ``tonemap``,
    ``s-curve``) [M]; the test split holds whole groups out (an unseen maker, a tone curve, a
    standard encoding).
    """

    forward: np.ndarray
    names: np.ndarray
    families: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray

    def table(self, split):
        index = self.train_index if split == "train" else self.test_index
        return CurveTable.from_forward(self.forward[index], self.names[index], self.families[index])


def load_modern(crf_dir=DEFAULT_CRF_DIR):
    """Loads ``modern_curves.npz`` (DoRF layout: ``irradiance``, ``brightness``, ``names``, ``family``)."""
    data, forward = _read_curves(crf_dir, "modern_curves.npz", "modern camera curves")
    return Modern(
        forward=forward,
        names=np.asarray(data["names"]).astype(str),
        families=np.asarray(data["family"]).astype(str),
        train_index=data["train_index"],
        test_index=data["test_index"],
    )


CURVE_SETS = ("dorf", "modern")
"""Curve sets with a train/test split: the 201 DoRF curves and the modern camera / display curves."""


def curve_table(curve_set, split, crf_dir=DEFAULT_CRF_DIR):
    """The ``train`` or ``test`` curves of ``curve_set`` (one of :data:`CURVE_SETS`) as a :class:`CurveTable`."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if curve_set == "dorf":
        dorf = load_dorf(crf_dir)
        index = dorf.train_index if split == "train" else dorf.test_index
        return CurveTable.from_forward(dorf.forward[index], [f"dorf_{i}" for i in index], ["dorf"] * len(index))
    if curve_set == "modern":
        return load_modern(crf_dir).table(split)
    raise ValueError(f"unknown curve set {curve_set!r}; known: {', '.join(CURVE_SETS)}")


def srgb_inverse_curve():
    """The inverse sRGB OETF (IEC 61966-2-1) sampled on :data:`GRID`: float32 [1024]."""
    x = GRID
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


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
    """Monotone projection of curves [..., 1024]: non-decreasing, exactly 0 at 0 and 1 at 1.

    Negative steps are set to 0, then the steps are normalised to sum to 1 (docs/design.md#deviations).
    Paper eq. 3 instead subtracts the most negative step from every step: one small dip anywhere
    then adds a constant slope everywhere, which lifts the toe of the curve by whole stops where
    its true steps are tiny (the EMoR-11 fit of the modern test curves: 0.076 RMSE and 0.87 stops
    in the shadows after eq. 3, 0.001 and 0.05 after this projection).
    """
    diffs = np.maximum(np.diff(np.asarray(curves, np.float64), axis=-1), 0.0)
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


def training_curves(crf_dir=DEFAULT_CRF_DIR, num_emor=0, seed=0, curve_sets=CURVE_SETS, modern_repeat=1):
    """Forward and inverse training curves, each float32 [M, 1024].

    The training split of each set in ``curve_sets`` (DoRF: 191 curves; modern: 55, listed
    ``modern_repeat`` times so that a family of few curves is drawn as often as wanted), then
    ``num_emor`` random monotone EMoR mixtures at the DoRF spread (seeded).
    """
    if not curve_sets:
        raise ValueError("no training curve set given")
    tables = []
    for name in curve_sets:
        table = curve_table(name, "train", crf_dir)
        tables += [table] * (modern_repeat if name == "modern" else 1)
    forward = np.concatenate([t.forward for t in tables]).astype(np.float64)
    inverse = np.concatenate([t.inverse for t in tables]).astype(np.float64)
    if num_emor:
        dorf, emor = load_dorf(crf_dir), load_emor(crf_dir)
        rng = np.random.default_rng(seed)
        mixtures = sample_emor_inverse_curves(rng, num_emor, emor, dorf_weight_std(dorf, emor))
        forward = np.concatenate([forward, invert_curve(mixtures)])
        inverse = np.concatenate([inverse, mixtures])
    return forward.astype(np.float32), inverse.astype(np.float32)


def test_curves(crf_dir=DEFAULT_CRF_DIR, curve_set="dorf"):
    """The test curves of ``curve_set``: forward and inverse, each float32 [M, 1024] (DoRF: 10)."""
    table = curve_table(curve_set, "test", crf_dir)
    return table.forward, table.inverse
