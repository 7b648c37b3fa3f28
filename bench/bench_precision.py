"""Accuracy of bfloat16 against float32 compute on the evaluate protocol (same LDRs, same weights).

Usage (from the repository root)::

    python bench/bench_precision.py                                  # val, DoRF curves, -3/0/+3 stops
    python bench/bench_precision.py --exposures=-3,-2,-1,0,1,2,3 --out precision.json

Builds the model twice from one weights file (default: the weights shipped for ``--preset``),
under the ``float32`` and the ``mixed_bfloat16`` policy (:mod:`hdr_keras.precision`), and runs
:func:`hdr_keras.evaluate.evaluate` with each on the same rendered LDRs. It prints one Markdown
table: per dtype the protocol's key means (dequantization PSNR, inverse-curve RMSE, PU21 PSNR
overall and over-exposed, log PSNR, seconds), and the relative difference of the final ``hdr``
of the two runs, ``|hdr_bf16 - hdr_f32| / max(|hdr_f32|, 0.01)`` per element: its mean and
maximum over all elements of all images, and the mean over images of each image's maximum. The
float32 outputs are held in memory until the bfloat16 run has compared them (about 3 MB per
512x512 image). A script that reports numbers, not a test.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hdr_keras import crf, evaluate, precision, pretrained  # noqa: E402
from hdr_keras.paths import DEFAULT_VAL_DIR  # noqa: E402

REL_FLOOR = 0.01
DEFAULT_EXPOSURES = "-3,0,3"


def _run(dtype, weights, args, on_outputs):
    with precision.policy_scope(dtype):
        model = pretrained.build_model(args.preset, weights)
    start = time.perf_counter()
    result = evaluate.evaluate(
        model,
        args.hdr_dir,
        curve_set=args.curve_set,
        curves=args.curves,
        exposures=args.exposures,
        size=args.size,
        jpeg_quality=args.jpeg_quality,
        max_images=args.max_images,
        oracle_curve=False,
        on_outputs=on_outputs,
    )
    return result, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--weights", default=None, help="default: the weights shipped for --preset")
    parser.add_argument("--hdr_dir", default=str(DEFAULT_VAL_DIR))
    parser.add_argument("--curve_set", default="dorf", choices=crf.CURVE_SETS)
    parser.add_argument("--curves", default=None, help="e.g. 0,1 (default: all)")
    parser.add_argument("--exposures", default=DEFAULT_EXPOSURES, help="stops (default: %(default)s)")
    parser.add_argument("--size", type=int, default=evaluate.DEFAULT_SIZE)
    parser.add_argument("--max_images", type=int, default=None)
    parser.add_argument("--jpeg_quality", type=int, default=None)
    parser.add_argument("--out", default=None, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    args.curves = None if args.curves is None else evaluate.number_list([args.curves], int)
    args.exposures = evaluate.number_list([args.exposures], float)
    weights = pretrained.resolve_weights(args.preset, args.weights)

    reference = {}

    def keep(context, images, outputs):
        reference[context["file"], context["test_curve"]] = outputs["hdr"], outputs["inverse_crf"]

    diffs, curve_diffs = [], []

    def compare(context, images, outputs):
        base, base_curve = reference.pop((context["file"], context["test_curve"]))
        rel = np.abs(outputs["hdr"] - base) / np.maximum(np.abs(base), REL_FLOOR)
        diffs.extend((float(r.mean()), float(r.max())) for r in rel)
        curve_diffs.append(float(np.abs(outputs["inverse_crf"] - base_curve).max()))

    runs = {}
    for dtype, hook in (("float32", keep), ("bfloat16", compare)):
        result, seconds = _run(dtype, weights, args, hook)
        tables = result["tables"]
        runs[dtype] = {
            "dequantization_psnr": tables["dequantization"]["model"]["psnr"],
            "crf_rmse": tables["curve"]["model"]["crf_rmse"],
            "pu21_psnr": tables["hdr"]["model"]["pu21_psnr"],
            "pu21_psnr_overexposed": tables["hdr"]["model"]["pu21_psnr_overexposed"],
            "log_psnr": tables["hdr"]["model"]["log_psnr"],
            "inverse_srgb_pu21_psnr": tables["hdr"]["inverse_srgb"]["pu21_psnr"],
            "seconds": seconds,
        }
        images = result["counts"]["images"]
    means, maxima = np.asarray(diffs).T
    relative = {"mean": float(means.mean()), "max": float(maxima.max()), "mean_of_image_max": float(maxima.mean())}
    curve_max_abs = max(curve_diffs)

    config = {
        "preset": args.preset, "weights": str(weights), "weights_sha256": pretrained.sha256(weights),
        "hdr_dir": args.hdr_dir, "curve_set": args.curve_set, "curves": args.curves, "exposures": args.exposures,
        "size": args.size, "jpeg_quality": args.jpeg_quality, "images": images, "relative_floor": REL_FLOOR,
        "bf16_cpu_flags": list(precision.cpu_bf16_flags()),
    }
    print(f"{images} LDR images ({args.curve_set} curves, stops {args.exposures}, {args.size} px) of "
          f"{args.hdr_dir}; weights {pathlib.Path(weights).name}; CPU bf16 flags: "
          f"{', '.join(config['bf16_cpu_flags']) or 'none'}\n")
    print("| dtype | dequant. PSNR | curve RMSE | PU21 PSNR | PU21 over-exp. | log PSNR | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for dtype, row in runs.items():
        print(f"| {dtype} | {row['dequantization_psnr']:.3f} | {row['crf_rmse']:.5f} | {row['pu21_psnr']:.3f} | "
              f"{row['pu21_psnr_overexposed']:.3f} | {row['log_psnr']:.3f} | {row['seconds']:.0f} |")
    print(f"\nhdr, bfloat16 vs float32, |a - b| / max(|b|, {REL_FLOOR:g}): mean {relative['mean']:.2e}, "
          f"max {relative['max']:.2e}, mean of per-image max {relative['mean_of_image_max']:.2e}")
    print(f"inverse curve, bfloat16 vs float32: max abs difference {curve_max_abs:.2e} over all images")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps({"config": config, "runs": runs, "hdr_relative_difference": relative,
                                                     "inverse_crf_max_abs_difference": curve_max_abs},
                                                     indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
