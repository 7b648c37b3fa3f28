"""The native-resolution highlight protocol: whole scenes at their own size, scored inside the clipped regions.

Every HDR scene of ``hdr_dir`` is used whole, at its own resolution (no resize, no crop), exposed so
that ``share`` of its pixels reach the clip level in some channel (for each of ``shares``), put
through one of the test curves of ``curve_set`` and 8-bit JPEG 4:2:0 at one of ``qualities`` (both
cycled over the renders), and reconstructed with the engine, exactly as ``predict`` does it.
Beside PU21 (whole image and inside the over-exposed pixels) it reports the highlight-fidelity
figures of :mod:`hdr_keras.highlights`, the same for inverse sRGB (the photo linearised,
clipped areas left as they are), and for the model given the render's true curve instead of its
own estimate (an oracle: what the fill alone scores, the curve's error taken out). ``sheet``: a
PNG contact sheet of the worst crops (largest chromaticity error), each row the photo, the
reconstruction and the truth, 3 stops darker.
"""

import numpy as np

from hdr_keras import crf, highlights, io
from hdr_keras.evaluate.scoring import Reference

DEFAULT_SHARES = (0.03, 0.10, 0.25)
DEFAULT_QUALITIES = (85, 90, 95)
SHEET_CROP = 256
SHEET_ROWS = 8
SHEET_STOPS = -3.0
METHODS = ("model", "inverse_srgb", "model_true_curve")
"""Record and summary keys: the engine with its own curve, inverse sRGB, the engine given the true curve."""
HEADERS = {"model": "model", "inverse_srgb": "inverse sRGB", "model_true_curve": "model with the true curve (oracle)"}
FIGURES = ("pu21_psnr", "pu21_psnr_overexposed", "chroma_error", "colour_cast", "dark_share", "hole_share", "speckle")


def exposure_for_share(scene, share):
    """The factor that puts ``share`` of the pixels of ``scene`` [H, W, 3] at or above 1 in some channel."""
    level = float(np.quantile(scene.max(axis=-1), 1.0 - share))
    return 1.0 / level if level > 0 else 1.0


def score(reference, pred, photo):
    """PU21 (whole, over-exposed; :class:`~hdr_keras.evaluate.scoring.Reference`'s scale match) and the
    highlight fidelity of ``pred`` [H, W, 3], ``photo`` the clipped photo through the method's own curve
    (at ``pred``'s scale); returns (figures, ``pred`` at the reference's scale)."""
    scores = reference.scores(pred)
    scaled = np.asarray(pred, np.float64) * scores["scale"]
    photo = np.asarray(photo, np.float64) * scores["scale"]
    figures = {key: scores[key] for key in ("pu21_psnr", "pu21_psnr_overexposed")}
    return {**figures, **highlights.fidelity(scaled, reference.target, reference.over, photo)}, scaled


def _display(image, stops=SHEET_STOPS):
    return (np.clip(image * 2.0**stops, 0.0, 1.0) ** (1 / 2.2) * 255.0 + 0.5).astype(np.uint8)


