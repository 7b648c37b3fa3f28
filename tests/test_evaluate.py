"""Tests of ``hdr_keras.evaluate`` (the HDR-Synth protocol): tiny synthetic HDR scenes, a random lite model."""

import argparse
import json
import math
import warnings

import cv2
import numpy as np
import pytest
import tensorflow as tf

from hdr_keras import camera, crf, evaluate, io, metrics, precision, pretrained
from hdr_keras import stack as stack_lib

SIZE = 64
CURVES = [0, 5]
EXPOSURES = [-1.0, 2.0]


def _bright_scene(seed):
    """Smooth colours with a small 'sun' 60x brighter: over-exposed at every tested exposure."""
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.uniform(0.05, 1.0, (8, 8, 3)).astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    image[(yy - 20) ** 2 + (xx - 40) ** 2 < 25] *= 60.0
    return image


def _dim_scene(seed):
    """Low dynamic range (max < 2x mean): no over-exposed pixel at -1 stop."""
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.uniform(0.3, 0.9, (8, 8, 3)).astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def hdr_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hdr")
    io.write_exr(folder / "a_bright.exr", _bright_scene(1), half=False)
    io.write_hdr(folder / "b_dim.hdr", _dim_scene(2))
    return folder


@pytest.fixture(scope="module")
def model(lite_model):
    return lite_model


@pytest.fixture(scope="module")
def result(model, hdr_dir):
    return evaluate.evaluate(model, hdr_dir, curves=CURVES, exposures=EXPOSURES, size=SIZE)


def _record(result, file, curve, stops):
    (record,) = [
        r for r in result["per_image"] if r["file"] == file and r["test_curve"] == curve and r["exposure_stops"] == stops
    ]
    return record


def _hand_render(path, curve, stops):
    """The test image rendered here with the camera's building blocks: H t, C, F, Q."""
    scene = io.read_hdr(path)
    scene = scene * np.float32(0.5 / scene.mean(dtype=np.float64))  # 64x64 already: no resize, no crop
    forward, inverse = crf.test_curves()
    hdr = scene[None] * np.float32(2.0**stops)
    clipped = camera.clip(hdr)
    pre = camera.apply_curve(clipped, forward[curve][None])
    ldr = camera.quantize(pre)
    return {
        "scene": scene,
        "hdr": hdr[0].astype(np.float64),
        "clipped": np.asarray(clipped)[0],
        "pre": np.asarray(pre)[0],
        "ldr": np.asarray(ldr)[0],
        "inverse": inverse[curve],
        "forward": forward[curve],
    }


# ----------------------------------------------------------------------------- report structure


def test_report_has_every_table_and_baseline(result):
    tables = result["tables"]
    assert set(tables) == {"dequantization", "curve", "hdr"}
    assert list(tables["dequantization"]) == ["model", "input"]
    assert list(tables["curve"]) == ["model", "inverse_srgb", "gamma_2.2", "emor_mean", "true_curve"]
    assert list(tables["hdr"]) == [
        "model", "model_no_hallucination", "model_true_curve", "inverse_srgb", "gamma_2.2", "emor_mean", "true_curve"
    ]
    for row in tables["curve"].values():
        assert set(row) == {"crf_rmse", "linear_psnr"} and all(math.isfinite(v) for v in row.values())
    for row in tables["hdr"].values():
        assert set(row) == {"pu21_psnr", "log_psnr", "pu21_psnr_overexposed"}
        assert all(math.isfinite(v) for v in row.values())
    assert result["counts"]["images"] == 2 * len(CURVES) * len(EXPOSURES) == len(result["per_image"])
    assert set(result["per_exposure"]) == {"-1", "2"}
    assert set(result["per_curve"]) == {"0", "5"}
    assert set(result["per_family"]) == {"dorf"}
    assert result["per_family"]["dorf"]["tables"] == result["tables"]
    parts = list(result["per_exposure"].values()) + list(result["per_curve"].values()) + list(result["per_family"].values())
    for part in parts:
        assert set(part["tables"]) == set(tables)
    config = result["config"]
    assert [p.split("/")[-1] for p in config["files"]] == ["a_bright.exr", "b_dim.hdr"]
    assert config["curves"] == CURVES and config["exposures"] == EXPOSURES and config["size"] == SIZE
    dorf_names = [f"dorf_{i}" for i in crf.load_dorf().test_index[CURVES]]
    assert config["curve_set"] == "dorf" and config["curve_names"] == dorf_names
    assert [result["per_curve"][str(c)]["name"] for c in CURVES] == dorf_names
    assert {r["curve_name"] for r in result["per_image"]} == set(dorf_names)
    assert config["pu21"]["psnr_peak"] == 256.0 and config["pu21"]["peak_cd_m2"] == 4000.0


