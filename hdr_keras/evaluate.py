"""Evaluate a model on synthetic (HDR-Synth) and real-camera protocols, beside fixed-curve baselines.

A deterministic synthetic test set is rendered from real HDR images (docs/design.md#evaluation): every scene
(short side resized to ``size`` with ``cv2.INTER_AREA``, centre-cropped to ``size x size``,
normalised to mean 0.5 as in training) is exposed at ``t = 2^u`` for each stop ``u`` in
``exposures`` and passed through each test curve ``F`` of a curve set (the 10 DoRF test curves,
or the modern camera / display test curves) without noise: ``L = Q(F(C(H t)))`` (optionally
JPEG, 4:2:0). The model runs on every ``L`` and is scored, beside
fixed-curve baselines, on three tables (see ``docs/evaluate.md``):

* ``dequantization`` (paper Table 2): PSNR of the input ``L`` and of the Dequantization-Net's
  output ``D`` against the pre-quantisation image ``F(C(H t))``.
* ``curve`` (paper Table 3): RMSE of the inverse curve against the true ``F^-1`` and PSNR of the
  linear image (``g(D)`` for the model, ``g(L)`` for a baseline curve ``g``) against ``C(H t)``.
* ``hdr``: the final HDR against the unclipped ``H t`` after scale matching: PU21 PSNR, log PSNR
  and PU21 PSNR inside the over-exposed pixels of ``L``.

Baselines: inverse sRGB, inverse gamma 2.2 (``g(x) = x^2.2``), the EMoR mean curve ``g0`` and the
true inverse curve, each applied to ``L`` with no hallucination; ``model_true_curve`` is the model
given the true curve. Tables are also given per curve and per curve family.

:func:`evaluate_real` is the real-camera protocol: every single exposure of a hand-held photo
stack against the stack's merged HDR (:mod:`hdr_keras.stack`: MTB alignment, Debevec
calibration and merge). :func:`evaluate` / :func:`evaluate_real` are the library entry points
(tests, training scripts); :func:`add_arguments` / :func:`run` make the CLI subcommand.
"""

import argparse
import collections
import concurrent.futures
import json
import math
import pathlib
import sys
import time
import warnings

import cv2
import numpy as np

from hdr_keras import crf, io, metrics
from hdr_keras import stack as stack_lib
from hdr_keras.paths import DEFAULT_VAL_DIR, MISSING_HINT
from hdr_keras.precision import DTYPES
from hdr_keras.presets import PRESETS

DEFAULT_EXPOSURES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
DEFAULT_SIZE = 512
SCENE_MEAN = 0.5
PSNR_CAP = 100.0
"""Per-image PSNRs (all kinds) are capped at this many dB before averaging (identical images give +inf)."""
GAMMA = 2.2
SCALE_EPS = 1e-6
"""Elements at or below this (prediction or reference) are left out of scale matching (as ``metrics.match_scale``)."""
LOG_FLOOR = 1e-5
"""Floor of ``metrics.log_psnr`` (5 decades)."""

METHODS = {  # key -> (table label, description)
    "model": "model",
    "model_no_hallucination": "model, no hallucination (g(D))",
    "model_true_curve": "model with the true curve (oracle)",
    "inverse_srgb": "inverse sRGB (no hallucination)",
    "gamma_2.2": "inverse gamma 2.2 (no hallucination)",
    "emor_mean": "EMoR mean curve g0 (no hallucination)",
    "true_curve": "true curve (no hallucination)",
}
BASELINES = ("inverse_srgb", "gamma_2.2", "emor_mean", "true_curve")
CURVE_LABELS = {
    "model": "model (g(D))",
    "inverse_srgb": "inverse sRGB",
    "gamma_2.2": "inverse gamma 2.2",
    "emor_mean": "EMoR mean curve g0",
    "true_curve": "true curve",
}


# ----------------------------------------------------------------------------- test scenes


def prepare_scene(image, size=DEFAULT_SIZE):
    """HDR [H, W, 3] -> float32 [size, size, 3]: short side to ``size``, centre crop, mean 0.5.

    Resizing uses ``cv2.INTER_AREA`` and is skipped when the short side already equals ``size``;
    the crop keeps the middle (for 2:1 lat-long panoramas, the middle columns, all rows).
    Negative values (tolerated by :func:`hdr_keras.io.validate_hdr`) are set to 0 first.
    Raises ValueError when the crop holds no positive value.
    """
    image = np.maximum(np.asarray(image, np.float32), 0.0)
    height, width = image.shape[:2]
    if min(height, width) != size:
        scale = size / min(height, width)
        new_h = size if height <= width else max(size, int(round(height * scale)))
        new_w = size if width <= height else max(size, int(round(width * scale)))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        height, width = new_h, new_w
    top, left = (height - size) // 2, (width - size) // 2
    image = np.ascontiguousarray(image[top : top + size, left : left + size])
    mean = float(image.mean(dtype=np.float64))
    if not mean > 0.0:
        raise ValueError("crop is all zero")
    return (image * (SCENE_MEAN / mean)).astype(np.float32)


