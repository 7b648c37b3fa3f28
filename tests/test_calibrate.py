"""hdr-keras calibrate and camera profiles: recovery of a known curve, the real stack, refusals, lookup."""

import fractions
import json
import pathlib

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from hdr_keras import __main__ as cli
from hdr_keras import calibrate, crf, profiles, response_fit
from hdr_keras import stack as stack_lib
from hdr_keras.paths import SHARED_DATA

REAL_STACK = SHARED_DATA / "real" / "venice_canal_handheld"
FACTORS = (2.0, 4.0, 8.0, 16.0, 32.0)
"""Exposure factors of the synthetic stacks (1 stop apart); EXIF times are these / 1000 s."""


def _exif(make, model, seconds):
    exif = Image.Exif()
    if make:
        exif[0x010F], exif[0x0110] = make, model
    if seconds is not None:
        time = fractions.Fraction(seconds).limit_denominator(1_000_000)
        exif.get_ifd(0x8769)[0x829A] = TiffImagePlugin.IFDRational(time.numerator, time.denominator)
    return exif


def write_stack(folder, inverse_curve=None, factors=FACTORS, size=(384, 256), seed=0, suffix=".png",
                make="Canon", model="Canon EOS 5D Mark II", times=True):
    """Frames of one synthetic scene through the forward curve of ``inverse_curve`` (default sRGB)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    inverse_curve = crf.srgb_inverse_curve() if inverse_curve is None else inverse_curve
    radiance = stack_lib.synthetic_radiance(size[1], size[0], np.random.default_rng(seed))
    frames = stack_lib.render_stack(radiance, factors, crf.invert_curve(inverse_curve))
    paths = []
    for e, (frame, factor) in enumerate(zip(frames, factors)):
        path = folder / f"frame_{e}{suffix}"
        Image.fromarray(frame).save(path, exif=_exif(make, model, factor / 1000 if times else None))
        paths.append(path)
    return paths


def _calibrate(capsys, *argv):
    status = cli.main(["calibrate", *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("name", ["srgb", "gamma_1.8"])
def test_a_synthetic_stack_recovers_its_curve(tmp_path, capsys, name):
    inverse = crf.srgb_inverse_curve() if name == "srgb" else crf.GRID.astype(np.float32) ** 1.8
    write_stack(tmp_path / "stack", inverse)
    status, out, err = _calibrate(capsys, tmp_path / "stack", "--output", tmp_path / "p.json")
    assert status == 0, err
    profile = profiles.load_profile(tmp_path / "p.json")
    assert np.sqrt(np.mean((profile.inverse_crf - inverse) ** 2)) <= 0.01
    assert profile.camera == "canon eos 5d mark ii" and profile.method in response_fit.METHODS
    assert profile.fit_error["held_out"] and set(profile.fit_error["methods"]) == set(response_fit.METHODS)
    assert profile.fit_error["rmse"] < 2 / 255
    assert profile.inverse_crf_rgb is None  # the channels share one curve
    assert len(profile.frames) == len(FACTORS) and "wrote" in out


def test_times_flag_replaces_missing_exif(tmp_path, capsys):
    files = write_stack(tmp_path / "s", times=False)
    status, _, err = _calibrate(capsys, *files, "--output", tmp_path / "p.json")
    assert status == 2 and err.count("\n") == 1 and "no exposure time" in err and "--times" in err
    status, _, err = _calibrate(capsys, *files, "--times", "1/500,1/250,1/125,0.016,0.032", "--output", tmp_path / "p.json")
    assert status == 0, err
    curve = profiles.load_profile(tmp_path / "p.json").inverse_crf
    assert np.sqrt(np.mean((curve - crf.srgb_inverse_curve()) ** 2)) <= 0.01


def test_the_real_stack_calibrates(tmp_path, capsys):
    if not REAL_STACK.is_dir():
        pytest.skip(f"{REAL_STACK} not present")
    status, out, err = _calibrate(capsys, REAL_STACK, "--output", tmp_path / "canon.json")
    assert status == 0, err
    profile = profiles.load_profile(tmp_path / "canon.json")
    assert (profile.make, profile.camera) == ("Canon", "canon eos rebel t2i")
    assert [pathlib.Path(f["file"]).name for f in profile.frames] == ["IMG_4210.jpg", "IMG_4209.jpg", "IMG_4211.jpg"]
    assert [f["exposure_time_s"] for f in profile.frames] == pytest.approx([1 / 320, 1 / 80, 1 / 20])
    assert max(f["misalignment"] for f in profile.frames) < calibrate.MAX_MISALIGNMENT
    assert np.all(np.diff(profile.inverse_crf) >= 0)
    # the curve of the evaluate protocol's Debevec calibration of the same stack, at 1024 px
    reference = stack_lib.inverse_curve(stack_lib.load_stack(REAL_STACK).response)
    assert np.sqrt(np.mean((profile.inverse_crf - reference) ** 2)) < 0.03
    assert profile.fit_error["held_out"] and 0 < profile.fit_error["rmse"] < 0.15


def _refusal(capsys, *argv):
    status, out, err = _calibrate(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("calibrate: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_refuses_one_frame(tmp_path, capsys):
    files = write_stack(tmp_path, factors=(4.0,))
    assert "at least 2 frames" in _refusal(capsys, *files)


def test_refuses_equal_exposure_times(tmp_path, capsys):
    files = write_stack(tmp_path, factors=(4.0, 4.0, 4.0))
    assert "same exposure time" in _refusal(capsys, tmp_path)
    assert "same exposure time" in _refusal(capsys, *files, "--times", "0.01,0.01,0.01")


def test_refuses_frames_of_different_sizes(tmp_path, capsys):
    write_stack(tmp_path, factors=(4.0, 16.0))
    write_stack(tmp_path / "other", factors=(64.0,), size=(300, 200))
    (tmp_path / "other" / "frame_0.png").rename(tmp_path / "frame_9.png")
    assert "frame_9.png: size 300x200 differs" in _refusal(capsys, tmp_path)


def test_refuses_frames_of_different_cameras(tmp_path, capsys):
    write_stack(tmp_path, factors=(4.0, 16.0))
    write_stack(tmp_path / "other", factors=(64.0,), make="NIKON CORPORATION", model="NIKON D800")
    (tmp_path / "other" / "frame_0.png").rename(tmp_path / "frame_9.png")
    err = _refusal(capsys, tmp_path)
    assert "frame_9.png" in err and "nikon corporation d800" in err and "one camera per profile" in err


def test_refuses_stacks_of_different_cameras(tmp_path, capsys):
    write_stack(tmp_path / "a", factors=(4.0, 16.0))
    write_stack(tmp_path / "b", factors=(4.0, 16.0), make="NIKON CORPORATION", model="NIKON D800")
    assert "different cameras" in _refusal(capsys, tmp_path / "a", tmp_path / "b")


def test_refuses_a_scene_that_moved(tmp_path, capsys):
    write_stack(tmp_path, factors=(4.0, 16.0))
    write_stack(tmp_path / "other", factors=(64.0,), seed=7)  # another scene: nothing aligns
    (tmp_path / "other" / "frame_0.png").rename(tmp_path / "frame_9.png")
    err = _refusal(capsys, tmp_path)
    assert "frame_9.png: the scene moved too much to align" in err


def test_refuses_unreadable_files(tmp_path, capsys):
    write_stack(tmp_path, factors=(4.0, 16.0))
    (tmp_path / "frame_9.jpg").write_bytes(b"not an image")
    assert "frame_9.jpg: cannot read this image" in _refusal(capsys, tmp_path)
    assert "no such file or folder" in _refusal(capsys, tmp_path / "missing")


def test_two_stacks_and_two_frame_stacks(tmp_path, capsys):
    write_stack(tmp_path / "a", factors=(4.0, 16.0), seed=1)
    write_stack(tmp_path / "b", factors=(2.0, 8.0), seed=2)
    status, _, err = _calibrate(capsys, tmp_path / "a", tmp_path / "b", "--output", tmp_path / "p.json")
    assert status == 0, err
    profile = profiles.load_profile(tmp_path / "p.json")
    assert not profile.fit_error["held_out"]  # no stack of 3 frames: in-sample selection
    assert {f["stack"] for f in profile.frames} == {"a", "b"}
    assert np.sqrt(np.mean((profile.inverse_crf - crf.srgb_inverse_curve()) ** 2)) <= 0.01


# ----------------------------------------------------------------------------- profiles


@pytest.mark.parametrize(
    "make, model, key",
    [
        ("Canon", "EOS 5D Mark II", "canon eos 5d mark ii"),
        ("Canon", "Canon EOS 5D Mark II", "canon eos 5d mark ii"),
        (" CANON ", "canon  EOS 5D  Mark II\x00", "canon eos 5d mark ii"),
        ("NIKON CORPORATION", "NIKON D800", "nikon corporation d800"),
        ("NIKON CORPORATION", "D800", "nikon corporation d800"),
        ("Apple", "iPhone 12", "apple iphone 12"),
        ("", "Pixel 7", "pixel 7"),
    ],
)
def test_camera_key_normalises_make_and_model(make, model, key):
    assert profiles.camera_key(make, model.replace("\x00", " ")) == key


def _profile(make="Canon", model="Canon EOS 5D Mark II", curve=None):
    curve = crf.srgb_inverse_curve() if curve is None else curve
    return profiles.Profile(make=make, model=model, method="debevec", inverse_crf=curve)


def test_saved_profiles_are_found_by_normalised_camera(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert profiles.profile_dir() == tmp_path / "data" / "hdr_keras" / "camera_profiles"
    path = profiles.save_profile(_profile(make="Canon", model="EOS 5D Mark II"))
    assert path.parent == profiles.profile_dir() and path.name == "canon-eos-5d-mark-ii.json"
    assert profiles.find_profile("Canon", "Canon EOS 5D Mark II") == path
    assert profiles.find_profile("canon", "EOS 5D  Mark II") == path
    assert profiles.find_profile("Canon", "EOS 6D") is None and profiles.find_profile(None, None) is None
    photo = write_stack(tmp_path / "photo", factors=(8.0,), model="Canon EOS 5D Mark II")[0]
    profile, found = profiles.resolve("auto", photo)
    assert found == path and profile.camera == "canon eos 5d mark ii"
    assert profiles.resolve("none", photo) is None
    other = write_stack(tmp_path / "other", factors=(8.0,), make="FUJIFILM", model="X-T3")[0]
    assert profiles.resolve("auto", other) is None
    monkeypatch.delenv("XDG_DATA_HOME")
    assert profiles.profile_dir() == pathlib.Path.home() / ".local" / "share" / "hdr_keras" / "camera_profiles"


def test_calibrate_save_writes_the_per_user_profile(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    write_stack(tmp_path / "stack", factors=(4.0, 16.0, 64.0))
    status, out, err = _calibrate(capsys, tmp_path / "stack", "--save")
    assert status == 0, err
    path = profiles.find_profile("Canon", "EOS 5D Mark II")
    assert path is not None and str(path) in out
    assert not (tmp_path / calibrate.DEFAULT_OUTPUT).exists()


def test_load_profile_refuses_bad_files(tmp_path):
    good = profiles.write_profile(_profile(), tmp_path / "good.json")
    assert np.allclose(profiles.load_profile(good).inverse_crf, crf.srgb_inverse_curve(), atol=1e-6)
    data = json.loads(good.read_text())
    cases = {
        "missing.json": None,
        "text.json": "not json",
        "other.json": json.dumps({"format": "something else"}),
        "short.json": json.dumps({**data, "inverse_crf": [0.0, 1.0]}),
        "falling.json": json.dumps({**data, "inverse_crf": list(1.0 - crf.GRID)}),
        "version.json": json.dumps({**data, "version": 99}),
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(profiles.ProfileError, match=f"^{tmp_path / name}: ") as error:
            profiles.load_profile(tmp_path / name)
        assert "\n" not in str(error.value)


# ----------------------------------------------------------------------------- export


def test_serving_curve_signature_takes_a_profile_curve(tmp_path, weights):
    import tensorflow as tf

    from hdr_keras import export, pretrained

    model = pretrained.build_model("lite", weights)
    path = export.export_savedmodel(model, tmp_path / "export", bytes_signature=False)
    signature = tf.saved_model.load(str(path)).signatures[export.CURVE_SIGNATURE_KEY]
    assert set(signature.structured_input_signature[1]) == {export.INPUT_KEY, export.CURVE_INPUT_KEY}
    ldr = np.random.default_rng(0).uniform(0.0, 1.0, (1, 32, 48, 3)).astype(np.float32)
    curve = (crf.GRID**1.8).astype(np.float32)[None]
    outputs = signature(ldr=tf.constant(ldr), inverse_crf=tf.constant(curve))
    assert set(outputs) == set(export.OUTPUT_KEYS)
    np.testing.assert_allclose(outputs["inverse_crf"].numpy(), curve, atol=1e-6)
    expected = model(ldr, training=False, inverse_crf=curve)["hdr"]
    np.testing.assert_allclose(outputs["hdr"].numpy(), np.asarray(expected), rtol=1e-4, atol=1e-5)
    other = signature(ldr=tf.constant(ldr), inverse_crf=tf.constant(crf.srgb_inverse_curve()[None]))["hdr"]
    assert np.abs(other.numpy() - outputs["hdr"].numpy()).max() > 1e-3  # the curve is used


# ----------------------------------------------------------------------------- predict


def test_predict_uses_the_saved_profile_of_the_photos_camera(tmp_path, monkeypatch, capsys, weights):
    from hdr_keras import predict

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    curve = (crf.GRID**1.8).astype(np.float32)
    saved = profiles.save_profile(_profile(make="Canon", model="EOS 5D Mark II", curve=curve))
    photo = write_stack(tmp_path / "in", factors=(8.0,), size=(64, 48), suffix=".jpg")[0]  # EXIF: Canon EOS 5D Mark II

    def run(*options):
        out = tmp_path / f"out{len(options)}"
        argv = [str(photo), "--out_dir", str(out), "--weights", str(weights), "--dtype", "float32", *options]
        status = predict.main(argv)
        sidecar = out / f"{photo.stem}.json"
        return status, capsys.readouterr().err, json.loads(sidecar.read_text()) if sidecar.exists() else None

    status, err, sidecar = run()
    assert status == 0 and f"camera profile {saved}" in err
    assert sidecar["curve"] == "given"
    assert sidecar["camera_profile"] == {
        "camera": "canon eos 5d mark ii", "name": saved.name, "path": str(saved.resolve()),
        "sha256": profiles.sha256(saved), "method": "debevec",
    }
    np.testing.assert_allclose(sidecar["inverse_crf"], curve, atol=1e-6)

    status, err, sidecar = run("--camera_profile", "none")
    assert status == 0 and "camera profile" not in err
    assert sidecar["curve"] == "estimated" and sidecar["camera_profile"] is None

    other = profiles.write_profile(_profile(make="Nikon", model="D800"), tmp_path / "nikon.json")
    status, err, sidecar = run("--camera_profile", str(other), "--quiet")
    assert status == 0 and sidecar["camera_profile"]["name"] == "nikon.json"
    np.testing.assert_allclose(sidecar["inverse_crf"], crf.srgb_inverse_curve(), atol=1e-6)

    (tmp_path / "bad.json").write_text("{}")
    status, err, _ = run("--camera_profile", str(tmp_path / "bad.json"), "--overwrite")
    assert status == 2 and "bad.json: not a camera profile" in err and err.count("\n") == 1
