"""Every input kind has a tested answer (issue #24): 64 kinds, 61 of them in one predict batch.

Good kinds give a finite, non-negative EXR of the photo's displayed size. Bad kinds fail alone:
one line that names the file and says why, no traceback, no temporary file left, the rest of the
batch written, exit status 1. The batch runs ``hdr_keras.predict.main`` once, in-process, on tiny
photos (20 x 28, one 32-pixel block for the networks) with the random ``weights`` of conftest.py,
from inside the input folder with relative names after ``--`` (as a user types them, a leading
dash included). The output folder cases (a file, a read-only folder, a full disk) run apart.
"""

import builtins
import contextlib
import errno
import glob
import io
import json
import os
import pathlib
import re
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from hdr_keras import io as hio
from hdr_keras import predict

from conftest import smooth_photo

H, W = 20, 28
"""Stored size of the photos: one 32 x 32 block for the networks once padded."""


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_bytes(width, height, bit_depth, color_type, rows=b""):
    """A PNG file whose header declares what it is told, with ``rows`` (raw scanlines) as its data."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


def _png16(array, color_type):
    """A 16-bit PNG of ``array`` [H, W, C] uint16 (colour type 4: grey + alpha, which Pillow cannot write)."""
    rows = b"".join(b"\0" + np.ascontiguousarray(row).astype(">u2").tobytes() for row in array)
    return _png_bytes(array.shape[1], array.shape[0], 16, color_type, rows)


def _encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _exif_jpeg(orientation):
    def make(path):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(smooth_photo(H, W)).save(path, exif=exif, quality=92)

    return make


def _save(fmt=None, mode=None, array=None, **options):
    """A maker that saves ``array`` (default: the photo) converted to Pillow ``mode``."""

    def make(path):
        image = Image.fromarray(smooth_photo(H, W) if array is None else array)
        (image.convert(mode) if mode else image).save(path, format=fmt, **options)

    return make


def _write(data):
    def make(path):
        pathlib.Path(path).write_bytes(data() if callable(data) else data)

    return make


def _cv2(array):
    def make(path):
        assert cv2.imwrite(str(path), array)

    return make


def _animated_gif(path):
    frames = [Image.fromarray(smooth_photo(H, W)), Image.fromarray(255 - smooth_photo(H, W))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)


def _wide_gamut_png(path):
    Image.fromarray(smooth_photo(H, W)).save(path, icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes())


def _truncated(fmt):
    def data():
        whole = _encoded(Image.fromarray(smooth_photo(64, 64)), fmt)
        return whole[: len(whole) // 2]

    return _write(data)


def _jpeg_declaring(height, width):
    """A small JPEG whose SOF marker declares ``height`` x ``width`` (a decompression-bomb header)."""

    def data():
        jpeg = bytearray(_encoded(Image.fromarray(smooth_photo(H, W)), "JPEG"))
        sof = jpeg.index(b"\xff\xc0")
        jpeg[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
        return bytes(jpeg)

    return _write(data)


def _float_tiff_declaring(side):
    """A float RGB TIFF (Pillow cannot map it; OpenCV would decode it) whose header declares side x side."""

    def make(path):
        assert cv2.imwrite(str(path), np.ones((10, 12, 3), np.float32))
        data = bytearray(pathlib.Path(path).read_bytes())
        order = "<" if data[:2] == b"II" else ">"
        (start,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, start)
        for entry in range(start + 2, start + 2 + 12 * count, 12):
            tag, kind = struct.unpack_from(order + "HH", data, entry)
            if tag in (256, 257):
                struct.pack_into(order + ("H" if kind == 3 else "I"), data, entry + 8, side)
        pathlib.Path(path).write_bytes(bytes(data))

    return make


def _symlink(target):
    def make(path):
        os.symlink(target, path)

    return make


def _html(path):
    pathlib.Path(path).write_text("<!DOCTYPE html><html><head><title>404 Not Found</title></head></html>\n")


def _exr(path):
    hio.write_exr(path, np.ones((H, W, 3), np.float32))


RGB16 = smooth_photo(H, W)[..., ::-1].astype(np.uint16) * 257 + 3  # BGR for OpenCV; not a multiple of 257

GOOD = {  # name (the file's name in the batch): (maker, displayed (height, width))
    **{f"orientation_{o}.jpg": (_exif_jpeg(o), (H, W) if o <= 4 else (W, H)) for o in range(1, 9)},
    "grey.png": (_save(mode="L"), (H, W)),
    "grey_baseline.jpg": (_save(mode="L", quality=90), (H, W)),
    "grey_alpha.png": (_save(mode="LA"), (H, W)),
    "grey_16bit.png": (_cv2(smooth_photo(H, W)[..., 1].astype(np.uint16) * 257), (H, W)),
    "grey_alpha_16bit.png": (_write(_png16(smooth_photo(H, W)[..., :2].astype(np.uint16) * 257, 4)), (H, W)),
    "rgb_16bit.png": (_cv2(RGB16), (H, W)),
    "rgba_16bit.png": (_cv2(np.dstack([RGB16, RGB16[..., 0]])), (H, W)),
    "tiff_16bit.tif": (_cv2(RGB16), (H, W)),
    "bilevel.png": (_save(mode="1"), (H, W)),
    "palette.png": (lambda p: Image.fromarray(smooth_photo(H, W)).quantize(32).save(p), (H, W)),
    "palette_transparent.png": (lambda p: Image.fromarray(smooth_photo(H, W)).quantize(32).save(p, transparency=0), (H, W)),
    "palette_8bit.bmp": (lambda p: Image.fromarray(smooth_photo(H, W)).quantize(32).save(p), (H, W)),
    "cmyk.jpg": (_save(mode="CMYK", quality=92), (H, W)),
    "cmyk_lzw.tif": (_save(mode="CMYK"), (H, W)),
    "rgba.png": (_save(mode="RGBA"), (H, W)),
    "animated.gif": (_animated_gif, (H, W)),
    "lossy.webp": (_save(quality=80), (H, W)),
    "lossless_alpha.webp": (_save(mode="RGBA", lossless=True), (H, W)),
    "lzw.tif": (_save(compression="tiff_lzw"), (H, W)),
    "plain.bmp": (_save(), (H, W)),
    "progressive.jpg": (_save(progressive=True, quality=90), (H, W)),
    "wide_gamut.png": (_wide_gamut_png, (H, W)),
    "wide_8x1500.png": (_save(array=smooth_photo(8, 1500)), (8, 1500)),
    "tall_1500x8.png": (_save(array=smooth_photo(1500, 8)), (1500, 8)),
    "all_black.png": (_save(array=np.zeros((H, W, 3), np.uint8)), (H, W)),
    "all_white.jpg": (_save(array=np.full((H, W, 3), 255, np.uint8)), (H, W)),
    "png_named.jpg": (_save(fmt="PNG"), (H, W)),
    "name with spaces.png": (_save(), (H, W)),
    "ünïcødé_写真.png": (_save(), (H, W)),
    "-leading-dash.png": (_save(), (H, W)),
    "listed_twice.png": (_save(), (H, W)),  # passed twice: read once, one output, no error
}

BAD = {  # name: (maker or None for nothing at that path, the reason its one line gives)
    "1x1.png": (_save(array=smooth_photo(1, 1)), "image is 1x1 pixels; need at least 8 on each side"),
    "1x500.png": (_save(array=smooth_photo(1, 500)), "image is 500x1 pixels; need at least 8 on each side"),
    "empty.jpg": (_write(b""), "file is empty"),
    "zeros.jpg": (_write(bytes(4096)), "not an image (cannot identify image file)"),
    "page.jpg": (_html, "not an image (cannot identify image file)"),
    "truncated_jpeg.jpg": (_truncated("JPEG"), "truncated or corrupt image"),
    "truncated_png.png": (_truncated("PNG"), "truncated or corrupt image"),
    "bomb_100000x100000.png": (_write(_png_bytes(100_000, 100_000, 8, 2)), "image too large"),
    "bomb_10000x10000.png": (
        _write(_png_bytes(10_000, 10_000, 8, 2)),
        "image is 10000x10000 pixels (100.0 MP), above the limit of 50 MP",
    ),
    "bomb_65000x65000.jpg": (_jpeg_declaring(65_000, 65_000), "image too large"),
    "bomb_float_60000x60000.tif": (_float_tiff_declaring(60_000), "image is 60000x60000 pixels (3600.0 MP), above"),
    "float.tif": (_float_tiff_declaring(10), "floating-point image"),
    "radiance.exr": (_exr, "HDR file given as input"),
    "loop_a.png": (_symlink("loop_b.png"), "cannot open (Too many levels of symbolic links)"),
    "loop_b.png": (_symlink("loop_a.png"), "cannot open (Too many levels of symbolic links)"),
    "dangling.png": (_symlink("gone.png"), "file not found (broken symbolic link to gone.png)"),
    "unreadable.png": (_save(), "cannot open (Permission denied)"),
    "missing.jpg": (None, "file not found"),
}

FOLDER = {  # the folder "album.jpg" (a folder named like a photo), passed too: name: its answer
    "inside.png": "written",
    "sub.jpg": "skipped (a folder; folders are not searched recursively)",
    "loop.png": "skipped (not a regular file)",
    "notes.txt": "skipped (.txt is not a photo type",
}


@contextlib.contextmanager
def _unreadable(path):
    """``path`` cannot be opened for reading: mode 000, and for root (whom modes do not stop) open() refuses."""
    path = os.path.abspath(path)
    os.chmod(path, 0)
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(file) == path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        if os.geteuid() == 0:
            patch.setattr(builtins, "open", guarded)
        yield


def _lines(text):
    return [line for line in re.split(r"[\r\n]", text) if line.strip()]


@pytest.fixture(scope="module")
def batch(tmp_path_factory, weights):
    """Makes every kind in one folder and runs one predict over all of them: status, stderr, out folder."""
    root = tmp_path_factory.mktemp("kinds")
    inputs, out = root / "in", root / "out"
    inputs.mkdir()
    for name, (make, _) in {**GOOD, **BAD}.items():
        if make is not None:
            make(inputs / name)
    album = inputs / "album.jpg"
    (album / "sub.jpg").mkdir(parents=True)
    _save()(album / "inside.png")
    os.symlink("loop.png", album / "loop.png")
    (album / "notes.txt").write_text("not a photo\n")
    names = [*GOOD, "listed_twice.png", *BAD, "album.jpg"]
    argv = ["--out_dir", str(out), "--weights", str(weights), "--dtype", "float32", "--", *names]  # not --quiet
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(stderr), _unreadable(inputs / "unreadable.png"):
        patch.chdir(inputs)
        status = predict.main(argv)
    return status, stderr.getvalue(), out


def test_batch_exit_status_summary_and_no_leftovers(batch):
    status, err, out = batch
    assert status == 1 and "Traceback" not in err, err
    written, failed = len(GOOD) + 1, len(BAD)  # + album.jpg/inside.png
    assert f"predict: {written} written, {failed} failed -> {out}" in err, err
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no lock, no temporary file
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{pathlib.Path(name).stem}.{ext}" for name in [*GOOD, "inside.png"] for ext in ("exr", "json")
    )


@pytest.mark.parametrize("name", list(GOOD))
def test_good_kind_gives_a_finite_non_negative_exr_of_the_displayed_size(batch, name):
    _, err, out = batch
    stem = pathlib.Path(name).stem
    hdr = hio.read_hdr(out / f"{stem}.exr")
    assert hdr.shape == GOOD[name][1] + (3,)
    assert np.all(np.isfinite(hdr)) and hdr.min() >= 0
    meta = json.loads((out / f"{stem}.json").read_text())
    assert (meta["height"], meta["width"]) == GOOD[name][1] and meta["input"] == name
    said = [line for line in _lines(err) if line.startswith(f"{name}:")]
    notices = {
        "animated.gif": f"{name}: animated image with 2 frames; only the first frame is used",
        "wide_gamut.png": f"{name}: embedded colour profile 'Lab identity built-in' is not applied",
    }
    if name in notices:  # read, with a notice of what is not honoured
        assert len(said) == 1 and said[0].startswith(notices[name]), said
    else:
        assert said == [], said


@pytest.mark.parametrize("name", list(BAD))
def test_bad_kind_fails_alone_with_one_line_naming_it(batch, name):
    _, err, out = batch
    said = [line for line in _lines(err) if line.startswith(f"{name}:")]
    assert len(said) == 1, (name, said)
    assert BAD[name][1] in said[0], said[0]
    assert not list(out.glob(f"{glob.escape(pathlib.Path(name).stem)}.*"))


@pytest.mark.parametrize("name", list(FOLDER))
def test_folder_named_like_a_photo_is_a_folder(batch, name):
    _, err, out = batch
    if FOLDER[name] == "written":
        assert hio.read_hdr(out / f"{pathlib.Path(name).stem}.exr").shape == (H, W, 3)
    else:
        said = [line for line in _lines(err) if line.startswith(os.path.join("album.jpg", name) + ":")]
        assert len(said) == 1 and FOLDER[name] in said[0], said


# ------------------------------------------------------------------------ output folder


def _one_photo(tmp_path):
    path = tmp_path / "photo.png"
    _save()(path)
    return path


def test_out_dir_that_is_a_file_is_a_usage_error(tmp_path, weights, capsys):
    taken = tmp_path / "out.exr"
    taken.write_bytes(b"x")
    argv = [str(_one_photo(tmp_path)), "--out_dir", str(taken), "--weights", str(weights), "--quiet"]
    assert predict.main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"predict: error: {taken}: cannot create output folder (File exists)\n", err
    assert taken.read_bytes() == b"x"


def test_read_only_out_dir_is_a_usage_error(tmp_path, weights, capsys, monkeypatch):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.geteuid() == 0:  # modes do not stop root: the file system refuses, as a read-only mount does
        real_open = os.open

        def refuse(path, flags, *args, **kwargs):
            if flags & (os.O_CREAT | getattr(os, "O_TMPFILE", 0)) and str(read_only) in os.fspath(path):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    argv = [str(_one_photo(tmp_path)), "--out_dir", str(read_only), "--weights", str(weights), "--quiet"]
    assert predict.main(argv) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(
        rf"predict: error: {re.escape(str(read_only))}: cannot write in the output folder \((Read-only file system|Permission denied)\)\n",
        err,
    ), err
    assert list(read_only.iterdir()) == []


def test_full_disk_fails_that_file_alone_and_leaves_no_temporary(tmp_path, weights, capsys, monkeypatch):
    """The first EXR write runs out of space half-way (simulated); the second photo is written."""
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    _save()(first)
    _save(array=smooth_photo(H, W, seed=1))(second)
    real_write = hio.write_exr
    calls = []

    def full_disk(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 1:
            pathlib.Path(path).write_bytes(b"\x76\x2f\x31\x01 half an EXR")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(hio, "write_exr", full_disk)
    out = tmp_path / "out"
    argv = [str(first), str(second), "--out_dir", str(out), "--weights", str(weights), "--dtype", "float32", "--quiet"]
    assert predict.main(argv) == 1
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 2 and "Traceback" not in lines, lines
    assert lines[0].startswith(f"{first}: cannot write output (") and "No space left on device" in lines[0]
    assert lines[1] == f"predict: 1 written, 1 failed -> {out}"
    assert sorted(p.name for p in out.iterdir()) == ["b.exr", "b.json"]  # no temporary, no partial unit
