"""Evaluate a model on the paper's HDR-Synth test protocol, beside fixed-curve baselines.

A deterministic synthetic test set is rendered from real HDR images (DESIGN §2, §5): every scene
(short side resized to ``size`` with ``cv2.INTER_AREA``, centre-cropped to ``size x size``,
normalised to mean 0.5 as in training) is exposed at ``t = 2^u`` for each stop ``u`` in
``exposures`` and passed through each of the 10 DoRF test curves ``F`` without noise:
``L = Q(F(C(H t)))`` (optionally JPEG). The model runs on every ``L`` and is scored, beside
fixed-curve baselines, on three tables (see ``docs/evaluate.md``):

* ``dequantization`` (paper Table 2): PSNR of the input ``L`` and of the Dequantization-Net's
  output ``D`` against the pre-quantisation image ``F(C(H t))``.
* ``curve`` (paper Table 3): RMSE of the inverse curve against the true ``F^-1`` and PSNR of the
  linear image (``g(D)`` for the model, ``g(L)`` for a baseline curve ``g``) against ``C(H t)``.
* ``hdr``: the final HDR against the unclipped ``H t`` after scale matching: PU21 PSNR, log PSNR
  and PU21 PSNR inside the over-exposed pixels of ``L``.

Baselines: inverse gamma 2.2 (``g(x) = x^2.2``), the EMoR mean curve ``g0`` and the true inverse
curve, each applied to ``L`` with no hallucination. :func:`evaluate` is the library entry point
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
from hdr_keras.paths import DEFAULT_VAL_DIR
from hdr_keras.presets import PRESETS

DEFAULT_EXPOSURES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
DEFAULT_SIZE = 512
SCENE_MEAN = 0.5
PSNR_CAP = 100.0
"""Per-image PSNRs (all kinds) are capped at this many dB before averaging (identical images give +inf)."""
GAMMA = 2.2

METHODS = {  # key -> (table label, description)
    "model": "model",
    "model_no_hallucination": "model, no hallucination (g(D))",
    "model_true_curve": "model with the true curve (oracle)",
    "gamma_2.2": "inverse gamma 2.2 (no hallucination)",
    "emor_mean": "EMoR mean curve g0 (no hallucination)",
    "true_curve": "true curve (no hallucination)",
}
BASELINES = ("gamma_2.2", "emor_mean", "true_curve")


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


def scale_mask(ldr):
    """Pixels [H, W] used to match the scale: those not over-exposed in the LDR."""
    return ~metrics.overexposed_mask(ldr)


def matched(pred, target, ldr):
    """``match_scale`` on the pixels of :func:`scale_mask`; all pixels if none qualify, else s = 1.

    Returns ``(pred * s, s)`` in float64.
    """
    for mask in (scale_mask(ldr), None):
        try:
            return metrics.match_scale(pred, target, mask=mask)
        except ValueError:
            continue
    return np.asarray(pred, np.float64), 1.0


class _Reference:
    """The final-HDR reference ``H t`` of one image, with its PU21 encoding computed once."""

    def __init__(self, target, ldr, pu21_peak, pu21_percentile):
        self.target = np.asarray(target, np.float64)
        self.over = metrics.overexposed_mask(ldr)
        self.ldr = ldr
        # The factor k of metrics.to_display_luminance (reference percentile -> pu21_peak cd/m^2),
        # computed once so that the reference is PU21-encoded once for all methods.
        level = float(np.percentile(self.target, pu21_percentile))
        if not level > 0.0:  # a percentile below 100 of a mostly black image: use the maximum
            level = float(self.target.max())
        self.k = pu21_peak / level
        target_cd = self.target * self.k
        self.encoded = metrics.pu21_encode(target_cd)

    def scores(self, pred):
        """PU21 PSNR, log PSNR, PU21 PSNR in the over-exposed pixels (nan if none) and the scale s.

        Identical to ``metrics.pu21_psnr(p, target, pu21_peak, pu21_percentile[, mask])`` and
        ``metrics.log_psnr(p, target)`` with ``p`` the scale-matched prediction.
        """
        pred, s = matched(pred, self.target, self.ldr)
        encoded = metrics.pu21_encode(pred * self.k)
        pu21 = metrics.psnr(encoded, self.encoded, peak=metrics.PU21_PSNR_PEAK)
        over = metrics.psnr(encoded, self.encoded, peak=metrics.PU21_PSNR_PEAK, mask=self.over)
        return {
            "pu21_psnr": _cap(pu21),
            "log_psnr": _cap(metrics.log_psnr(pred, self.target)),
            "pu21_psnr_overexposed": over if math.isnan(over) else _cap(over),
            "scale": s,
        }


def _compiled(model):
    """tf.functions: the model's outputs, the model given a curve, and :func:`apply_curves`."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def estimate(ldr):
        out = model(ldr, training=False)
        return {key: out[key] for key in ("dequantized", "inverse_crf", "linear", "hdr")}

    @tf.function(reduce_retracing=True)
    def with_curve(ldr, inverse_crf):
        return model(ldr, training=False, inverse_crf=inverse_crf)["hdr"]

    return estimate, with_curve, tf.function(apply_curves, reduce_retracing=True)


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
    curves=None,
    exposures=DEFAULT_EXPOSURES,
    size=DEFAULT_SIZE,
    jpeg_quality=None,
    max_images=None,
    batch_size=1,
    pu21_peak=4000.0,
    pu21_percentile=100.0,
    oracle_curve=False,
    progress=False,
):
    """Runs the HDR-Synth protocol on ``model`` (a :class:`~hdr_keras.models.SingleHDR`).

    Args:
        model: callable ``model(ldr, training=False[, inverse_crf=...])`` returning a dict with
            ``dequantized``, ``inverse_crf``, ``linear`` and ``hdr`` (see SingleHDR).
        hdr_paths: a folder of HDR files, a file, or a list of them (see :func:`load_scenes`).
        crf_dir: folder of ``dorf_curves.npz`` and ``invemor.txt``.
        curves: indices (0..9) into the 10 DoRF test curves; None for all.
        exposures: exposure stops ``u`` (``t = 2^u``).
        size: side of the square test crops.
        jpeg_quality: None (default, no JPEG) or a JPEG quality 1..100 for the LDRs.
        max_images: use at most this many (usable) HDR files.
        batch_size: LDRs per model call (within one scene and curve); may change the last digits.
        pu21_peak, pu21_percentile: the PU21 mapping to cd/m^2 (the reference's percentile ->
            ``pu21_peak`` cd/m^2, see :func:`hdr_keras.metrics.to_display_luminance`).
        oracle_curve: also run the model with the true inverse curve (``model_true_curve`` row;
            doubles the run time).
        progress: show a tqdm bar over the images.

    Returns:
        A JSON-ready dict: ``config``, ``tables`` (``dequantization``, ``curve``, ``hdr``; each
        ``{method: {metric: mean}}``), ``counts``, ``per_exposure`` and ``per_curve`` (same
        structure, keyed by stop / curve index) and ``per_image`` records. Raises ValueError when
        no HDR file is usable.
    """
    start = time.perf_counter()
    forward, inverse = crf.test_curves(crf_dir)
    dorf_index = crf.load_dorf(crf_dir).test_index
    g0 = crf.load_emor(crf_dir).mean.astype(np.float32)
    gamma = gamma_curve()
    curves = list(range(len(forward))) if curves is None else [int(c) for c in curves]
    for c in curves:
        if not 0 <= c < len(forward):
            raise ValueError(f"curve index {c} out of range 0..{len(forward) - 1}")
    exposures = [float(u) for u in exposures]
    if not exposures:
        raise ValueError("no exposures given")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")

    scenes, skipped = load_scenes(hdr_paths, size, max_images)
    if not scenes:
        raise ValueError(f"no usable HDR images in {hdr_paths}")

    methods = ["model", "model_no_hallucination"] + (["model_true_curve"] if oracle_curve else []) + list(BASELINES)
    estimate, with_curve, apply_curves_fn = _compiled(model)
    total = len(scenes) * len(curves) * len(exposures)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="img", desc="evaluate", file=sys.stderr)

    baseline_curves = {"gamma_2.2": gamma, "emor_mean": g0}
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
                    for key, value in estimate(ldr_batch).items():
                        outputs[key].append(np.asarray(value))
                    if oracle_curve:
                        curves_batch = np.repeat(inverse[c][None], len(ldr_batch), axis=0)
                        outputs["model_true_curve"].append(np.asarray(with_curve(ldr_batch, curves_batch)))
                outputs = {key: np.concatenate(value) for key, value in outputs.items()}
                group_curves = {**baseline_curves, "true_curve": inverse[c]}
                names = list(group_curves)
                applied = np.asarray(apply_curves_fn(images["ldr"], np.stack([group_curves[n] for n in names])))
                for k, name in enumerate(names):
                    outputs[name] = applied[k]
                context = {"file": path.name, "test_curve": c, "dorf_index": int(dorf_index[c])}
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
            "protocol": "HDR-Synth (Liu et al. 2020): DoRF test curves x exposures 2^u, no noise, clip, curve, 8-bit",
            "files": [str(path) for path, _ in scenes],
            "skipped": skipped,
            "curves": curves,
            "dorf_indices": [int(dorf_index[c]) for c in curves],
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
    result["per_curve"] = {str(c): _mean_tables([r for r in records if r["test_curve"] == c], methods) for c in curves}
    result["per_image"] = records
    result["config"]["seconds"] = round(time.perf_counter() - start, 3)
    return result


