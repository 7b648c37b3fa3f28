"""A camera's inverse response fitted to aligned exposure stacks, and scored on frames the fit did not see.

Three methods: Debevec and Robertson (OpenCV) and a monotone fit in the EMoR basis
(:func:`fit_curves`); each gives one curve shared by R, G, B and one per channel, [3, 1024]
inverse curves (:mod:`hdr_keras.crf`: 0 at 0, 1 at 1, non-decreasing). A curve is judged by how well
it predicts a frame from its nearest exposure through the exposure ratio (:func:`predict_frame`),
on frames held out of the fit (:func:`held_out_errors`), in 8-bit values / 255.
"""

import cv2
import numpy as np

from hdr_keras import crf

METHODS = ("debevec", "robertson", "emor")
WELL_EXPOSED = (5, 250)
"""8-bit values (inclusive) that the fits and the held-out error use; outside, noise or clipping."""
TRUSTED_TOP = 240
"""Highest 8-bit value whose fitted response is trusted; the curve above is extrapolated."""
DEBEVEC_SAMPLES = 100
DEBEVEC_LAMBDA = 10.0
ROBERTSON_LONG_SIDE = 256
"""Robertson runs on every pixel; this smaller working size keeps it as fast as the others."""
MAX_HELD_OUT = 4
"""Frames per stack whose prediction measures the held-out error (spread over the exposures)."""
MAX_FIT_FRAMES = 7
"""The fits use at most this many frames of a stack, spread over the exposures; the others are held out."""
EMOR_BASIS = 11
EMOR_ITERATIONS = 6
EMOR_SMOOTHNESS = 10.0
"""Weight of the second-difference penalty of the EMoR fit (real stacks of few frames need it)."""
EMOR_PAIRS = 2
"""The EMoR fit pairs each frame with this many next longer exposures."""