def test_true_curve_baseline_is_exact_and_best(result):
    curve = result["tables"]["curve"]
    assert curve["true_curve"]["crf_rmse"] == 0.0
    others = [curve[name]["linear_psnr"] for name in ("inverse_srgb", "gamma_2.2", "emor_mean", "model")]
    assert curve["true_curve"]["linear_psnr"] > max(others)
    # the fixed-curve RMSEs are per-curve constants: the mean of the two test curves' RMSEs
    _, inverse = crf.test_curves()
    expected = np.mean([metrics.crf_rmse(evaluate.gamma_curve(), inverse[c]) for c in CURVES])
    assert curve["gamma_2.2"]["crf_rmse"] == pytest.approx(expected, rel=1e-12)
    g0 = crf.load_emor().mean
    expected = np.mean([metrics.crf_rmse(g0, inverse[c]) for c in CURVES])
    assert curve["emor_mean"]["crf_rmse"] == pytest.approx(expected, rel=1e-6)
    expected = np.mean([metrics.crf_rmse(crf.srgb_inverse_curve(), inverse[c]) for c in CURVES])
    assert curve["inverse_srgb"]["crf_rmse"] == pytest.approx(expected, rel=1e-6)


def test_overexposed_average_skips_images_without_clipping(result):
    records = result["per_image"]
    dim_low = [r for r in records if r["file"] == "b_dim.hdr" and r["exposure_stops"] == -1.0]
    assert dim_low and all(r["overexposed_fraction"] == 0.0 for r in dim_low)
    assert all(math.isnan(r["hdr"]["model"]["pu21_psnr_overexposed"]) for r in dim_low)
    assert result["counts"]["overexposed_images"] == len(records) - len(dim_low)
    values = [r["hdr"]["true_curve"]["pu21_psnr_overexposed"] for r in records]
    assert result["tables"]["hdr"]["true_curve"]["pu21_psnr_overexposed"] == pytest.approx(np.nanmean(values), rel=1e-12)
    assert result["tables"]["hdr"]["true_curve"]["pu21_psnr"] == pytest.approx(
        np.mean([r["hdr"]["true_curve"]["pu21_psnr"] for r in records]), rel=1e-12
    )


# ----------------------------------------------------------------------------- hand-worked numbers


def test_dequantization_input_psnr_by_hand(result, hdr_dir):
    for file, curve, stops in (("a_bright.exr", 0, -1.0), ("b_dim.hdr", 5, -1.0)):
        hand = _hand_render(hdr_dir / file, curve, stops)
        record = _record(result, file, curve, stops)
        # psnr(Q(F(C(Ht))), F(C(Ht))) with the camera's ops: exactly the reported value
        assert record["dequantization"]["input"]["psnr"] == metrics.psnr(hand["ldr"], hand["pre"]) < 100
        # and independently in float64 NumPy: 8-bit rounding error of F(C(Ht)) (a few pixels may round apart)
        pre = np.interp(np.minimum(hand["scene"].astype(np.float64) * 2.0**stops, 1.0), crf.GRID, hand["forward"])
        ldr = np.floor(255.0 * pre + 0.5) / 255.0
        assert record["dequantization"]["input"]["psnr"] == pytest.approx(metrics.psnr(ldr, pre), abs=0.05)


