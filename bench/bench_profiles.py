"""What a camera profile buys on real photos: PU21 of single exposures of real stacks, per method.

Usage (from the repository root)::

    python bench/bench_profiles.py                       # ../shared/data/real, the shipped lite weights
    python bench/bench_profiles.py --weights FILE --out profiles.json

Runs :func:`hdr_keras.evaluate.evaluate_real` (every aligned single exposure against the stack's
merged HDR) for the model, inverse sRGB and the stack's own Debevec curve, then scores with the
same reference (:class:`hdr_keras.evaluate.Reference`) the model given a camera profile
calibrated by :func:`hdr_keras.calibrate.calibrate` on all frames of the stack (``model_profile``,
in-sample like the Debevec oracle) and on the *other* frames (``model_profile_loo``:
leave-one-out, the profile never saw the photo it is used on), and those curves alone (no
hallucination: ``profile_curve``, ``profile_loo_curve``). It also places each stack's curve
among the modern camera curves (``modern_curves.npz``): RMSE to the nearest ones and to inverse
sRGB, and the fraction of the grid where it lies inside their envelope. Prints Markdown tables. A
script that reports numbers, not a test.
"""

import argparse
import json
import pathlib
import sys

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hdr_keras import calibrate, crf, evaluate, pretrained, response_fit  # noqa: E402
from hdr_keras import stack as stack_lib  # noqa: E402
from hdr_keras.paths import SHARED_DATA  # noqa: E402

KEYS = ("pu21_psnr", "pu21_psnr_overexposed", "log_psnr")


def loo_profiles(folder, files, frame_count):
    """Per frame of the stack: the profile calibrated on the other frames (sorted by time)."""
    stack = calibrate.load_stack(folder.name, [folder / f for f in files])
    out = []
    for e in range(frame_count):
        keep = [i for i in range(frame_count) if i != e]
        part = calibrate.Stack(
            stack.name, tuple(stack.files[i] for i in keep), stack.times[keep], stack.images[keep],
            stack.shifts[keep], stack.misalignment[keep], stack.size, stack.make, stack.model,
        )
        out.append(calibrate.calibrate([part]))
    return out, calibrate.calibrate([stack])


def curve_placement(curve, modern):
    """Where an inverse curve [1024] lies among the modern inverse curves [M, 1024]."""
    rmse = np.sqrt(((modern.inverse - curve) ** 2).mean(axis=1))
    nearest = np.argsort(rmse)[:3]
    inside = (curve >= modern.inverse.min(axis=0) - 1e-6) & (curve <= modern.inverse.max(axis=0) + 1e-6)
    return {
        "nearest": [(str(modern.names[i]), round(float(rmse[i]), 4)) for i in nearest],
        "rmse_inverse_srgb": round(float(np.sqrt(((curve - crf.srgb_inverse_curve()) ** 2).mean())), 4),
        "inside_envelope": round(float(inside.mean()), 3),
    }