def _observed_range(stacks):
    """The well-exposed 8-bit values that the frames of ``stacks`` (uint8 arrays) hold: ``(lowest,
    highest)`` within :data:`WELL_EXPOSED`."""
    lo, hi = WELL_EXPOSED
    counts = sum(np.bincount(np.asarray(images).ravel(), minlength=256) for images in stacks)[lo : hi + 1]
    seen = np.flatnonzero(counts >= max(1, counts.sum() // 20000))
    return (lo + int(seen[0]), lo + int(seen[-1])) if seen.size else (lo, hi)


def _response_curves(response, stacks):
    """A response [256, C] (relative irradiance of each 8-bit value, any scale) fitted to the frames
    of ``stacks`` (uint8 arrays) -> monotone inverse curves [C, 1024], 0 at 0 and 1 at 1.

    Only the values the frames hold well exposed (:func:`_observed_range`) are trusted, and at most
    up to :data:`TRUSTED_TOP` (downscaling blends clipped pixels into the values just below them):
    below them the curve runs straight to 0, above them it continues as the power law through its
    values at ``top - 24`` and ``top``, which is where ``g(1)`` (the normalisation) comes from.
    """
    lo, hi = _observed_range(stacks)
    top = max(min(hi, TRUSTED_TOP), lo + 24)
    values = np.arange(256, dtype=np.float64)
    curves = []
    for r in np.asarray(response, np.float64).reshape(256, -1).T:
        r = np.where(np.isfinite(r), r, 0.0)
        if r[top - 24] > 0 and r[top] > r[top - 24]:
            power = np.clip(np.log(r[top] / r[top - 24]) / np.log(top / (top - 24)), 0.5, 8.0)
        else:
            power = 1.0
        g = np.where(values < lo, r[lo] * values / lo, np.where(values > top, r[top] * (values / top) ** power, r))
        curves.append(np.interp(crf.GRID, values / 255.0, g))
    return crf.monotone_projection(np.stack(curves))


def _fit_debevec(images, times):
    calibrator = cv2.createCalibrateDebevec(samples=DEBEVEC_SAMPLES, lambda_=DEBEVEC_LAMBDA, random=False)
    return _response_curves(calibrator.process(list(images), np.asarray(times, np.float32)), [images])


def _fit_robertson(images, times):
    h, w = images.shape[1:3]
    if max(h, w) > ROBERTSON_LONG_SIDE:
        scale = ROBERTSON_LONG_SIDE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        images = np.stack([cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in images])
    response = cv2.createCalibrateRobertson().process(list(images), np.asarray(times, np.float32))
    return _response_curves(response, [images])


def _emor_basis():
    """The inverse EMoR mean and basis at the 8-bit values: [1 + K, 256]."""
    basis = crf.inverse_basis_asset()[: 1 + EMOR_BASIS].astype(np.float64)
    return np.stack([np.interp(np.arange(256) / 255.0, crf.GRID, b) for b in basis])


def pair_histograms(stacks):
    """Joint histograms of well-exposed pixel pairs: ``{ratio: int64 [3, 256 * 256]}``.

    For every frame ``a`` and the next :data:`EMOR_PAIRS` longer frames ``b`` of a stack, the pixels
    well exposed in both are counted per channel at ``va * 256 + vb``, pooled over pairs with the
    same exposure ratio ``t_b / t_a`` (to 3 digits).
    """
    lo, hi = WELL_EXPOSED
    table = {}
    for images, times in stacks:
        well = (images >= lo) & (images <= hi)
        for a in range(len(times)):
            for b in range(a + 1, min(a + 1 + EMOR_PAIRS, len(times))):
                ratio = round(float(times[b] / times[a]), 3)
                if ratio <= 1.0:
                    continue
                hist = table.setdefault(ratio, np.zeros((3, 65536), np.int64))
                keep = well[a] & well[b]
                for c in range(3):
                    pairs = images[a][..., c][keep[..., c]].astype(np.int64) * 256 + images[b][..., c][keep[..., c]]
                    hist[c] += np.bincount(pairs, minlength=65536)
    return table


def _pair_counts(histograms, channels):
    """``(va, vb, ratio, count)`` of the pairs in ``histograms`` pooled over ``channels``; ``None`` if none."""
    va, vb, ratio, count = [], [], [], []
    for r, hist in histograms.items():
        pooled = hist[list(channels)].sum(axis=0)
        index = np.flatnonzero(pooled)
        va.append(index // 256)
        vb.append(index % 256)
        ratio.append(np.full(index.size, r))
        count.append(pooled[index])
    if not va or not sum(len(v) for v in va):
        return None
    return np.concatenate(va), np.concatenate(vb), np.concatenate(ratio), np.concatenate(count).astype(np.float64)


def _fit_emor_channels(histograms, channels):
    """EMoR response [256] (relative scale) that maps every well-exposed pair as ``g(vb) = r g(va)``.

    The curve is ``a g0 + sum_k w_k h_k`` (the EMoR mean scaled, so that the data need not pin
    ``g(1)``: values above the well-exposed range are never seen), held at 1 at the median observed
    value. Iteratively reweighted least squares on ``(a, w)``: the residual ``r g(va) - g(vb)`` is
    divided by its slope-weighted 8-bit noise ``sqrt((r g'(va))^2 + g'(vb)^2)``, i.e. measured in
    8-bit values like the held-out error; a second-difference penalty keeps it smooth, and steps
    that came out falling are pushed up (kept rising) in the next iterations.
    """
    at_values = _emor_basis()
    pairs = _pair_counts(histograms, channels)
    if pairs is None:
        return at_values[0]
    va, vb, r, count = pairs
    values, weights = np.concatenate([va, vb]), np.concatenate([count, count])
    order = np.argsort(values)
    middle = values[order][np.searchsorted(np.cumsum(weights[order]), count.sum())]  # the median value
    params = np.zeros(1 + EMOR_BASIS)
    params[0] = 1.0 / at_values[0, middle]
    steps = np.diff(at_values, axis=1).T
    falling = np.zeros(255, bool)
    for _ in range(EMOR_ITERATIONS):
        g = params @ at_values
        slope = np.gradient(g)
        slope = np.maximum(slope, 0.2 * np.median(slope[WELL_EXPOSED[0] : WELL_EXPOSED[1]]))
        w = np.sqrt(count) / np.sqrt((r * slope[va]) ** 2 + slope[vb] ** 2)
        design = (r[:, None] * at_values[:, va].T - at_values[:, vb].T) * w[:, None]
        anchor = np.sqrt(count.sum()) * 10.0 / slope[middle]
        smooth = np.sqrt(count.sum() / 256.0) * EMOR_SMOOTHNESS / np.median(slope)
        falling |= steps @ params < 0  # held non-decreasing where the curve fell (an active set)
        design = np.vstack([design, anchor * at_values[:, middle], smooth * np.diff(at_values, 2, axis=1).T,
                            anchor * steps[falling]])
        rise = np.full(falling.sum(), 0.1 * anchor * np.median(slope))
        target = np.concatenate([np.zeros(len(w)), [anchor], np.zeros(254), rise])
        params = np.linalg.solve(design.T @ design + 1e-9 * np.eye(len(params)), design.T @ target)
    return params @ at_values


def fit_curves(method, stacks):
    """Inverse curves fitted by ``method`` to ``stacks``: ``{"shared": [3, 1024], "per_channel": [3, 1024]}``
    (the shared curve repeated on the three rows).

    ``stacks``: ``[(uint8 images [E, h, w, 3], times [E])]``, frames aligned. Debevec and
    Robertson (OpenCV) fit each stack and channel; their curves are averaged over stacks (weighted by
    frames), and over channels for the shared curve. The EMoR fit pools all stacks, and the
    channels for the shared curve.
    """
    stacks = [(images, times) for images, times in stacks if len(images) >= 2]
    if method == "emor":
        frames, histograms = [images for images, _ in stacks], pair_histograms(stacks)
        shared = _response_curves(_fit_emor_channels(histograms, (0, 1, 2))[:, None], frames)[0]
        per_channel = _response_curves(
            np.stack([_fit_emor_channels(histograms, (c,)) for c in range(3)], axis=1), frames
        )
    else:
        fit = {"debevec": _fit_debevec, "robertson": _fit_robertson}[method]
        per_channel = np.average([fit(images, times) for images, times in stacks], axis=0,
                                 weights=[len(t) for _, t in stacks])
        shared = crf.monotone_projection(per_channel.mean(axis=0))
    return {"shared": np.repeat(shared[None], 3, axis=0), "per_channel": per_channel}


def predict_frame(curves, source, ratio):
    """Frame ``source`` (uint8 [h, w, 3]) re-exposed by ``ratio`` through inverse curves [3, 1024]:
    ``F(ratio * g(source))`` per channel, float [h, w, 3] in [0, 1] (``F = g^-1``, clipped at 1)."""
    forward = crf.invert_curve(curves)
    out = np.empty(source.shape, np.float64)
    for c in range(3):
        g = np.interp(np.arange(256) / 255.0, crf.GRID, curves[c])
        out[..., c] = np.interp(np.minimum(ratio * g, 1.0), crf.GRID, forward[c])[source[..., c]]
    return out


def _nearest(times, frame, candidates):
    """The frame among ``candidates`` nearest in exposure to ``frame`` (the longer one on a tie)."""
    return min(candidates, key=lambda e: (abs(np.log(times[e] / times[frame])), -times[e]))


def frame_error(curves, images, times, source, target):
    """Squared error sum and pixel count of frame ``target`` predicted from ``source`` through
    ``curves`` (8-bit values / 255), on the pixels well exposed in both."""
    lo, hi = WELL_EXPOSED
    x, y = images[source], images[target]
    keep = (x >= lo) & (x <= hi) & (y >= lo) & (y <= hi)
    if not keep.any():
        return 0.0, 0
    diff = predict_frame(curves, x, times[target] / times[source])[keep] - y[keep] / 255.0
    return float(np.sum(diff**2)), int(keep.sum())


def _rmse(parts):
    total = sum(n for _, n in parts)
    return float(np.sqrt(sum(s for s, _ in parts) / total)) if total else float("nan")


def _spread(count, number):
    """``number`` indices of ``range(count)`` spread evenly, first and last included (all if fewer)."""
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, min(count, number))})