def load_scenes(hdr_paths, size=DEFAULT_SIZE, max_images=None):
    """Reads, validates and prepares HDR files; returns ``(scenes, skipped)``.

    ``hdr_paths``: a folder, a file, or a list of them (folders are listed with
    :func:`hdr_keras.io.list_images` over :data:`hdr_keras.io.HDR_EXTS`, sorted by name).
    ``scenes`` is a list of ``(path, float32 [size, size, 3])``; unreadable or invalid files are
    skipped with a warning naming them and listed in ``skipped`` as ``{"file", "reason"}``.
    ``max_images`` keeps the first that many usable files.
    """
    scenes, skipped = [], []
    for path in io.list_images(hdr_paths, io.HDR_EXTS):
        if max_images is not None and len(scenes) >= max_images:
            break
        try:
            image = io.read_hdr(path)
            io.validate_hdr(image, path)
            scene = prepare_scene(image, size)
        except (ValueError, OSError, cv2.error) as error:
            reason = str(error)
            if not reason.startswith(str(path)):
                reason = f"{path}: {reason}"
            warnings.warn(f"skipping HDR file {reason}", stacklevel=2)
            skipped.append({"file": str(path), "reason": reason})
            continue
        scenes.append((path, scene))
    return scenes, skipped


def render(scene, forward_curve, exposures, jpeg_quality=None):
    """Deterministic LDRs of one scene under one forward curve at each exposure (in stops).

    Returns numpy float32 arrays [E, H, W, 3]: ``hdr`` (``H t``, unclipped), ``clipped``
    (``C(H t)``), ``pre_quantization`` (``F(C(H t))``) and ``ldr`` (``Q(F(C(H t)))``, then a JPEG
    round trip at ``jpeg_quality`` when given). No noise: the camera model's building blocks
    :func:`hdr_keras.camera.clip`, ``apply_curve``, ``quantize`` and ``jpeg`` are applied directly.
    """
    import tensorflow as tf

    from hdr_keras import camera

    t = tf.pow(2.0, tf.constant(exposures, tf.float32))
    hdr = tf.constant(scene)[None] * t[:, None, None, None]
    clipped = camera.clip(hdr)
    curves = tf.repeat(tf.constant(np.asarray(forward_curve, np.float32))[None], len(exposures), axis=0)
    pre_quantization = camera.apply_curve(clipped, curves)
    ldr = camera.quantize(pre_quantization)
    if jpeg_quality is not None:
        ldr = camera.jpeg(ldr, tf.fill([len(exposures)], int(jpeg_quality)))
    return {
        "hdr": np.asarray(hdr),
        "clipped": np.asarray(clipped),
        "pre_quantization": np.asarray(pre_quantization),
        "ldr": np.asarray(ldr),
    }


def apply_curves(ldr, curves):
    """Each of ``curves`` [K, 1024] applied to each LDR [E, H, W, 3] -> tensor [K, E, H, W, 3].

    The same interpolation as the model's (:func:`hdr_keras.ops.apply_curve`); graph-safe.
    """
    import tensorflow as tf

    from hdr_keras import ops

    ldr, curves = tf.convert_to_tensor(ldr, tf.float32), tf.convert_to_tensor(curves, tf.float32)
    k, e = tf.shape(curves)[0], tf.shape(ldr)[0]
    images = tf.reshape(tf.tile(ldr[None], [k, 1, 1, 1, 1]), tf.concat([[k * e], tf.shape(ldr)[1:]], 0))
    table = tf.reshape(tf.tile(curves[:, None], [1, e, 1]), [k * e, -1])
    out = ops.apply_curve(images, table)
    return tf.reshape(out, tf.concat([[k, e], tf.shape(ldr)[1:]], 0))


def gamma_curve(gamma=GAMMA):
    """The inverse gamma curve ``x^gamma`` on the 1024-sample grid, float32."""
    return (crf.GRID**gamma).astype(np.float32)


# ----------------------------------------------------------------------------- scores


def _cap(value):
    return min(float(value), PSNR_CAP)


class _Reference:
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
            "pu21_psnr": _cap(pu21),
            "log_psnr": _cap(metrics.psnr(log_pred, self.log_target, peak=-math.log10(LOG_FLOOR))),
            "pu21_psnr_overexposed": over if math.isnan(over) else _cap(over),
            "scale": s,
        }


def _compiled(model):
    """The model's runtime (:mod:`hdr_keras.runtimes.tensorflow`) and :func:`apply_curves` traced."""
    import tensorflow as tf

    from hdr_keras.runtimes.tensorflow import Runtime

    return Runtime.from_model(model), tf.function(apply_curves, reduce_retracing=True)


