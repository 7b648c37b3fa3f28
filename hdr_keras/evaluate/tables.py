"""Shared pieces of the reports: number format, the model line, the final-HDR table, JSON output."""

import json
import math
import pathlib

import numpy as np



def fmt(value, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def model_line(config):
    line = f"preset `{config.get('preset', '?')}`"
    if config.get("random_weights"):
        line += ", **random weights (smoke test: the model's numbers are meaningless)**"
    elif config.get("weights"):
        line += f", weights `{pathlib.Path(config['weights']).name}` (sha256 `{config.get('weights_sha256', '?')[:12]}…`)"
    return line


def hdr_table(title, rows, labels):
    """Markdown lines of the final-HDR table: PU21, log and over-exposed PU21 PSNR per method."""
    lines = ["", f"## {title}", "", "| method | PU21 PSNR (dB) | log PSNR (dB) | PU21 PSNR over-exposed (dB) |", "|---|---:|---:|---:|"]
    for method, row in rows.items():
        lines.append(
            f"| {labels.get(method, method)} | {fmt(row['pu21_psnr'])} | {fmt(row['log_psnr'])} | "
            f"{fmt(row['pu21_psnr_overexposed'])} |"
        )
    return lines


def json_safe(value):
    """nan/inf -> None, numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(result, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(result), indent=1, allow_nan=False) + "\n")
