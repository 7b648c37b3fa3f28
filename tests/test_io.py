"""Tests for hdr_keras.io on tiny files built in tmp_path."""

import cv2
import numpy as np
import OpenEXR
import pytest
from PIL import Image, ImageOps

from hdr_keras import io as hio


def _hdr_image(h=6, w=10, seed=0):
    """Positive float32 [h, w, 3] radiance over ~6 decades with distinct channels."""
    rng = np.random.default_rng(seed)
    return (10.0 ** rng.uniform(-3, 3, size=(h, w, 3))).astype(np.float32)


def _ldr_u8(h=12, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _assert_read_error(func, path, reason, **kwargs):
    """`func(path)` raises ImageReadError whose message names `path` and matches `reason`."""
    with pytest.raises(hio.ImageReadError, match=reason) as info:
        func(path, **kwargs)
    assert str(path) in str(info.value)


def _write_exr_channels(path, channels):
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, channels).write(str(path))


# ----------------------------------------------------------------------- EXR / HDR


def test_exr_half_round_trip(tmp_path):
    image = _hdr_image()
    path = tmp_path / "half.exr"
    hio.write_exr(path, image)
    header = OpenEXR.File(str(path), header_only=True).header()
    assert header["compression"] == OpenEXR.ZIP_COMPRESSION
    assert OpenEXR.File(str(path), separate_channels=True).channels()["R"].pixels.dtype == np.float16
    out = hio.read_hdr(path)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, image, rtol=1e-3)


def test_exr_float_round_trip_is_exact(tmp_path):
    image = _hdr_image() * 100.0  # values above the half range survive in FLOAT
    path = tmp_path / "float.exr"
    hio.write_exr(path, image, half=False)
    assert OpenEXR.File(str(path), separate_channels=True).channels()["G"].pixels.dtype == np.float32
    np.testing.assert_array_equal(hio.read_hdr(path), image)


def test_exr_half_clamps_to_half_max(tmp_path):
    image = np.full((4, 5, 3), 1e6, np.float32)
    path = tmp_path / "big.exr"
    hio.write_exr(path, image)
    out = hio.read_hdr(path)
    assert np.all(np.isfinite(out)) and np.all(out == hio.HALF_MAX)


@pytest.mark.parametrize("name", ["Y", "Z"])
def test_exr_luminance_only_broadcasts(tmp_path, name):
    y = np.arange(20, dtype=np.float16).reshape(4, 5)
    path = tmp_path / f"{name}.exr"
    _write_exr_channels(path, {name: y})
    out = hio.read_hdr(path)
    assert out.shape == (4, 5, 3) and out.dtype == np.float32
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], y.astype(np.float32))


def test_exr_rgba_drops_alpha(tmp_path):
    image = _hdr_image(4, 5).astype(np.float16)
    channels = {c: np.ascontiguousarray(image[..., i]) for i, c in enumerate("RGB")}
    channels["A"] = np.zeros((4, 5), np.float16)
    path = tmp_path / "rgba.exr"
    _write_exr_channels(path, channels)
    np.testing.assert_array_equal(hio.read_hdr(path), image.astype(np.float32))


def test_exr_without_colour_channels_is_rejected(tmp_path):
    path = tmp_path / "depth.exr"
    zeros = np.zeros((4, 5), np.float32)
    _write_exr_channels(path, {"Z": zeros, "V": zeros})
    _assert_read_error(hio.read_hdr, path, "no R, G, B or Y channel")


def test_radiance_round_trip_keeps_rgb_order(tmp_path):
    image = _hdr_image()
    image[0, 0] = [100.0, 1.0, 0.01]
    path = tmp_path / "img.hdr"
    hio.write_hdr(path, image)
    out = hio.read_hdr(path)
    assert out.dtype == np.float32 and out.shape == image.shape
    # RGBE shares one exponent per pixel: error is relative to the brightest channel.
    assert np.all(np.abs(out - image) <= 1e-2 * image.max(axis=-1, keepdims=True))
    assert out[0, 0, 0] > out[0, 0, 1] > out[0, 0, 2]