def _score_group(images, outputs, curves, context, exposures, methods, pu21_peak, pu21_percentile):
    """Per-image records of one (scene, curve) group.

    ``images``: :func:`render`'s arrays [E, ...]; ``outputs``: [E, ...] arrays ``dequantized``,
    ``inverse_crf``, ``linear``, ``hdr`` (the model), optionally ``model_true_curve``, and one
    linear image per baseline curve (the curve applied to the LDR); ``curves``: the baseline
    inverse curves, ``true_curve`` among them.
    """
    true_inverse = curves["true_curve"]
    records = []
    for e, stops in enumerate(exposures):
        ldr, clipped, pre_quantization = images["ldr"][e], images["clipped"][e], images["pre_quantization"][e]
        record = {
            **context,
            "exposure_stops": stops,
            "overexposed_fraction": float(metrics.overexposed_mask(ldr).mean()),
            "dequantization": {
                "model": {"psnr": _cap(metrics.psnr(outputs["dequantized"][e], pre_quantization))},
                "input": {"psnr": _cap(metrics.psnr(ldr, pre_quantization))},
            },
            "curve": {
                "model": {
                    "crf_rmse": metrics.crf_rmse(outputs["inverse_crf"][e], true_inverse),
                    "linear_psnr": _cap(metrics.psnr(outputs["linear"][e], clipped)),
                }
            },
            "hdr": {},
        }
        for name in BASELINES:
            record["curve"][name] = {
                "crf_rmse": metrics.crf_rmse(curves[name], true_inverse),
                "linear_psnr": _cap(metrics.psnr(outputs[name][e], clipped)),
            }
        predictions = {"model": outputs["hdr"][e], "model_no_hallucination": outputs["linear"][e]}
        reference = _Reference(images["hdr"][e], ldr, pu21_peak, pu21_percentile)
        for name in methods:
            prediction = predictions[name] if name in predictions else outputs[name][e]
            record["hdr"][name] = reference.scores(prediction)
        records.append(record)
    return records


# ----------------------------------------------------------------------------- aggregation


def _mean_tables(records, methods):
    """Mean tables over per-image records (nan-mean for the over-exposed score)."""

    def mean(values, nan_ok=False):
        values = np.asarray(values, np.float64)
        if nan_ok:
            values = values[~np.isnan(values)]
        return float(values.mean()) if values.size else float("nan")

    tables = {
        "dequantization": {
            "model": {"psnr": mean([r["dequantization"]["model"]["psnr"] for r in records])},
            "input": {"psnr": mean([r["dequantization"]["input"]["psnr"] for r in records])},
        },
        "curve": {},
        "hdr": {},
    }
    for method in ("model",) + BASELINES:
        tables["curve"][method] = {
            key: mean([r["curve"][method][key] for r in records]) for key in ("crf_rmse", "linear_psnr")
        }
    for method in methods:
        row = {key: mean([r["hdr"][method][key] for r in records]) for key in ("pu21_psnr", "log_psnr")}
        row["pu21_psnr_overexposed"] = mean([r["hdr"][method]["pu21_psnr_overexposed"] for r in records], True)
        tables["hdr"][method] = row
    counts = {
        "images": len(records),
        "overexposed_images": int(sum(r["overexposed_fraction"] > 0 for r in records)),
    }
    return {"tables": tables, "counts": counts}


def _stop_key(stop):
    return f"{float(stop):g}"


# ----------------------------------------------------------------------------- evaluation


