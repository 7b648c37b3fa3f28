"""The HDR-Synth protocol: real HDR scenes through the test camera curves at several exposures.

Tables: ``dequantization`` (paper Table 2), ``curve`` (paper Table 3) and ``hdr`` (final HDR),
beside fixed-curve baselines; also per exposure, per curve and per curve family.
"""

import collections
import concurrent.futures
import pathlib
import sys
import time

import numpy as np

from hdr_keras import crf, metrics
from hdr_keras.evaluate.scenes import DEFAULT_EXPOSURES, DEFAULT_SIZE, SCENE_MEAN, gamma_curve, load_scenes, render
from hdr_keras.evaluate.scoring import PSNR_CAP, Reference, cap, traced
from hdr_keras.evaluate.tables import fmt, hdr_table, model_line
from hdr_keras.paths import MISSING_HINT

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


def mean_tables(records, methods):
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


def stop_key(stop):
    return f"{float(stop):g}"


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
                "model": {"psnr": cap(metrics.psnr(outputs["dequantized"][e], pre_quantization))},
                "input": {"psnr": cap(metrics.psnr(ldr, pre_quantization))},
            },
            "curve": {
                "model": {
                    "crf_rmse": metrics.crf_rmse(outputs["inverse_crf"][e], true_inverse),
                    "linear_psnr": cap(metrics.psnr(outputs["linear"][e], clipped)),
                }
            },
            "hdr": {},
        }
        for name in BASELINES:
            record["curve"][name] = {
                "crf_rmse": metrics.crf_rmse(curves[name], true_inverse),
                "linear_psnr": cap(metrics.psnr(outputs[name][e], clipped)),
            }
        predictions = {"model": outputs["hdr"][e], "model_no_hallucination": outputs["linear"][e]}
        reference = Reference(images["hdr"][e], ldr, pu21_peak, pu21_percentile)
        for name in methods:
            prediction = predictions[name] if name in predictions else outputs[name][e]
            record["hdr"][name] = reference.scores(prediction)
        records.append(record)
    return records


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
    runtime, apply_curves_fn = traced(model)
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
    result.update(mean_tables(records, methods))
    result["per_exposure"] = {
        stop_key(u): mean_tables([r for r in records if r["exposure_stops"] == u], methods) for u in exposures
    }
    result["per_curve"] = {
        str(c): {
            "name": names[c],
            "family": families[c],
            **mean_tables([r for r in records if r["test_curve"] == c], methods),
        }
        for c in curves
    }
    result["per_family"] = {
        f: mean_tables([r for r in records if r["curve_family"] == f], methods)
        for f in dict.fromkeys(families[c] for c in curves)
    }
    result["per_image"] = records
    result["config"]["seconds"] = round(time.perf_counter() - start, 3)
    return result


def markdown(result):
    """The three tables of a result of :func:`evaluate` (plus run facts) as Markdown."""
    config, tables, counts = result["config"], result["tables"], result["counts"]
    files = config["files"]
    lines = ["# HDR-Synth evaluation", "", f"- Model: {model_line(config)}"]
    if config.get("dtype"):
        lines.append(f"- Compute dtype: {config['dtype']} ({config.get('dtype_reason', '')})")
    lines.append(
        f"- Test set: {len(files)} HDR scene(s) x {len(config['curves'])} {config['curve_set']} test curve(s) x "
        f"{len(config['exposures'])} exposure(s) ({', '.join(stop_key(u) for u in config['exposures'])} stops) "
        f"= {counts['images']} LDR images, {config['size']}x{config['size']}, no noise, "
        + (f"JPEG quality {config['jpeg_quality']} (4:2:0)" if config["jpeg_quality"] is not None else "no JPEG")
    )
    if config["skipped"]:
        lines.append(f"- Skipped files: {', '.join(pathlib.Path(s['file']).name for s in config['skipped'])}")
    lines += ["", "## Dequantization (paper Table 2)", "", "| method | PSNR (dB) vs F(C(Ht)) |", "|---|---:|"]
    lines.append(f"| model (Dequantization-Net output D) | {fmt(tables['dequantization']['model']['psnr'])} |")
    lines.append(f"| input LDR, no net | {fmt(tables['dequantization']['input']['psnr'])} |")
    lines += [
        "",
        "## Camera curve and linear image (paper Table 3)",
        "",
        "| method | inverse-curve RMSE | linear PSNR (dB) vs C(Ht) |",
        "|---|---:|---:|",
    ]
    for method, row in tables["curve"].items():
        lines.append(f"| {CURVE_LABELS[method]} | {fmt(row['crf_rmse'], 4)} | {fmt(row['linear_psnr'])} |")
    lines += hdr_table("Final HDR vs H t (after scale matching)", tables["hdr"], config["methods"])
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
            f"| {label} | {family} | {part['counts']['images']} | {fmt(curve['model']['crf_rmse'], 4)} | "
            f"{fmt(curve['inverse_srgb']['crf_rmse'], 4)} | {fmt(hdr['model']['pu21_psnr'])} | "
            f"{fmt(hdr['inverse_srgb']['pu21_psnr'])} | "
            f"{fmt(hdr['model']['pu21_psnr'] - hdr['inverse_srgb']['pu21_psnr'])} | {fmt(oracle)} | "
            f"{fmt(hdr['model']['pu21_psnr_overexposed'])} | {fmt(hdr['inverse_srgb']['pu21_psnr_overexposed'])} |"
        )
    lines.append("")
    return lines
