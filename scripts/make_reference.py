"""Writes the reference numbers of the shipped weights that ``tests/test_shipped_weights.py`` checks.

    python scripts/make_reference.py          # -> tests/data/shipped_lite_reference.json

Run it after replacing ``hdr_keras/assets/weights/lite.weights.h5`` (and update the sha256 in
MODEL_CARD.md): it runs the shipped ``lite`` model on ``examples/sample.jpg`` downscaled to
512x128 and stores the weights' sha256, 17 samples of the estimated inverse camera curve and
statistics of every output, with the tolerances the test applies.
"""

import json
import pathlib

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
PRESET = "lite"
SAMPLE = REPO / "examples" / "sample.jpg"
REFERENCE = REPO / "tests" / "data" / f"shipped_{PRESET}_reference.json"
SIDE = 512
"""The sample (1024x256) is downscaled with area interpolation to this long side: 512x128."""
CURVE_POINTS = 17
TOLERANCES = {"curve": 2e-3, "relative": 1e-2, "absolute": 1e-4}
"""Curve samples: absolute (curves are in [0, 1]); statistics: |x - ref| <= absolute + relative |ref|."""


def reference_input():
    """The sample photo at SIDE on its long side: float32 [1, 128, 512, 3] in [0, 1]."""
    from hdr_keras import engine, io

    return engine.downscale(io.read_ldr(SAMPLE), SIDE)[None]


def _stats(x):
    x = np.asarray(x, np.float64)
    return {
        "mean_rgb": [float(v) for v in x.reshape(-1, 3).mean(axis=0)],
        "p50": float(np.percentile(x, 50)),
        "p99": float(np.percentile(x, 99)),
        "max": float(x.max()),
    }


def reference_numbers(model, ldr):
    """Curve samples and output statistics of ``model`` (a SingleHDR) on ``ldr`` [1, H, W, 3], JSON-ready."""
    out = {key: np.asarray(value)[0] for key, value in model(ldr, training=False).items()}
    curve = out["inverse_crf"]
    index = np.round(np.linspace(0, curve.shape[-1] - 1, CURVE_POINTS)).astype(int)
    return {
        "curve_index": [int(i) for i in index],
        "curve": [float(curve[i]) for i in index],
        "dequantized_mean_abs_correction_255": float(np.mean(np.abs(out["dequantized"] - ldr[0])) * 255.0),
        "linear": _stats(out["linear"]),
        "hallucinated": _stats(out["hallucinated"]),
        "hdr": _stats(out["hdr"]),
        "hdr_fraction_above_1": float(np.mean(out["hdr"] > 1.0)),
    }


def main():
    from hdr_keras import pretrained

    weights = pretrained.shipped_weights(PRESET)
    if weights is None:
        raise SystemExit(f"no shipped weights for preset '{PRESET}' in {pretrained.WEIGHTS_DIR}")
    ldr = reference_input()
    numbers = reference_numbers(pretrained.build_model(PRESET, weights), ldr)
    record = {
        "preset": PRESET,
        "weights": weights.name,
        "weights_sha256": pretrained.sha256(weights),
        "input": f"{SAMPLE.relative_to(REPO)} downscaled to {ldr.shape[2]}x{ldr.shape[1]}",
        "tolerances": TOLERANCES,
        **numbers,
    }
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {REFERENCE.relative_to(REPO)} for {weights.name} (sha256 {record['weights_sha256'][:12]}...)")


if __name__ == "__main__":
    main()