def evaluate(
    model,
    hdr_paths,
    crf_dir=crf.DEFAULT_CRF_DIR,
    curve_set="dorf",
    curves=None,
    exposures=DEFAULT_EXPOSURES,
    size=DEFAULT_SIZE,
    jpeg_quality=None,
    max_images=None,
    batch_size=1,
    pu21_peak=4000.0,
    pu21_percentile=100.0,
    oracle_curve=True,
    progress=False,
    on_outputs=None,
):
    """Runs the HDR-Synth protocol on ``model`` (a :class:`~hdr_keras.models.SingleHDR`).

    Args:
        model: callable ``model(ldr, training=False[, inverse_crf=...])`` returning a dict with
            ``dequantized``, ``inverse_crf``, ``linear`` and ``hdr`` (see SingleHDR).
        hdr_paths: a folder of HDR files, a file, or a list of them (see :func:`load_scenes`).
        crf_dir: folder of ``dorf_curves.npz``, ``modern_curves.npz`` and ``invemor.txt``.
        curve_set: ``"dorf"`` (the 10 DoRF test curves) or ``"modern"`` (the modern camera and
            display test curves), see :func:`hdr_keras.crf.curve_table`.
        curves: indices into the test curves of ``curve_set``; None for all.
        exposures: exposure stops ``u`` (``t = 2^u``).
        size: side of the square test crops.
        jpeg_quality: None (default, no JPEG) or a JPEG quality 1..100 for the LDRs.
        max_images: use at most this many (usable) HDR files.
        batch_size: LDRs per model call (within one scene and curve); may change the last digits.
        pu21_peak, pu21_percentile: the PU21 mapping to cd/m^2 (the reference's percentile ->
            ``pu21_peak`` cd/m^2, see :func:`hdr_keras.metrics.to_display_luminance`).
        oracle_curve: also run the model given the true inverse curve (``model_true_curve``
            row: what the curve estimate costs; a second model call per image).
        progress: show a tqdm bar over the images.
        on_outputs: optional ``f(context, images, outputs)`` called for each (scene, curve)
            group with its ``context`` dict, :func:`render`'s arrays and the numpy outputs
            [E, ...] (``hdr``, ``linear``, ...), e.g. to compare two models on the same LDRs.

    Returns:
        A JSON-ready dict: ``config``, ``tables`` (``dequantization``, ``curve``, ``hdr``; each
        ``{method: {metric: mean}}``), ``counts``, ``per_exposure``, ``per_curve`` and
        ``per_family`` (same structure, keyed by stop / curve index / curve family; a curve's
        entry also has its ``name`` and ``family``) and ``per_image`` records. Raises ValueError
        when no HDR file is usable.
    """
    start = time.perf_counter()
    table = crf.curve_table(curve_set, "test", crf_dir)
    forward, inverse = table.forward, table.inverse
    names, families = [str(n) for n in table.names], [str(f) for f in table.families]
    g0 = crf.load_emor(crf_dir).mean.astype(np.float32)
    curves = list(range(len(table))) if curves is None else [int(c) for c in curves]
    for c in curves:
        if not 0 <= c < len(table):
            raise ValueError(f"curve index {c} out of range 0..{len(table) - 1} of the {curve_set} test curves")
    exposures = [float(u) for u in exposures]
    if not exposures:
        raise ValueError("no exposures given")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")

    scenes, skipped = load_scenes(hdr_paths, size, max_images)
    if not scenes:
        if isinstance(hdr_paths, (str, pathlib.Path)) and not pathlib.Path(hdr_paths).exists():
            raise FileNotFoundError(f"{hdr_paths}: HDR folder not found; {MISSING_HINT}")
        raise ValueError(f"no usable HDR images in {hdr_paths}")

    methods = ["model", "model_no_hallucination"] + (["model_true_curve"] if oracle_curve else []) + list(BASELINES)
    runtime, apply_curves_fn = _compiled(model)
    total = len(scenes) * len(curves) * len(exposures)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="img", desc="evaluate", file=sys.stderr)

    baseline_curves = {"inverse_srgb": crf.srgb_inverse_curve(), "gamma_2.2": gamma_curve(), "emor_mean": g0}
    records = []
    pending = collections.deque()
    # Scores of one (scene, curve) group are computed in a worker thread (NumPy releases the GIL)
    # while the model runs on the next group; records keep their order.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        for path, scene in scenes:
            for c in curves:
                images = render(scene, forward[c], exposures, jpeg_quality)
                outputs = collections.defaultdict(list)
                for lo in range(0, len(exposures), batch_size):
                    ldr_batch = images["ldr"][lo : lo + batch_size]
                    for key, value in runtime.outputs(ldr_batch).items():
                        outputs[key].append(np.asarray(value))
                    if oracle_curve:
                        curves_batch = np.repeat(inverse[c][None], len(ldr_batch), axis=0)
                        outputs["model_true_curve"].append(runtime.outputs(ldr_batch, curves_batch)["hdr"])
                outputs = {key: np.concatenate(value) for key, value in outputs.items()}
                group_curves = {**baseline_curves, "true_curve": inverse[c]}
                applied = np.asarray(apply_curves_fn(images["ldr"], np.stack(list(group_curves.values()))))
                for k, name in enumerate(group_curves):
                    outputs[name] = applied[k]
                context = {"file": path.name, "test_curve": c, "curve_name": names[c], "curve_family": families[c]}
                if on_outputs is not None:
                    on_outputs(context, images, outputs)
                pending.append(
                    pool.submit(
                        _score_group, images, outputs, group_curves, context, exposures, methods,
                        pu21_peak, pu21_percentile,
                    )
                )
                while len(pending) > 1 or (pending and pending[0].done()):
                    records.extend(pending.popleft().result())
                    if bar is not None:
                        bar.update(len(exposures))
        while pending:
            records.extend(pending.popleft().result())
            if bar is not None:
                bar.update(len(exposures))
    if bar is not None:
        bar.close()

    result = {
        "config": {
            "protocol": f"HDR-Synth (Liu et al. 2020): {curve_set} test curves x exposures 2^u, no noise, "
            "clip, curve, 8-bit" + ("" if jpeg_quality is None else f", JPEG quality {jpeg_quality} 4:2:0"),
            "files": [str(path) for path, _ in scenes],
            "skipped": skipped,
            "curve_set": curve_set,
            "curves": curves,
            "curve_names": [names[c] for c in curves],
            "curve_families": [families[c] for c in curves],
            "exposures": exposures,
            "size": size,
            "scene_mean": SCENE_MEAN,
            "jpeg_quality": jpeg_quality,
            "batch_size": batch_size,
            "crf_dir": str(crf_dir),
            "psnr_cap_db": PSNR_CAP,
            "pu21": {
                "parameters": "banding_glare",
                "psnr_peak": metrics.PU21_PSNR_PEAK,
                "peak_cd_m2": pu21_peak,
                "reference_percentile": pu21_percentile,
                "mapping": f"k = {pu21_peak:g} / percentile(reference H t, {pu21_percentile:g}); "
                "prediction (after scale matching) and reference both times k, in cd/m^2",
            },
            "scale_matching": "s = exp(median(log(H t) - log(pred))) over the elements > 1e-6 of the pixels "
            "not over-exposed in the LDR (all pixels if none qualify)",
            "overexposed_threshold": 249 / 255,
            "methods": {name: METHODS[name] for name in methods},
        }
    }
    result.update(_mean_tables(records, methods))
    result["per_exposure"] = {
        _stop_key(u): _mean_tables([r for r in records if r["exposure_stops"] == u], methods) for u in exposures
    }
    result["per_curve"] = {
        str(c): {
            "name": names[c],
            "family": families[c],
            **_mean_tables([r for r in records if r["test_curve"] == c], methods),
        }
        for c in curves
    }
    result["per_family"] = {
        f: _mean_tables([r for r in records if r["curve_family"] == f], methods)
        for f in dict.fromkeys(families[c] for c in curves)
    }
    result["per_image"] = records
    result["config"]["seconds"] = round(time.perf_counter() - start, 3)
    return result