def _worst_crop(over, shape, side=SHEET_CROP):
    """Top-left corner of a ``side`` square around the centroid of the largest over-exposed region."""
    import cv2

    count, labels, stats, centroids = cv2.connectedComponentsWithStats(over.astype(np.uint8))
    if count < 2:
        return 0, 0
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    cx, cy = centroids[biggest]
    top = int(np.clip(cy - side // 2, 0, max(0, shape[0] - side)))
    left = int(np.clip(cx - side // 2, 0, max(0, shape[1] - side)))
    return top, left


def evaluate_native(engine, hdr_dir, crf_dir=crf.DEFAULT_CRF_DIR, curve_set="modern", shares=DEFAULT_SHARES,
                    qualities=DEFAULT_QUALITIES, max_images=None, sheet=None, pu21_peak=4000.0, pu21_percentile=100.0,
                    oracle_curve=True, progress=True):
    """Runs the protocol (module doc) with an :class:`hdr_keras.engine.Engine`; returns the report dict
    (``oracle_curve=False`` leaves out ``model_true_curve``, one of two engine calls per render)."""
    from tqdm import tqdm

    from hdr_keras.evaluate.scenes import render  # the synthetic camera of the other protocols

    forward, inverse = crf.test_curves(crf_dir, curve_set)
    srgb = crf.srgb_inverse_curve()
    paths = io.list_images(hdr_dir, io.HDR_EXTS)[:max_images]
    records, crops, index = [], [], 0
    for path in tqdm(paths, desc="native", unit="scene", disable=not progress):
        scene = np.maximum(io.read_hdr(path).astype(np.float32), 0.0)
        io.validate_hdr(scene, path)
        for share in shares:
            truth = scene * exposure_for_share(scene, share)
            curve, quality = index % len(forward), qualities[index % len(qualities)]
            index += 1
            ldr = render(truth, forward[curve], [0.0], jpeg_quality=quality)["ldr"][0]
            reference = Reference(truth, ldr, pu21_peak, pu21_percentile)
            over = reference.over
            result = engine.reconstruct(ldr)  # the photo through each method's own [1024] curve, for hole_share:
            model, scaled = score(reference, result.hdr, np.interp(ldr, crf.GRID, result.inverse_crf))
            linear_srgb = np.interp(ldr, crf.GRID, srgb)
            baseline, _ = score(reference, linear_srgb, linear_srgb)  # inverse sRGB fills nothing
            records.append({"scene": path.name, "share": share, "curve": int(curve), "jpeg_quality": quality,
                            "overexposed": float(over.mean()), "model": model, "inverse_srgb": baseline})
            if oracle_curve:
                oracle = engine.reconstruct(ldr, inverse_crf=inverse[curve])
                records[-1]["model_true_curve"], _ = score(reference, oracle.hdr, np.interp(ldr, crf.GRID, inverse[curve]))
            if sheet is not None and over.any():
                top, left = _worst_crop(over, over.shape)
                window = np.s_[top : top + SHEET_CROP, left : left + SHEET_CROP]
                row = np.concatenate([(ldr[window] * 255 + 0.5).astype(np.uint8), _display(scaled[window]),
                                      _display(truth[window])], axis=1)
                crops.append((model["chroma_error"], row))
    summary = {}
    methods = [m for m in METHODS if oracle_curve or m != "model_true_curve"]
    for method in methods:
        values = {key: [r[method][key] for r in records] for key in FIGURES}
        summary[method] = {key: float(np.nanmean(v)) for key, v in values.items()}
        errors = np.sort(np.asarray(values["chroma_error"], np.float64))
        errors = errors[np.isfinite(errors)]
        summary[method]["chroma_error_worst_tenth"] = float(errors[-max(1, len(errors) // 10):].mean())
    if sheet is not None and crops:
        crops.sort(key=lambda item: -item[0])
        width = max(row.shape[1] for _, row in crops)
        rows = [np.pad(row, ((0, SHEET_CROP - row.shape[0]), (0, width - row.shape[1]), (0, 0))) for _, row in crops[:SHEET_ROWS]]
        io.write_png(sheet, np.concatenate(rows, axis=0))
    config = {"protocol": "native", "methods": methods, "hdr_dir": str(hdr_dir), "curve_set": curve_set, "shares": list(shares),
              "jpeg_qualities": list(qualities), "scenes": len(paths), "renders": len(records)}
    return {"config": config, "summary": summary, "records": records}


def markdown_native(result):
    """The protocol's summary table: one row per figure, model beside inverse sRGB and the true-curve oracle."""
    summary = result["summary"]
    labels = {
        "pu21_psnr": "PU21 PSNR, whole image (dB, higher is better)",
        "pu21_psnr_overexposed": "PU21 PSNR, over-exposed pixels (dB)",
        "chroma_error": "chromaticity error in clipped regions (lower is better)",
        "chroma_error_worst_tenth": "  same, worst tenth of the renders",
        "colour_cast": "colour cast (difference of mean chromaticities)",
        "dark_share": "share of filled pixels darker than 0.7x the clipped photo (through the true curve)",
        "hole_share": "share of filled pixels darker than 0.7x the clipped photo (through the method's own curve)",
        "speckle": "speckle (band-passed chromaticity RMS, prediction / truth; 1 = as the truth)",
    }
    c = result["config"]
    lines = [f"Native resolution: {c['scenes']} scenes, {c['renders']} renders ({c['curve_set']} test curves, "
             f"clipped shares {', '.join(f'{s:.0%}' for s in c['shares'])}, JPEG {', '.join(map(str, c['jpeg_qualities']))})",
             "", "| figure | " + " | ".join(HEADERS[m] for m in c["methods"]) + " |", "|---" * (1 + len(c["methods"])) + "|"]
    for key, label in labels.items():
        lines.append(f"| {label} | " + " | ".join(f"{summary[m][key]:.4g}" for m in c["methods"]) + " |")
    return "\n".join(lines) + "\n"