def test_read_hdr_errors_name_the_file(tmp_path):
    _assert_read_error(hio.read_hdr, tmp_path / "missing.exr", "file not found")
    empty = tmp_path / "empty.exr"
    empty.write_bytes(b"")
    _assert_read_error(hio.read_hdr, empty, "file is empty")
    text = tmp_path / "text.exr"
    text.write_text("not an exr")
    _assert_read_error(hio.read_hdr, text, "cannot read OpenEXR")
    good = tmp_path / "good.hdr"
    hio.write_hdr(good, _hdr_image(32, 32))
    truncated = tmp_path / "truncated.hdr"
    truncated.write_bytes(good.read_bytes()[:-200])
    _assert_read_error(hio.read_hdr, truncated, "cannot read Radiance")
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    _assert_read_error(hio.read_hdr, png, "unsupported HDR file extension")


def test_validate_hdr_accepts_good_and_tiny_negative():
    image = _hdr_image()
    hio.validate_hdr(image, "ok.exr")
    image[0, 0, 0] = -1e-7
    hio.validate_hdr(image, "ok.exr")


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda x: x.__setitem__((1, 2, 0), np.nan), "NaN/Inf"),
        (lambda x: x.__setitem__((1, 2, 0), np.inf), "NaN/Inf"),
        (lambda x: x.__setitem__((1, 2, 0), -0.5), "negative"),
        (lambda x: x.fill(0.0), "all zero"),
    ],
)
def test_validate_hdr_rejects(damage, reason):
    image = _hdr_image()
    damage(image)
    with pytest.raises(hio.ImageReadError, match=reason) as info:
        hio.validate_hdr(image, "bad.exr")
    assert "bad.exr" in str(info.value)


def test_validate_hdr_rejects_wrong_shape():
    with pytest.raises(hio.ImageReadError, match="bad.exr: expected an"):
        hio.validate_hdr(_hdr_image()[..., :2], "bad.exr")


# ---------------------------------------------------------------------------- LDR


def test_read_png_8bit_exact(tmp_path):
    image = _ldr_u8()
    path = tmp_path / "rgb.png"
    Image.fromarray(image).save(path)
    out = hio.read_ldr(path)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, image / 255.0, atol=1e-7)


def test_read_jpeg(tmp_path):
    image = np.full((12, 16, 3), (200, 100, 50), np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(image).save(path, quality=95)
    out = hio.read_ldr(path)
    assert out.shape == (12, 16, 3) and 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_allclose(out, image / 255.0, atol=0.03)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_read_16bit_rgb_full_precision(tmp_path, ext):
    image = np.random.default_rng(1).integers(0, 65536, size=(10, 12, 3), dtype=np.uint16)
    path = tmp_path / f"rgb16{ext}"
    assert cv2.imwrite(str(path), image[..., ::-1])  # OpenCV writes BGR
    np.testing.assert_allclose(hio.read_ldr(path), image / 65535.0, atol=1e-7)


def test_read_16bit_gray_png_with_orientation(tmp_path):
    gray = np.random.default_rng(2).integers(0, 65536, size=(10, 12), dtype=np.uint16)
    img = Image.fromarray(gray)
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "gray16.png"
    img.save(path, exif=exif)
    assert Image.open(path).mode.startswith("I")
    out = hio.read_ldr(path)
    assert out.shape == (12, 10, 3)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], np.rot90(gray, -1) / 65535.0, atol=1e-7)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "1"])
def test_read_other_modes_give_rgb(tmp_path, mode):
    rgb = Image.fromarray(_ldr_u8())
    img = rgb.convert(mode) if mode != "LA" else rgb.convert("L").convert("LA")
    path = tmp_path / f"{mode}.png"
    img.save(path)
    out = hio.read_ldr(path)
    expected = np.asarray(img.convert("RGBA"))[..., :3] / 255.0
    assert out.shape == (12, 16, 3)
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_read_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 12), (0, 255, 255, 0)).save(path, quality=95)  # pure red
    out = hio.read_ldr(path)
    assert out.shape == (12, 16, 3)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), [1.0, 0.0, 0.0], atol=0.05)