REAL_METHODS = {  # key -> table label
    "model": "model",
    "model_no_hallucination": "model, no hallucination (g(D))",
    "model_debevec_curve": "model with the Debevec curve (oracle)",
    "inverse_srgb": "inverse sRGB (no hallucination)",
    "gamma_2.2": "inverse gamma 2.2 (no hallucination)",
    "debevec_curve": "Debevec curve of this camera (oracle, no hallucination)",
}


HDR_KEYS = ("pu21_psnr", "log_psnr", "pu21_psnr_overexposed")


def _real_tables(records, methods):
    """Mean ``curve`` and ``hdr`` tables over real-stack records (nan-mean for the over-exposed score)."""

    def mean(values):
        values = np.asarray(values, np.float64)
        values = values[~np.isnan(values)]
        return float(values.mean()) if values.size else float("nan")

    return {
        "tables": {
            "curve": {m: {"crf_rmse": mean([r["curve"][m]["crf_rmse"] for r in records])} for m in records[0]["curve"]},
            "hdr": {
                m: {key: mean([r["hdr"][m][key] for r in records]) for key in HDR_KEYS}
                for m in methods
            },
        },
        "counts": {
            "images": len(records),
            "overexposed_images": int(sum(r["overexposed_fraction"] > 0 for r in records)),
        },
    }