def test_gamma_baseline_by_hand(result, hdr_dir):
    file, curve, stops = "a_bright.exr", 0, -1.0
    hand = _hand_render(hdr_dir / file, curve, stops)
    record = _record(result, file, curve, stops)
    ldr = hand["ldr"].astype(np.float64)
    linear = ldr**2.2  # the 1024-sample curve interpolates x^2.2 to ~1e-7
    assert record["curve"]["gamma_2.2"]["linear_psnr"] == pytest.approx(metrics.psnr(linear, hand["clipped"]), abs=1e-3)
    rmse = math.sqrt(np.mean((crf.GRID**2.2 - hand["inverse"].astype(np.float64)) ** 2))
    assert record["curve"]["gamma_2.2"]["crf_rmse"] == pytest.approx(rmse, rel=1e-6)
    # final HDR: scale by the median log ratio over the pixels not over-exposed, then score
    target = hand["hdr"]
    keep = ldr.max(axis=-1) < 249 / 255
    assert 0 < keep.sum() < keep.size
    p, t = linear[keep], target[keep]
    valid = (p > 1e-6) & (t > 1e-6)
    s = math.exp(np.median(np.log(t[valid]) - np.log(p[valid])))
    scores = record["hdr"]["gamma_2.2"]
    assert scores["scale"] == pytest.approx(s, rel=1e-4)
    scaled = linear * s
    assert scores["pu21_psnr"] == pytest.approx(metrics.pu21_psnr(scaled, target), abs=1e-3)
    assert scores["log_psnr"] == pytest.approx(metrics.log_psnr(scaled, target), abs=1e-3)
    over = ~keep
    assert scores["pu21_psnr_overexposed"] == pytest.approx(metrics.pu21_psnr(scaled, target, mask=over), abs=1e-3)
    # PU21 by hand for this convention: max(H t) -> 4000 cd/m^2, channels encoded separately, peak 256
    k = 4000.0 / target.max()
    mse = np.mean((metrics.pu21_encode(scaled * k) - metrics.pu21_encode(target * k)) ** 2)
    assert scores["pu21_psnr"] == pytest.approx(10 * math.log10(256.0**2 / mse), abs=1e-3)


def test_saturated_image_is_capped_and_scaled_on_all_pixels(result, hdr_dir):
    """b_dim at +2 stops is clipped everywhere: PSNRs hit the 100 dB cap, the scale uses all pixels."""
    hand = _hand_render(hdr_dir / "b_dim.hdr", 5, 2.0)
    assert metrics.overexposed_mask(hand["ldr"]).all()
    assert metrics.psnr(hand["ldr"], hand["pre"]) > evaluate.PSNR_CAP
    record = _record(result, "b_dim.hdr", 5, 2.0)
    assert record["dequantization"]["input"]["psnr"] == evaluate.PSNR_CAP
    assert record["overexposed_fraction"] == 1.0
    linear = np.asarray(evaluate.apply_curves(hand["ldr"][None], hand["inverse"][None]))[0, 0]
    assert record["hdr"]["true_curve"]["scale"] == metrics.match_scale(linear, hand["hdr"])[1]


def test_true_curve_hdr_equals_metrics_module(result, hdr_dir):
    """The cached-reference scoring equals metrics.match_scale + pu21_psnr + log_psnr exactly."""
    file, curve, stops = "a_bright.exr", 0, 2.0
    hand = _hand_render(hdr_dir / file, curve, stops)
    linear = np.asarray(evaluate.apply_curves(hand["ldr"][None], hand["inverse"][None]))[0, 0]
    target, ldr = hand["hdr"], hand["ldr"]
    assert 0 < metrics.overexposed_mask(ldr).sum() < ldr.shape[0] * ldr.shape[1]
    scaled, s = metrics.match_scale(linear, target, mask=~metrics.overexposed_mask(ldr))
    scores = _record(result, file, curve, stops)["hdr"]["true_curve"]
    assert scores["scale"] == s
    assert scores["pu21_psnr"] == pytest.approx(metrics.pu21_psnr(scaled, target), rel=1e-12)
    assert scores["log_psnr"] == pytest.approx(metrics.log_psnr(scaled, target), rel=1e-12)
    over = metrics.pu21_psnr(scaled, target, mask=metrics.overexposed_mask(ldr))
    assert scores["pu21_psnr_overexposed"] == pytest.approx(over, rel=1e-12)
    assert _record(result, file, curve, stops)["curve"]["true_curve"]["linear_psnr"] == pytest.approx(
        min(metrics.psnr(linear, hand["clipped"]), evaluate.PSNR_CAP), rel=1e-12
    )


