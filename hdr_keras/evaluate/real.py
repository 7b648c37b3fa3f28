"""The real-camera protocol: each single exposure of a photo stack against the stack's merged HDR."""

import math
import pathlib
import sys
import time

import numpy as np

from hdr_keras import crf, metrics
from hdr_keras import stack as stack_lib
from hdr_keras.evaluate.scenes import gamma_curve
from hdr_keras.evaluate.scoring import HDR_KEYS, PSNR_CAP, Reference, traced
from hdr_keras.evaluate.synthetic import CURVE_LABELS
from hdr_keras.evaluate.tables import fmt, hdr_table, model_line

REAL_METHODS = {  # key -> table label
    "model": "model",
    "model_no_hallucination": "model, no hallucination (g(D))",
    "model_debevec_curve": "model with the Debevec curve (oracle)",
    "inverse_srgb": "inverse sRGB (no hallucination)",
    "gamma_2.2": "inverse gamma 2.2 (no hallucination)",
    "debevec_curve": "Debevec curve of this camera (oracle, no hallucination)",
}


def real_tables(records, methods):
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
    runtime, apply_curves_fn = traced(model)
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
            reference = Reference(stack.hdr, ldr, pu21_peak, pu21_percentile)
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
    result.update(real_tables(records, methods))
    result["per_stack"] = {
        s["name"]: real_tables([r for r in records if r["stack"] == s["name"]], methods) for s in stacks
    }
    result["per_image"] = records
    result["config"]["seconds"] = round(time.perf_counter() - start, 3)
    return result


def markdown_real(result):
    """The tables of a result of :func:`evaluate_real` as Markdown."""
    config, tables, counts = result["config"], result["tables"], result["counts"]
    methods = list(config["methods"])
    lines = ["# Real-camera evaluation (exposure stacks)", "", f"- Model: {model_line(config)}"]
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
        lines.append(f"| {CURVE_LABELS[method]} | {fmt(row['crf_rmse'], 4)} |")
    lines += hdr_table("Final HDR vs the merged stack (after scale matching)", tables["hdr"], config["methods"])
    lines += [
        "",
        "## Per exposure: PU21 PSNR (dB), over-exposed pixels in brackets",
        "",
        "| stack | file | stops | over-exp. | " + " | ".join(methods) + " |",
        "|---|---|---:|---:|" + "---:|" * len(methods),
    ]
    for r in result["per_image"]:
        cells = [f"{fmt(r['hdr'][m]['pu21_psnr'])} ({fmt(r['hdr'][m]['pu21_psnr_overexposed'])})" for m in methods]
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