def evaluate_real(
    model,
    stack_paths,
    long_side=stack_lib.DEFAULT_LONG_SIDE,
    pu21_peak=4000.0,
    pu21_percentile=100.0,
    oracle_curve=True,
    progress=False,
):
    """Real-camera protocol: each single exposure of a photo stack against the stack's merged HDR.

    Every stack (a folder with ``exposures.tsv``, or a folder of such folders: see
    :func:`hdr_keras.stack.find_stacks`) is downscaled to ``long_side``, aligned (MTB), calibrated
    and merged (Debevec) by :func:`hdr_keras.stack.load_stack`. Each aligned frame ``L`` is then
    reconstructed by the model and by fixed curves, and scored like the synthetic protocol's HDR
    table (scale matching on the pixels not over-exposed in ``L``, PU21 PSNR overall and in the
    over-exposed pixels of ``L``, log PSNR) against the merged HDR. The Debevec response of the
    stack is this camera's curve, the oracle (``debevec_curve``: the 8-bit values looked up per
    channel; ``model_debevec_curve``: the model given its channel mean on the 1024 grid, when
    ``oracle_curve``). The ``curve`` table is the RMSE of each inverse curve against that
    channel-mean Debevec curve.

    Returns a JSON-ready dict: ``config``, ``tables`` (``curve``, ``hdr``), ``counts``,
    ``per_stack`` (same structure, keyed by stack name) and ``per_image`` records.
    """
    start = time.perf_counter()
    folders = [f for path in ([stack_paths] if isinstance(stack_paths, (str, pathlib.Path)) else stack_paths)
               for f in stack_lib.find_stacks(path)]
    methods = ["model", "model_no_hallucination"] + (["model_debevec_curve"] if oracle_curve else [])
    methods += ["inverse_srgb", "gamma_2.2", "debevec_curve"]
    fixed = {"inverse_srgb": crf.srgb_inverse_curve(), "gamma_2.2": gamma_curve()}
    runtime, apply_curves_fn = _compiled(model)
    stacks, records = [], []
    for folder in folders:
        stack = stack_lib.load_stack(folder, long_side)
        debevec = stack_lib.inverse_curve(stack.response)
        frames = stack.images.astype(np.float32) / 255.0
        applied = np.asarray(apply_curves_fn(frames, np.stack(list(fixed.values()))))
        middle = float(stack.times[len(stack.times) // 2])
        for e, ldr in enumerate(frames):
            out = {key: value[0] for key, value in runtime.outputs(ldr[None]).items()}
            predictions = {
                "model": out["hdr"],
                "model_no_hallucination": out["linear"],
                "inverse_srgb": applied[0, e],
                "gamma_2.2": applied[1, e],
                "debevec_curve": stack_lib.apply_response(stack.images[e], stack.response),
            }
            if oracle_curve:
                predictions["model_debevec_curve"] = runtime.outputs(ldr[None], debevec[None])["hdr"][0]
            reference = _Reference(stack.hdr, ldr, pu21_peak, pu21_percentile)
            curves = {"model": out["inverse_crf"], **fixed}
            records.append({
                "stack": stack.name,
                "file": stack.files[e],
                "exposure_time_s": float(stack.times[e]),
                "exposure_stops": math.log2(float(stack.times[e]) / middle),
                "overexposed_fraction": float(metrics.overexposed_mask(ldr).mean()),
                "curve": {name: {"crf_rmse": metrics.crf_rmse(curve, debevec)} for name, curve in curves.items()},
                "hdr": {name: reference.scores(predictions[name]) for name in methods},
            })
            if progress:
                print(f"evaluate: {stack.name}/{stack.files[e]} done", file=sys.stderr)
        stacks.append({
            "name": stack.name,
            "folder": str(folder),
            "files": list(stack.files),
            "exposure_times_s": [float(t) for t in stack.times],
            "mtb_shifts_xy": stack.shifts.tolist(),
            "aligned_size_hw": list(stack.hdr.shape[:2]),
            "debevec_response": stack.response.tolist(),
        })
    result = {
        "config": {
            "protocol": "real exposure stacks: MTB alignment, Debevec calibration and merge as the reference; "
            "each aligned single exposure (the camera's 8-bit photo) scored against it",
            "stacks": stacks,
            "long_side": long_side,
            "calibration": {"samples": stack_lib.CALIBRATION_SAMPLES, "lambda": stack_lib.CALIBRATION_LAMBDA},
            "psnr_cap_db": PSNR_CAP,
            "pu21": {"parameters": "banding_glare", "psnr_peak": metrics.PU21_PSNR_PEAK,
                     "peak_cd_m2": pu21_peak, "reference_percentile": pu21_percentile},
            "overexposed_threshold": 249 / 255,
            "methods": {name: REAL_METHODS[name] for name in methods},
        }
    }
    result.update(_real_tables(records, methods))
    result["per_stack"] = {
        s["name"]: _real_tables([r for r in records if r["stack"] == s["name"]], methods) for s in stacks
    }
    result["per_image"] = records
    result["config"]["seconds"] = round(time.perf_counter() - start, 3)
    return result


# ----------------------------------------------------------------------------- report


def _fmt(value, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _model_line(config):
    line = f"preset `{config.get('preset', '?')}`"
    if config.get("random_weights"):
        line += ", **random weights (smoke test: the model's numbers are meaningless)**"
    elif config.get("weights"):
        line += f", weights `{pathlib.Path(config['weights']).name}` (sha256 `{config.get('weights_sha256', '?')[:12]}…`)"
    return line


def _hdr_table(title, rows, labels):
    """Markdown lines of the final-HDR table: PU21, log and over-exposed PU21 PSNR per method."""
    lines = ["", f"## {title}", "", "| method | PU21 PSNR (dB) | log PSNR (dB) | PU21 PSNR over-exposed (dB) |", "|---|---:|---:|---:|"]
    for method, row in rows.items():
        lines.append(
            f"| {labels.get(method, method)} | {_fmt(row['pu21_psnr'])} | {_fmt(row['log_psnr'])} | "
            f"{_fmt(row['pu21_psnr_overexposed'])} |"
        )
    return lines


def markdown(result):
    """The three tables of a result of :func:`evaluate` (plus run facts) as Markdown."""
    config, tables, counts = result["config"], result["tables"], result["counts"]
    files = config["files"]
    lines = ["# HDR-Synth evaluation", "", f"- Model: {_model_line(config)}"]
    if config.get("dtype"):
        lines.append(f"- Compute dtype: {config['dtype']} ({config.get('dtype_reason', '')})")
    lines.append(
        f"- Test set: {len(files)} HDR scene(s) x {len(config['curves'])} {config['curve_set']} test curve(s) x "
        f"{len(config['exposures'])} exposure(s) ({', '.join(_stop_key(u) for u in config['exposures'])} stops) "
        f"= {counts['images']} LDR images, {config['size']}x{config['size']}, no noise, "
        + (f"JPEG quality {config['jpeg_quality']} (4:2:0)" if config["jpeg_quality"] is not None else "no JPEG")
    )
    if config["skipped"]:
        lines.append(f"- Skipped files: {', '.join(pathlib.Path(s['file']).name for s in config['skipped'])}")
    lines += ["", "## Dequantization (paper Table 2)", "", "| method | PSNR (dB) vs F(C(Ht)) |", "|---|---:|"]
    lines.append(f"| model (Dequantization-Net output D) | {_fmt(tables['dequantization']['model']['psnr'])} |")
    lines.append(f"| input LDR, no net | {_fmt(tables['dequantization']['input']['psnr'])} |")
    lines += [
        "",
        "## Camera curve and linear image (paper Table 3)",
        "",
        "| method | inverse-curve RMSE | linear PSNR (dB) vs C(Ht) |",
        "|---|---:|---:|",
    ]
    for method, row in tables["curve"].items():
        lines.append(f"| {CURVE_LABELS[method]} | {_fmt(row['crf_rmse'], 4)} | {_fmt(row['linear_psnr'])} |")
    lines += _hdr_table("Final HDR vs H t (after scale matching)", tables["hdr"], config["methods"])
    families = [part["family"] for part in result["per_curve"].values()]
    lines += _breakdown(
        "Per curve family", [(f"{families.count(f)} curve(s)", f, part) for f, part in result["per_family"].items()]
    )
    curves = [(f"{c} `{part['name']}`", part["family"], part) for c, part in result["per_curve"].items()]
    lines += _breakdown("Per curve", curves)
    pu21 = config["pu21"]
    lines += [
        "Δ: model minus inverse sRGB (PU21 PSNR, dB).",
        "",
        f"Over-exposed column: mean over the {counts['overexposed_images']} of {counts['images']} images with "
        "pixels >= 249/255 in the LDR. PU21 `banding_glare`, PSNR peak "
        f"{pu21['psnr_peak']:g}; reference {'maximum' if pu21['reference_percentile'] == 100 else str(pu21['reference_percentile']) + 'th percentile'} "
        f"-> {pu21['peak_cd_m2']:g} cd/m^2. Scale: median log ratio over the pixels not over-exposed. "
        f"PSNRs capped at {config['psnr_cap_db']:g} dB. See docs/evaluate.md.",
        "",
    ]
    return "\n".join(lines)


def _breakdown(title, parts):
    """Markdown rows of the key numbers per (label, family, ``{tables, counts}``) part."""
    lines = [
        "",
        f"## {title}",
        "",
        "| curves | family | images | curve RMSE model | curve RMSE inv. sRGB | PU21 model | PU21 inv. sRGB | "
        "Δ | PU21 model, true curve | PU21 over-exp. model | PU21 over-exp. inv. sRGB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, family, part in parts:
        curve, hdr = part["tables"]["curve"], part["tables"]["hdr"]
        oracle = hdr.get("model_true_curve", {}).get("pu21_psnr")
        lines.append(
            f"| {label} | {family} | {part['counts']['images']} | {_fmt(curve['model']['crf_rmse'], 4)} | "
            f"{_fmt(curve['inverse_srgb']['crf_rmse'], 4)} | {_fmt(hdr['model']['pu21_psnr'])} | "
            f"{_fmt(hdr['inverse_srgb']['pu21_psnr'])} | "
            f"{_fmt(hdr['model']['pu21_psnr'] - hdr['inverse_srgb']['pu21_psnr'])} | {_fmt(oracle)} | "
            f"{_fmt(hdr['model']['pu21_psnr_overexposed'])} | {_fmt(hdr['inverse_srgb']['pu21_psnr_overexposed'])} |"
        )
    lines.append("")
    return lines


def markdown_real(result):
    """The tables of a result of :func:`evaluate_real` as Markdown."""
    config, tables, counts = result["config"], result["tables"], result["counts"]
    methods = list(config["methods"])
    lines = ["# Real-camera evaluation (exposure stacks)", "", f"- Model: {_model_line(config)}"]
    if config.get("dtype"):
        lines.append(f"- Compute dtype: {config['dtype']} ({config.get('dtype_reason', '')})")
    for s in config["stacks"]:
        frames = ", ".join(f"{f} ({t:g} s, shift {dx:+d},{dy:+d})" for f, t, (dx, dy) in zip(
            s["files"], s["exposure_times_s"], s["mtb_shifts_xy"]))
        height, width = s["aligned_size_hw"]
        lines.append(f"- Stack `{s['name']}`: {frames}; aligned crop {width}x{height} px")
    lines += [
        f"- Frames downscaled to a long side of {config['long_side']} px, aligned (MTB), Debevec-calibrated "
        "and merged into the reference; each aligned frame scored against it.",
        "",
        "## Inverse curve vs the Debevec curve (channel mean)",
        "",
        "| method | inverse-curve RMSE |",
        "|---|---:|",
    ]
    for method, row in tables["curve"].items():
        lines.append(f"| {CURVE_LABELS[method]} | {_fmt(row['crf_rmse'], 4)} |")
    lines += _hdr_table("Final HDR vs the merged stack (after scale matching)", tables["hdr"], config["methods"])
    lines += [
        "",
        "## Per exposure: PU21 PSNR (dB), over-exposed pixels in brackets",
        "",
        "| stack | file | stops | over-exp. | " + " | ".join(methods) + " |",
        "|---|---|---:|---:|" + "---:|" * len(methods),
    ]
    for r in result["per_image"]:
        cells = [f"{_fmt(r['hdr'][m]['pu21_psnr'])} ({_fmt(r['hdr'][m]['pu21_psnr_overexposed'])})" for m in methods]
        lines.append(
            f"| {r['stack']} | {r['file']} | {r['exposure_stops']:+.1f} | {100 * r['overexposed_fraction']:.1f}% | "
            + " | ".join(cells) + " |"
        )
    lines += [
        "",
        f"Over-exposed column: mean over the {counts['overexposed_images']} of {counts['images']} frames with pixels "
        ">= 249/255. The merged reference is itself clipped where every frame is over-exposed. See docs/evaluate.md.",
        "",
    ]
    return "\n".join(lines)


def _json_safe(value):
    """nan/inf -> None, numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(result, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(result), indent=1, allow_nan=False) + "\n")


# ----------------------------------------------------------------------------- CLI


def _number_list(values, kind):
    """argparse values (``["-3,-2", "0"]`` or ``["-3", "-2"]``) -> list of ``kind``."""
    items = [item for value in values for item in str(value).replace(",", " ").split()]
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {' '.join(values)!r}") from None


def add_arguments(parser):
    """Adds the ``evaluate`` flags to an argparse parser."""
    parser.add_argument("--hdr_dir", default=str(DEFAULT_VAL_DIR),
                        help="folder of test HDR files (.exr/.hdr/.pic), or one file (default: %(default)s)")
    parser.add_argument("--preset", default="lite", choices=sorted(PRESETS), help="model preset (default: %(default)s)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--weights", default=None,
                         help="SingleHDR .weights.h5 file (default: the weights shipped for --preset)")
    weights.add_argument("--random_weights", action="store_true",
                         help="evaluate a randomly initialised model (seed 0): smoke test only, the numbers mean nothing")
    parser.add_argument("--crf_dir", default=str(crf.DEFAULT_CRF_DIR),
                        help="folder with dorf_curves.npz, modern_curves.npz and invemor.txt (default: %(default)s)")
    parser.add_argument("--curve_set", default="dorf", choices=crf.CURVE_SETS,
                        help="test curves: the 10 DoRF test curves or the modern camera / display test curves "
                        "(default: %(default)s)")
    parser.add_argument("--curves", nargs="+", default=None,
                        help="indices into the test curves of --curve_set, e.g. 0,1 (default: all)")
    parser.add_argument("--exposures", nargs="+", default=None,
                        help="exposure stops u (t = 2^u), e.g. --exposures=-3,0,3 or --exposures -3 0 3 "
                        "(default: -3,-2,-1,0,1,2,3)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="side of the square test crops (default: %(default)s)")
    parser.add_argument("--max_images", type=int, default=None, help="use at most this many HDR files (first by name)")
    parser.add_argument("--jpeg_quality", type=int, default=None,
                        help="JPEG-compress the LDRs at this quality, 4:2:0 chroma subsampling (default: no JPEG)")
    parser.add_argument("--batch_size", type=int, default=1, help="LDRs per model call (default: %(default)s)")
    parser.add_argument("--pu21_peak", type=float, default=4000.0,
                        help="cd/m^2 of the reference maximum (or --pu21_percentile) for PU21 (default: %(default)s)")
    parser.add_argument("--pu21_percentile", type=float, default=100.0,
                        help="percentile of the reference mapped to --pu21_peak (default: %(default)s, the maximum)")
    parser.add_argument("--no_oracle_curve", dest="oracle_curve", action="store_false",
                        help="skip the row of the model given the true inverse curve (saves one of two model calls "
                        "per image)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="compute dtype of the networks; auto picks bfloat16 only on a CPU with AMX or "
                        "AVX512-BF16 or a bfloat16 GPU; logged and written to the report (default: %(default)s)")
    parser.add_argument("--real_stack", default=None, metavar="DIR",
                        help="run the real-camera protocol instead: DIR holds photos and exposures.tsv, or "
                        "sub-folders that do (e.g. ../shared/data/real)")
    parser.add_argument("--long_side", type=int, default=stack_lib.DEFAULT_LONG_SIDE,
                        help="with --real_stack: downscale the photos to this long side (default: %(default)s)")
    parser.add_argument("--out", default=None, help="write the JSON report here")
    parser.add_argument("--markdown", default=None, help="write the Markdown tables here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no tables on stdout")
    return parser


def run(args):
    """Runs the ``evaluate`` subcommand; returns the process exit code."""
    from hdr_keras.quiet import import_tensorflow

    import_tensorflow()  # first import of TensorFlow: without its C++ start-up noise
    from hdr_keras import pretrained

    try:
        curves = None if args.curves is None else _number_list(args.curves, int)
        exposures = DEFAULT_EXPOSURES if args.exposures is None else _number_list(args.exposures, float)
    except argparse.ArgumentTypeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.jpeg_quality is not None and not 1 <= args.jpeg_quality <= 100:
        print("error: --jpeg_quality must be in 1..100", file=sys.stderr)
        return 2
    if args.size < 16:
        print("error: --size must be at least 16", file=sys.stderr)
        return 2
    if args.long_side < 64:
        print("error: --long_side must be at least 64", file=sys.stderr)
        return 2
    if args.real_stack is not None:
        try:
            stack_lib.find_stacks(args.real_stack)
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    weights = None
    if not args.random_weights:
        try:
            weights = pretrained.resolve_weights(args.preset, args.weights, random_flag="--random_weights")
        except (FileNotFoundError, pretrained.MissingWeightsError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    import keras

    from hdr_keras import precision

    dtype, dtype_reason = precision.resolve(args.dtype)
    print(f"evaluate: compute dtype {dtype} ({dtype_reason})", file=sys.stderr)
    if args.random_weights:
        keras.utils.set_random_seed(0)
    try:
        with precision.policy_scope(dtype):
            model = pretrained.build_model(args.preset, weights)
    except pretrained.WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    start = time.perf_counter()
    try:
        if args.real_stack is not None:
            result = evaluate_real(
                model,
                args.real_stack,
                long_side=args.long_side,
                pu21_peak=args.pu21_peak,
                pu21_percentile=args.pu21_percentile,
                oracle_curve=args.oracle_curve,
                progress=not args.quiet,
            )
        else:
            result = evaluate(
                model,
                args.hdr_dir,
                crf_dir=args.crf_dir,
                curve_set=args.curve_set,
                curves=curves,
                exposures=exposures,
                size=args.size,
                jpeg_quality=args.jpeg_quality,
                max_images=args.max_images,
                batch_size=args.batch_size,
                pu21_peak=args.pu21_peak,
                pu21_percentile=args.pu21_percentile,
                oracle_curve=args.oracle_curve,
                progress=not args.quiet,
            )
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = result["config"]
    config.update(
        {
            "preset": args.preset,
            "weights": None if weights is None else str(weights),
            "weights_sha256": None if weights is None else pretrained.sha256(weights),
            "random_weights": bool(args.random_weights),
            "dtype": dtype,
            "dtype_reason": dtype_reason,
            "seconds": round(time.perf_counter() - start, 3),
        }
    )
    if args.real_stack is None:
        config["hdr_dir"] = str(args.hdr_dir)
    # keep the config first in the JSON
    result = {"config": config, **{k: v for k, v in result.items() if k != "config"}}
    text = markdown(result) if args.real_stack is None else markdown_real(result)
    if args.out:
        write_json(result, args.out)
    if args.markdown:
        path = pathlib.Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not args.quiet:
        print(text)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hdr_keras evaluate", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