def fitted_frames(times):
    """The frames of a stack that the fits use: all, or :data:`MAX_FIT_FRAMES` spread over the exposures."""
    return _spread(len(times), MAX_FIT_FRAMES)


def held_out_frames(times):
    """The frames of a stack whose prediction measures the held-out error.

    A stack of more than :data:`MAX_FIT_FRAMES` frames: up to :data:`MAX_HELD_OUT` of the frames
    the fits do not use (no refit needed). Else, of 3 frames or more: up to :data:`MAX_HELD_OUT`
    frames spread over the exposures, each left out of a refit in turn. None of a 2-frame stack.
    """
    count = len(times)
    spare = sorted(set(range(count)) - set(fitted_frames(times)))
    if spare:
        return [spare[i] for i in _spread(len(spare), MAX_HELD_OUT)]
    return _spread(count, MAX_HELD_OUT) if count >= 3 else []


def held_out_errors(method, stacks, full, pool):
    """Held-out RMSE of ``method``: ``{"shared": rmse, "per_channel": rmse}``.

    ``stacks``: all frames; ``full``: the method's curves fitted to the :func:`fitted_frames` of
    every stack. Each frame of :func:`held_out_frames` is predicted from its nearest fitted exposure,
    through ``full`` when the fits did not use it, else through curves refitted without it (its
    stack's other fitted frames, and the other stacks); the errors are pooled over all those pixels.
    ``nan`` where no frame can be held out.
    """
    fitted = [(images[fitted_frames(times)], times[fitted_frames(times)]) for images, times in stacks]
    jobs = [(s, e) for s, (_, times) in enumerate(stacks) for e in held_out_frames(times)]

    def one(job):
        s, e = job
        images, times = stacks[s]
        used = fitted_frames(times)
        curves = full
        if e in used:
            keep = [i for i in range(len(used)) if used[i] != e]
            curves = fit_curves(method, fitted[:s] + [(fitted[s][0][keep], fitted[s][1][keep])] + fitted[s + 1:])
        source = _nearest(times, e, [i for i in used if i != e])
        return {mode: frame_error(curves[mode], images, times, source, e) for mode in curves}

    results = list(pool.map(one, jobs))
    return {mode: _rmse([r[mode] for r in results]) for mode in ("shared", "per_channel")}


def in_sample_errors(curves, stacks):
    """RMSE of every frame predicted from its nearest exposure with curves fitted to all frames."""
    parts = {mode: [] for mode in curves}
    for images, times in stacks:
        for e in range(len(times)):
            source = _nearest(times, e, [i for i in range(len(times)) if i != e])
            for mode in curves:
                parts[mode].append(frame_error(curves[mode], images, times, source, e))
    return {mode: _rmse(p) for mode, p in parts.items()}