def global_curve_residual(stack, curves):
    """How far a global curve explains a stack: each frame pair ``k -> j`` of neighbouring exposures
    predicted through ``curves`` [3, 1024] (8-bit levels): RMSE on all well-exposed pixels, on the
    smoothest 30% (edges and misalignment left out), and the std of the residual's low-frequency
    part there (Gaussian sigma 20 px at the working size), which a local tone mapping would raise."""
    out = {}
    for k, j in [(a, b) for a in range(len(stack.times)) for b in (a - 1, a + 1) if 0 <= b < len(stack.times)]:
        x, y = stack.images[k], stack.images[j]
        diff = response_fit.predict_frame(curves, x, stack.times[j] / stack.times[k]) * 255.0 - y
        lo, hi = response_fit.WELL_EXPOSED
        keep = (x >= lo) & (x <= hi) & (y >= lo) & (y <= hi)
        gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32)
        edges = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
        edges = cv2.dilate(edges, np.ones((5, 5)))
        smooth = keep & (edges < np.percentile(edges, 30))[..., None]
        weight = smooth.mean(axis=-1).astype(np.float32)
        low = cv2.GaussianBlur(np.where(smooth, diff, 0).mean(axis=-1).astype(np.float32), (0, 0), 20)
        low /= np.maximum(cv2.GaussianBlur(weight, (0, 0), 20), 1e-3)
        out[f"{stack.files[k].name}->{stack.files[j].name}"] = {
            "rmse_levels": round(float(np.sqrt(np.mean(diff[keep] ** 2))), 2),
            "rmse_levels_smooth": round(float(np.sqrt(np.mean(diff[smooth] ** 2))), 2),
            "low_frequency_std_levels": round(float(low[weight > 0].std()), 2),
        }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", default=str(SHARED_DATA / "real"))
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--out", default=None, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)

    model = pretrained.build_model(args.preset, pretrained.resolve_weights(args.preset, args.weights))
    result = evaluate.evaluate_real(model, args.stacks)
    table = crf.load_modern()
    modern = crf.CurveTable.from_forward(table.forward, table.names, table.families)
    scores = {m: [] for m in ("model", "inverse_srgb", "debevec_curve", "model_debevec_curve",
                              "profile_curve", "model_profile", "profile_loo_curve", "model_profile_loo")}
    placements = {}
    for stack_info in result["config"]["stacks"]:
        folder = pathlib.Path(stack_info["folder"])
        stack = stack_lib.load_stack(folder, result["config"]["long_side"])
        profiles_loo, profile_all = loo_profiles(folder, stack.files, len(stack.files))
        working = calibrate.load_stack(folder.name, [folder / f for f in stack.files])
        curves = np.repeat(profile_all.inverse_crf[None], 3, axis=0)
        debevec = stack_lib.inverse_curve(stack.response)
        placements[stack.name] = {
            "debevec_1024px": curve_placement(debevec, modern),
            f"profile_{profile_all.method}": curve_placement(profile_all.inverse_crf, modern),
            "global_curve_residual": global_curve_residual(working, curves),
            "profile_vs_debevec_rmse": round(float(np.sqrt(((profile_all.inverse_crf - debevec) ** 2).mean())), 4),
            "profile_loo": [{"method": p.method, "fit_error": p.fit_error["rmse"],
                             "rmse_vs_debevec": round(float(np.sqrt(((p.inverse_crf - debevec) ** 2).mean())), 4)}
                            for p in profiles_loo],
        }
        records = [r for r in result["per_image"] if r["stack"] == stack.name]
        for e, (ldr8, record) in enumerate(zip(stack.images, records)):
            ldr = ldr8.astype(np.float32) / 255.0
            reference = evaluate.Reference(stack.hdr, ldr, 4000.0, 100.0)
            for name in ("model", "inverse_srgb", "debevec_curve", "model_debevec_curve"):
                scores[name].append(record["hdr"][name])
            for name, curve in (("profile", profile_all.inverse_crf), ("profile_loo", profiles_loo[e].inverse_crf)):
                model_out = np.asarray(model(ldr[None], training=False, inverse_crf=curve[None])["hdr"])[0]
                curve_only = np.asarray(evaluate.apply_curves(ldr[None], curve[None]))[0, 0]
                scores[f"model_{name}"].append(reference.scores(model_out))
                scores[f"{name}_curve"].append(reference.scores(curve_only))
    means = {m: {k: float(np.nanmean([s[k] for s in v])) for k in KEYS} for m, v in scores.items()}
    print(f"{len(scores['model'])} single exposures of {len(placements)} real stack(s), preset {args.preset}\n")
    print("| method | PU21 PSNR | PU21 PSNR, over-exposed | log PSNR |\n|---|---|---|---|")
    for name, m in means.items():
        print(f"| {name} | {m['pu21_psnr']:.2f} | {m['pu21_psnr_overexposed']:.2f} | {m['log_psnr']:.2f} |")
    print("\nPer image PU21 PSNR:")
    for i, record in enumerate(r for r in result["per_image"]):
        row = ", ".join(f"{name} {scores[name][i]['pu21_psnr']:.2f}" for name in scores)
        print(f"- {record['stack']}/{record['file']} ({record['exposure_time_s']:g} s): {row}")
    print("\nCurve placement among the modern curves:")
    print(json.dumps(placements, indent=1))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps({"means": means, "per_image": scores, "placement": placements},
                                                     indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