# ----------------------------------------------------------------------------- report


def _fmt(value, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def markdown(result):
    """The three tables of a result of :func:`evaluate` (plus run facts) as Markdown."""
    config, tables, counts = result["config"], result["tables"], result["counts"]
    files = config["files"]
    lines = ["# HDR-Synth evaluation", ""]
    model_line = f"preset `{config.get('preset', '?')}`"
    if config.get("random_weights"):
        model_line += ", **random weights (smoke test: the model's numbers are meaningless)**"
    elif config.get("weights"):
        model_line += f", weights `{pathlib.Path(config['weights']).name}` (sha256 `{config.get('weights_sha256', '?')[:12]}…`)"
    lines.append(f"- Model: {model_line}")
    lines.append(
        f"- Test set: {len(files)} HDR scene(s) x {len(config['curves'])} DoRF test curve(s) x "
        f"{len(config['exposures'])} exposure(s) ({', '.join(_stop_key(u) for u in config['exposures'])} stops) "
        f"= {counts['images']} LDR images, {config['size']}x{config['size']}, no noise, "
        + (f"JPEG quality {config['jpeg_quality']}" if config["jpeg_quality"] is not None else "no JPEG")
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
    labels = {"model": "model (g(D))", "gamma_2.2": "inverse gamma 2.2", "emor_mean": "EMoR mean curve g0", "true_curve": "true curve"}
    for method, row in tables["curve"].items():
        lines.append(f"| {labels[method]} | {_fmt(row['crf_rmse'], 4)} | {_fmt(row['linear_psnr'])} |")
    lines += [
        "",
        "## Final HDR vs H t (after scale matching)",
        "",
        "| method | PU21 PSNR (dB) | log PSNR (dB) | PU21 PSNR over-exposed (dB) |",
        "|---|---:|---:|---:|",
    ]
    for method, row in tables["hdr"].items():
        lines.append(
            f"| {config['methods'].get(method, method)} | {_fmt(row['pu21_psnr'])} | {_fmt(row['log_psnr'])} | "
            f"{_fmt(row['pu21_psnr_overexposed'])} |"
        )
    pu21 = config["pu21"]
    lines += [
        "",
        f"Over-exposed column: mean over the {counts['overexposed_images']} of {counts['images']} images with "
        "pixels >= 249/255 in the LDR. PU21 `banding_glare`, PSNR peak "
        f"{pu21['psnr_peak']:g}; reference {'maximum' if pu21['reference_percentile'] == 100 else str(pu21['reference_percentile']) + 'th percentile'} "
        f"-> {pu21['peak_cd_m2']:g} cd/m^2. Scale: median log ratio over the pixels not over-exposed. "
        f"PSNRs capped at {config['psnr_cap_db']:g} dB. See docs/evaluate.md.",
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
                        help="folder with dorf_curves.npz and invemor.txt (default: %(default)s)")
    parser.add_argument("--curves", nargs="+", default=None,
                        help="indices 0..9 of the DoRF test curves to use, e.g. 0,1 (default: all 10)")
    parser.add_argument("--exposures", nargs="+", default=None,
                        help="exposure stops u (t = 2^u), e.g. --exposures=-3,0,3 or --exposures -3 0 3 "
                        "(default: -3,-2,-1,0,1,2,3)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="side of the square test crops (default: %(default)s)")
    parser.add_argument("--max_images", type=int, default=None, help="use at most this many HDR files (first by name)")
    parser.add_argument("--jpeg_quality", type=int, default=None, help="JPEG-compress the LDRs at this quality (default: no JPEG)")
    parser.add_argument("--batch_size", type=int, default=1, help="LDRs per model call (default: %(default)s)")
    parser.add_argument("--pu21_peak", type=float, default=4000.0,
                        help="cd/m^2 of the reference maximum (or --pu21_percentile) for PU21 (default: %(default)s)")
    parser.add_argument("--pu21_percentile", type=float, default=100.0,
                        help="percentile of the reference mapped to --pu21_peak (default: %(default)s, the maximum)")
    parser.add_argument("--oracle_curve", action="store_true",
                        help="also score the model given the true inverse curve (doubles the run time)")
    parser.add_argument("--out", default=None, help="write the JSON report here")
    parser.add_argument("--markdown", default=None, help="write the Markdown tables here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no tables on stdout")
    return parser


def run(args):
    """Runs the ``evaluate`` subcommand; returns the process exit code."""
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

    weights = None
    if not args.random_weights:
        weights = args.weights
        if weights is None:
            weights = pretrained.shipped_weights(args.preset)
        if weights is None:
            print(
                f"error: no weights are shipped for preset {args.preset!r}; pass --weights FILE "
                "(or --random_weights for a smoke test whose numbers mean nothing)",
                file=sys.stderr,
            )
            return 2
        if not pathlib.Path(weights).is_file():
            print(f"error: {weights}: weights file not found", file=sys.stderr)
            return 2

    import keras

    if args.random_weights:
        keras.utils.set_random_seed(0)
    try:
        model = pretrained.build_model(args.preset, weights)
    except (ValueError, OSError) as error:
        print(f"error: cannot build the model: {error}", file=sys.stderr)
        return 2

    start = time.perf_counter()
    try:
        result = evaluate(
            model,
            args.hdr_dir,
            crf_dir=args.crf_dir,
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
            "hdr_dir": str(args.hdr_dir),
            "seconds": round(time.perf_counter() - start, 3),
        }
    )
    # keep the config first in the JSON
    result = {"config": config, **{k: v for k, v in result.items() if k != "config"}}
    text = markdown(result)
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