def test_model_rows_come_from_the_model_outputs(result, model, hdr_dir):
    file, curve, stops = "a_bright.exr", 5, 2.0
    hand = _hand_render(hdr_dir / file, curve, stops)
    out = model(hand["ldr"][None], training=False)
    record = _record(result, file, curve, stops)
    assert record["dequantization"]["model"]["psnr"] == pytest.approx(
        metrics.psnr(np.asarray(out["dequantized"])[0], hand["pre"]), abs=1e-3
    )
    assert record["curve"]["model"]["crf_rmse"] == pytest.approx(
        metrics.crf_rmse(np.asarray(out["inverse_crf"])[0], hand["inverse"]), abs=1e-5
    )
    assert record["curve"]["model"]["linear_psnr"] == pytest.approx(
        metrics.psnr(np.asarray(out["linear"])[0], hand["clipped"]), abs=1e-3
    )


# ----------------------------------------------------------------------------- behaviour


def test_evaluation_is_deterministic(result, model, hdr_dir):
    again = evaluate.evaluate(model, hdr_dir, curves=CURVES, exposures=EXPOSURES, size=SIZE)
    assert again["tables"] == result["tables"]
    # nan (no over-exposed pixel) != nan, so compare the JSON texts of the per-image records
    assert json.dumps(evaluate.json_safe(again["per_image"])) == json.dumps(evaluate.json_safe(result["per_image"]))


def test_bad_files_are_skipped_with_a_warning(model, hdr_dir, tmp_path):
    for name in ("a_bright.exr", "b_dim.hdr"):
        (tmp_path / name).write_bytes((hdr_dir / name).read_bytes())
    (tmp_path / "broken.exr").write_bytes(b"not an exr file at all")
    nan_image = _dim_scene(3)
    nan_image[3, 3, 0] = np.nan
    io.write_exr(tmp_path / "c_nan.exr", nan_image, half=False)
    (tmp_path / "notes.txt").write_text("ignored: not an HDR extension")
    with pytest.warns(UserWarning) as caught:
        out = evaluate.evaluate(model, tmp_path, curves=[1], exposures=[0.0], size=SIZE)
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.exr" in messages and "c_nan.exr" in messages
    assert [s["file"].split("/")[-1] for s in out["config"]["skipped"]] == ["broken.exr", "c_nan.exr"]
    assert [p.split("/")[-1] for p in out["config"]["files"]] == ["a_bright.exr", "b_dim.hdr"]
    assert out["counts"]["images"] == 2