def test_exif_orientation_6_jpeg_is_displayed_orientation(tmp_path):
    image = np.zeros((12, 20, 3), np.uint8)
    image[:4, :4] = 255  # white block at the stored top-left
    img = Image.fromarray(image)
    exif = img.getexif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)
    out = hio.read_ldr(path)
    assert out.shape == (20, 12, 3)
    assert out[:4, -4:].mean() > 0.9 and out[-4:, :4].mean() < 0.1  # block now top-right


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    img = Image.fromarray(_ldr_u8(8, 11))
    exif = img.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    img.save(path, exif=exif)
    with Image.open(path) as reference:
        expected = np.asarray(ImageOps.exif_transpose(reference)) / 255.0
    np.testing.assert_allclose(hio.read_ldr(path), expected, atol=1e-7)


def test_read_ldr_rejects_float_tiff(tmp_path):
    gray = tmp_path / "float_gray.tif"
    Image.fromarray(np.ones((10, 10), np.float32)).save(gray)
    _assert_read_error(hio.read_ldr, gray, "floating-point image")
    rgb = tmp_path / "float_rgb.tif"  # Pillow cannot open it; OpenCV fallback can
    assert cv2.imwrite(str(rgb), np.ones((10, 10, 3), np.float32))
    _assert_read_error(hio.read_ldr, rgb, "floating-point image")


def test_read_ldr_errors_name_the_file(tmp_path):
    _assert_read_error(hio.read_ldr, tmp_path / "missing.jpg", "file not found")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    _assert_read_error(hio.read_ldr, empty, "file is empty")
    text = tmp_path / "notes.jpg"
    text.write_text("hello, not a photo\n")
    _assert_read_error(hio.read_ldr, text, "not an image")
    good = tmp_path / "good.jpg"
    Image.fromarray(_ldr_u8(64, 64)).save(good, quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _assert_read_error(hio.read_ldr, truncated, "truncated or corrupt")
    small = tmp_path / "small.png"
    Image.fromarray(_ldr_u8(5, 20)).save(small)
    _assert_read_error(hio.read_ldr, small, "20x5 pixels")
    assert hio.read_ldr(small, min_size=4).shape == (5, 20, 3)


def test_read_ldr_rejects_hdr_files(tmp_path):
    exr = tmp_path / "scene.exr"
    hio.write_exr(exr, _hdr_image())
    _assert_read_error(hio.read_ldr, exr, "HDR file given as input")
    radiance = tmp_path / "scene.hdr"
    hio.write_hdr(radiance, _hdr_image())
    for src, name in [(exr, "disguised_exr.png"), (radiance, "disguised_hdr.jpg")]:
        disguised = tmp_path / name
        disguised.write_bytes(src.read_bytes())
        _assert_read_error(hio.read_ldr, disguised, "HDR file given as input")


# ------------------------------------------------------------------ previews etc.


def test_write_png_round_trip(tmp_path):
    image = _ldr_u8()
    path = tmp_path / "preview.png"
    hio.write_png(path, image)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    with pytest.raises(ValueError):
        hio.write_png(path, image.astype(np.float32))


def test_list_images(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ["b.JPG", "a.png", "c.txt", ".hidden.jpg"]:
        (folder / name).write_bytes(b"x")
    (folder / "sub.jpg").mkdir()
    extra = tmp_path / "notes.txt"
    extra.write_text("x")
    missing = tmp_path / "missing.jpg"
    inputs = [folder, extra, folder / "a.png", str(folder), missing]
    result = hio.list_images(inputs, exts=[".jpg", "png"])
    assert result == [folder / "a.png", folder / "b.JPG", extra, missing]
    assert hio.list_images(str(folder), exts=[".txt"]) == [folder / "c.txt"]