def test_no_usable_file_raises(model, tmp_path):
    (tmp_path / "broken.hdr").write_bytes(b"#?RADIANCE\ngarbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="no usable HDR"):
            evaluate.evaluate(model, tmp_path, curves=[0], exposures=[0.0], size=SIZE)


def test_prepare_scene_resizes_short_side_and_crops_the_middle():
    rng = np.random.default_rng(0)
    panorama = rng.uniform(0.0, 4.0, (64, 128, 3)).astype(np.float32)  # 2:1 lat-long
    scene = evaluate.prepare_scene(panorama, 32)
    expected = cv2.resize(panorama, (64, 32), interpolation=cv2.INTER_AREA)[:, 16:48]
    np.testing.assert_allclose(scene, expected * (0.5 / expected.mean(dtype=np.float64)), rtol=1e-6)
    assert scene.shape == (32, 32, 3) and scene.mean() == pytest.approx(0.5, rel=1e-6)
    tall = rng.uniform(0.0, 1.0, (100, 64, 3)).astype(np.float32)  # short side already 64: crop only
    scene = evaluate.prepare_scene(tall, 64)
    np.testing.assert_allclose(scene, tall[18:82] * (0.5 / tall[18:82].mean(dtype=np.float64)), rtol=1e-6)
    with pytest.raises(ValueError):
        evaluate.prepare_scene(np.zeros((64, 64, 3), np.float32), 64)


def test_render_matches_the_camera_model_without_noise():
    rng = np.random.default_rng(1)
    scene = rng.uniform(0.0, 3.0, (16, 16, 3)).astype(np.float32)
    forward, inverse = crf.test_curves()
    images = evaluate.render(scene, forward[2], [-1.0, 1.0])
    cam = camera.CameraModel(forward[2:3], inverse[2:3])
    params = {
        "exposure": tf.constant([0.5, 2.0]),
        "shot_std": tf.zeros([2, 1, 1, 3]),
        "read_std": tf.zeros([2, 1, 1, 3]),
        "curve": tf.zeros([2], tf.int32),
        "quality": tf.constant([100, 100]),
    }
    reference = cam.render(tf.constant(np.stack([scene, scene])), params, tf.constant([0, 0]), use_jpeg=False)
    for key, other in (("hdr", "hdr"), ("clipped", "clipped"), ("pre_quantization", "pre_quantization"), ("ldr", "ldr")):
        np.testing.assert_array_equal(images[key], np.asarray(reference[other]))
    with_jpeg = evaluate.render(scene, forward[2], [0.0], jpeg_quality=90)["ldr"]
    assert with_jpeg.shape == (1, 16, 16, 3) and not np.array_equal(with_jpeg, images["ldr"][:1])


# ----------------------------------------------------------------------------- CLI


def _parse(argv):
    return evaluate.add_arguments(argparse.ArgumentParser()).parse_args(argv)


def test_exposure_and_curve_flags_parse():
    assert evaluate.number_list(_parse(["--exposures=-3,0,3"]).exposures, float) == [-3.0, 0.0, 3.0]
    assert evaluate.number_list(_parse(["--exposures", "-3", "-1.5", "2"]).exposures, float) == [-3.0, -1.5, 2.0]
    assert evaluate.number_list(_parse(["--curves", "0,1", "7"]).curves, int) == [0, 1, 7]
    args = _parse([])
    assert args.exposures is None and args.curves is None and args.size == 512 and args.preset == "lite"
    assert args.hdr_dir.endswith("shared/data/hdr/val")


def test_cli_writes_json_and_markdown(hdr_dir, tmp_path, capsys):
    out, md = tmp_path / "r" / "report.json", tmp_path / "report.md"
    args = _parse([
        "--random_weights", "--hdr_dir", str(hdr_dir), "--size", str(SIZE), "--curves", "0,1",
        "--exposures=-1,1", "--out", str(out), "--markdown", str(md), "--quiet",
    ])
    assert evaluate.run(args) == 0
    assert capsys.readouterr().out == ""  # --quiet

    def no_nan(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    report = json.loads(out.read_text(), parse_constant=no_nan)
    config = report["config"]
    assert list(report)[0] == "config"
    assert config["preset"] == "lite" and config["random_weights"] is True
    assert config["weights"] is None and config["weights_sha256"] is None
    assert config["hdr_dir"] == str(hdr_dir) and config["seconds"] > 0
    assert report["counts"]["images"] == 8 and len(report["per_image"]) == 8
    text = md.read_text()
    assert "random weights" in text
    for heading in ("Dequantization (paper Table 2)", "Camera curve and linear image (paper Table 3)", "Final HDR"):
        assert heading in text
    for table in text.split("\n## ")[1:4]:
        rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| method")]
        assert rows[0].startswith("| model")
    for label in ("inverse sRGB", "inverse gamma 2.2", "EMoR mean curve g0", "true curve"):
        assert text.count(label) >= 2  # in Table 3 and in the HDR table
    assert "## Per curve family" in text and "| 2 curve(s) | dorf | 8 |" in text
    assert f"| 1 `dorf_{crf.load_dorf().test_index[1]}` | dorf | 4 |" in text
    assert config["dtype"] == "float32" and config["dtype_reason"] == "asked for"


def test_cli_prints_markdown_and_reports_weights_sha(hdr_dir, tmp_path, capsys, model):
    weights = tmp_path / "lite.weights.h5"
    model.save_weights(weights)
    out = tmp_path / "report.json"
    args = _parse([
        "--weights", str(weights), "--hdr_dir", str(hdr_dir / "a_bright.exr"), "--size", str(SIZE),
        "--curves", "3", "--exposures", "0", "--out", str(out),
    ])
    assert evaluate.run(args) == 0
    printed = capsys.readouterr().out
    assert "## Dequantization" in printed and "lite.weights.h5" in printed
    config = json.loads(out.read_text())["config"]
    assert config["weights_sha256"] == pretrained.sha256(weights) and config["random_weights"] is False


def test_cli_refuses_to_run_without_weights(monkeypatch, hdr_dir, capsys):
    monkeypatch.setattr(pretrained, "shipped_weights", lambda preset: None)
    assert evaluate.run(_parse(["--hdr_dir", str(hdr_dir), "--size", str(SIZE), "--quiet"])) == 2
    err = capsys.readouterr().err
    assert "no weights are shipped" in err and "--weights" in err and "--random_weights" in err
    assert evaluate.run(_parse(["--weights", "/nonexistent.weights.h5", "--quiet"])) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_rejects_bad_flags(capsys):
    assert evaluate.run(_parse(["--random_weights", "--exposures", "x", "--quiet"])) == 2
    assert evaluate.run(_parse(["--random_weights", "--jpeg_quality", "0", "--quiet"])) == 2
    with pytest.raises(SystemExit):
        _parse(["--random_weights", "--weights", "w.h5"])


# ----------------------------------------------------------------------------- curve sets and JPEG


def test_modern_curve_set_names_families_and_tables(model, hdr_dir):
    table = crf.curve_table("modern", "test")
    picks = [0, len(table) - 1]
    assert table.families[picks[0]] != table.families[picks[1]]
    out = evaluate.evaluate(model, hdr_dir / "a_bright.exr", curve_set="modern", curves=picks, exposures=[0.0],
                            size=SIZE, oracle_curve=False)
    assert out["config"]["curve_names"] == [str(table.names[c]) for c in picks]
    assert list(out["per_family"]) == [str(table.families[c]) for c in picks]
    for c in picks:
        part = out["per_curve"][str(c)]
        assert (part["name"], part["family"]) == (str(table.names[c]), str(table.families[c]))
        assert part["tables"]["curve"]["true_curve"]["crf_rmse"] == 0.0
        assert part["tables"]["curve"]["inverse_srgb"]["crf_rmse"] == pytest.approx(
            metrics.crf_rmse(crf.srgb_inverse_curve(), table.inverse[c]), rel=1e-6
        )
    with pytest.raises(ValueError, match="modern test curves"):
        evaluate.evaluate(model, hdr_dir, curve_set="modern", curves=[len(table)], exposures=[0.0], size=SIZE)


def test_model_true_curve_row_is_the_model_given_the_true_curve(result, model, hdr_dir):
    file, curve, stops = "a_bright.exr", 5, 2.0
    hand = _hand_render(hdr_dir / file, curve, stops)
    hdr = np.asarray(model(hand["ldr"][None], training=False, inverse_crf=hand["inverse"][None])["hdr"])[0]
    reference = evaluate.Reference(hand["hdr"], hand["ldr"], 4000.0, 100.0)
    expected = reference.scores(hdr)["pu21_psnr"]
    assert _record(result, file, curve, stops)["hdr"]["model_true_curve"]["pu21_psnr"] == pytest.approx(expected, abs=1e-3)


def _chroma(rgb):
    return cv2.cvtColor(np.asarray(np.round(rgb * 255), np.uint8), cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float64)


def test_render_jpeg_subsamples_chroma_4_2_0():
    """Chroma that alternates every row or every column is averaged away (4:2:0), as in camera JPEGs."""
    a, b = np.array([180, 100, 140]) / 255.0, np.array([76, 150, 100]) / 255.0
    for axis in (0, 1):
        stripes = (np.arange(32) % 2 == 0)[:, None] if axis == 0 else (np.arange(32) % 2 == 0)[None, :]
        scene = np.where(np.broadcast_to(stripes, (32, 32))[..., None], a, b).astype(np.float32)
        ldr = evaluate.render(scene, crf.GRID, [0.0], jpeg_quality=100)["ldr"][0]  # identity curve
        before, after = _chroma(scene), _chroma(ldr)
        step = np.abs(np.diff(before, axis=axis)).mean()
        assert step > 40 and np.abs(np.diff(after, axis=axis)).mean() < 0.1 * step


# ----------------------------------------------------------------------------- real exposure stacks

STACK_TIMES = (0.25, 1.0, 4.0)
STACK_SHIFTS = {0.25: (2, -1), 1.0: (0, 0), 4.0: (-3, 2)}  # (dx, dy) MTB must find for each frame


def _write_stack(folder, n=96, margin=8):
    """Frames of a textured radiance map through DoRF test curve 0, each cropped at a known offset.

    Frame t shows ``radiance[margin + dy + y, margin + dx + x] * t / 4``, so shifting it by
    ``(dx, dy)`` aligns it to the middle frame. Returns the radiance map and the true inverse curve.
    """
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.uniform(0, 1, (24, 24, 3)).astype(np.float32), (n + 2 * margin,) * 2,
                         interpolation=cv2.INTER_CUBIC)
    radiance = np.exp(3.0 * (texture - 0.5)).astype(np.float32)
    forward, inverse = crf.test_curves()
    folder.mkdir(parents=True)
    rows = ["file\texposure_time_s\tnote"]
    for i, t in enumerate(STACK_TIMES):
        dx, dy = STACK_SHIFTS[t]
        window = radiance[margin + dy : margin + dy + n, margin + dx : margin + dx + n] * (t / 4.0)
        ldr = np.floor(255 * np.interp(np.minimum(window, 1.0), crf.GRID, forward[0]) + 0.5).astype(np.uint8)
        cv2.imwrite(str(folder / f"frame_{i}.png"), cv2.cvtColor(ldr, cv2.COLOR_RGB2BGR))
        rows.append(f"frame_{i}.png\t{'1/4' if t == 0.25 else t}\tsynthetic")
    rows[1:] = rows[:0:-1]  # file order is not exposure order
    (folder / "exposures.tsv").write_text("\n".join(rows) + "\n")
    return radiance, inverse[0]


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    truth = _write_stack(root / "synthetic")
    return root, truth


def test_stack_merge_recovers_shifts_curve_and_radiance(stack_dir):
    root, (radiance, true_inverse) = stack_dir
    merged = stack_lib.load_stack(root / "synthetic", long_side=None)
    np.testing.assert_array_equal(merged.times, STACK_TIMES)
    assert merged.files == ("frame_0.png", "frame_1.png", "frame_2.png")  # sorted by time, not by file order
    assert merged.shifts.tolist() == [list(STACK_SHIFTS[t]) for t in STACK_TIMES]
    # aligned crop: the pixels every frame covers, in the middle frame's coordinates
    assert merged.images.shape == (3, 96 - 2 - 1, 96 - 2 - 3, 3) and merged.hdr.shape == merged.images.shape[1:]
    np.testing.assert_array_equal(merged.images[1], cv2.cvtColor(cv2.imread(str(root / "synthetic/frame_1.png")),
                                                                  cv2.COLOR_BGR2RGB)[2:95, 2:93])
    assert metrics.crf_rmse(stack_lib.inverse_curve(merged.response), true_inverse) < 0.01
    truth = radiance[8 + 2 : 8 + 95, 8 + 2 : 8 + 93]
    scaled, _ = metrics.match_scale(merged.hdr, truth)
    assert np.median(np.abs(np.log(scaled) - np.log(truth))) < 0.03
    assert metrics.pu21_psnr(scaled, truth) > 30.0


def test_stack_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no exposures.tsv"):
        stack_lib.find_stacks(tmp_path)
    (tmp_path / "exposures.tsv").write_text("file\ttime\na.jpg\t1\n")
    with pytest.raises(ValueError, match="exposures.tsv.*exposure_time_s"):
        stack_lib.read_exposures(tmp_path)
    (tmp_path / "exposures.tsv").write_text("file\texposure_time_s\na.jpg\t1/80\nb.jpg\t1/20\n")
    assert stack_lib.read_exposures(tmp_path) == [("a.jpg", 1 / 80), ("b.jpg", 1 / 20)]
    with pytest.raises(ValueError, match="a.jpg: cannot read"):
        stack_lib.read_frames(tmp_path)


def test_real_protocol_scores_each_aligned_frame(stack_dir, model):
    root, _ = stack_dir
    out = evaluate.evaluate_real(model, root, long_side=None)
    assert [s["name"] for s in out["config"]["stacks"]] == ["synthetic"]
    assert out["counts"]["images"] == 3 and [r["exposure_stops"] for r in out["per_image"]] == [-2.0, 0.0, 2.0]
    hdr = out["tables"]["hdr"]
    assert list(hdr) == ["model", "model_no_hallucination", "model_debevec_curve", "inverse_srgb", "gamma_2.2",
                         "debevec_curve"]
    assert list(out["tables"]["curve"]) == ["model", "inverse_srgb", "gamma_2.2"]
    # the camera's own curve reproduces the merge far better than a fixed curve
    assert hdr["debevec_curve"]["pu21_psnr"] > hdr["inverse_srgb"]["pu21_psnr"] + 2
    merged = stack_lib.load_stack(root / "synthetic", long_side=None)
    frame = merged.images[0]
    reference = evaluate.Reference(merged.hdr, frame / 255.0, 4000.0, 100.0)
    expected = reference.scores(stack_lib.apply_response(frame, merged.response))
    assert out["per_image"][0]["hdr"]["debevec_curve"]["pu21_psnr"] == pytest.approx(expected["pu21_psnr"], rel=1e-9)
    text = evaluate.markdown_real(out)
    assert "Debevec curve of this camera" in text and "frame_0.png" in text


def test_cli_real_stack_with_dtype_auto_writes_reports(stack_dir, tmp_path, capsys):
    root, _ = stack_dir
    out, md = tmp_path / "real.json", tmp_path / "real.md"
    args = _parse(["--random_weights", "--real_stack", str(root), "--long_side", "64", "--dtype", "auto",
                   "--no_oracle_curve", "--out", str(out), "--markdown", str(md), "--quiet"])
    assert evaluate.run(args) == 0
    dtype, reason = precision.resolve("auto")
    assert f"compute dtype {dtype} ({reason})" in capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["config"]["dtype"] == dtype and report["config"]["dtype_reason"] == reason
    assert report["config"]["long_side"] == 64 and "hdr_dir" not in report["config"]
    assert report["config"]["stacks"][0]["aligned_size_hw"][0] <= 64
    assert "model_debevec_curve" not in report["tables"]["hdr"]
    assert "# Real-camera evaluation" in md.read_text()
    assert evaluate.run(_parse(["--random_weights", "--real_stack", str(tmp_path / "none"), "--quiet"])) == 2
    assert "none: exposure-stack folder not found" in capsys.readouterr().err
