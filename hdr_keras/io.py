"""Image file input/output for HDR reconstruction (pure numpy, no TensorFlow).

Conventions used throughout:

* HDR images are float32 arrays of shape [H, W, 3], RGB, linear radiance,
  values >= 0 and unbounded above.
* LDR photos are returned as float32 arrays of shape [H, W, 3], RGB, in [0, 1]
  (sRGB-encoded values exactly as stored in the file; no linearisation).
* Every read failure raises :class:`ImageReadError` whose message starts with
  the path as given by the caller, followed by the reason.
"""

from io import BytesIO
import os
import pathlib
import stat
import struct
import warnings

import cv2
import numpy as np
import OpenEXR
from PIL import Image, UnidentifiedImageError


HDR_EXTS = (".exr", ".hdr", ".pic")
"""File extensions of the HDR formats read by :func:`read_hdr`."""

LDR_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
"""File extensions of the photo formats read by :func:`read_ldr`."""

HALF_MAX = 65504.0
"""Largest finite IEEE half-precision value."""

_EXR_MAGIC = b"\x76\x2f\x31\x01"
_RADIANCE_MAGICS = (b"#?RADIANCE", b"#?RGBE")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*")
_HDR_INPUT_REASON = "HDR file given as input; predict expects an 8-bit or 16-bit photo"
_FLOAT_INPUT_REASON = "floating-point image; predict expects an 8-bit or 16-bit photo"


class ImageReadError(ValueError):
    """An image file could not be read or holds unusable data.

    The message is ``"<path>: <reason>"``.
    """


def _check_file(path):
    """Raise ImageReadError if `path` is missing, not a regular file or empty.

    Returns the first 32 bytes of the file (for format sniffing).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageReadError(f"{path}: file not found (broken symbolic link to {os.readlink(path)})") from None
        raise ImageReadError(f"{path}: file not found") from None
    except OSError as e:  # a symlink loop (ELOOP), a name too long, no permission on a folder
        raise ImageReadError(f"{path}: cannot open ({e.strerror or e})") from e
    if not stat.S_ISREG(mode):
        raise ImageReadError(f"{path}: not a regular file")
    p = pathlib.Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(32)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot open ({e.strerror or e})") from e
    if not head:
        raise ImageReadError(f"{path}: file is empty")
    return head


# --------------------------------------------------------------------------- HDR


def read_hdr(path):
    """Read an HDR image as stored, without validating its values.

    Supports OpenEXR (``.exr``; HALF, FLOAT or UINT channels of the first part;
    R, G, B channels, or a luminance-only ``Y`` / single channel broadcast to
    RGB; alpha and other channels are ignored) and Radiance RGBE
    (``.hdr``/``.pic``). The format is chosen by extension.

    Args:
        path: str or path-like.

    Returns:
        float32 array [H, W, 3], RGB, linear radiance. Use :func:`validate_hdr`
        to check the values.

    Raises:
        ImageReadError: missing, empty, unreadable or corrupt file, unsupported
            channel layout, or an extension other than ``.exr``/``.hdr``/``.pic``.
    """
    _check_file(path)
    ext = pathlib.Path(path).suffix.lower()
    if ext == ".exr":
        return _read_exr(path)
    if ext in (".hdr", ".pic"):
        return _read_radiance(path)
    raise ImageReadError(
        f"{path}: unsupported HDR file extension {ext or '(none)'!r}; "
        f"expected one of {', '.join(HDR_EXTS)}"
    )


def _read_exr(path):
    try:
        channels = OpenEXR.File(str(path), separate_channels=True).channels()
    except Exception as e:  # the bindings raise RuntimeError/ValueError/...
        raise ImageReadError(f"{path}: cannot read OpenEXR file ({e})") from e
    pixels = {name: ch.pixels for name, ch in channels.items()}
    if "RY" in pixels or "BY" in pixels:
        raise ImageReadError(f"{path}: luminance/chroma (YC) OpenEXR is not supported")
    if all(c in pixels for c in "RGB"):
        planes = [pixels[c] for c in "RGB"]
    elif "Y" in pixels or len(pixels) == 1:
        planes = [pixels["Y"] if "Y" in pixels else next(iter(pixels.values()))] * 3
    else:
        raise ImageReadError(
            f"{path}: no R, G, B or Y channel in OpenEXR file "
            f"(channels: {', '.join(sorted(pixels)) or 'none'})"
        )
    if any(p.ndim != 2 or p.shape != planes[0].shape for p in planes):
        raise ImageReadError(f"{path}: subsampled or malformed OpenEXR channels")
    return np.stack(planes, axis=-1).astype(np.float32)


def _read_radiance(path):
    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:  # e.g. a header declaring 100000x100000 (OpenCV refuses to allocate it)
        raise ImageReadError(f"{path}: cannot read Radiance HDR file ({getattr(e, 'err', e)})") from e
    if image is None:
        raise ImageReadError(f"{path}: cannot read Radiance HDR file (corrupt or not RGBE)")
    if image.dtype != np.float32 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageReadError(f"{path}: not a Radiance HDR (RGBE) file")
    return np.ascontiguousarray(image[..., ::-1])


def validate_hdr(image, path):
    """Check that an HDR image holds usable radiance.

    Args:
        image: array [H, W, 3] (H, W > 0) of linear radiance.
        path: file the image came from (used in the message only).

    Raises:
        ImageReadError: wrong shape, NaN/Inf values, values below -1e-6 (tiny
            negatives are tolerated; the caller may clamp them), or no
            positive value at all.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageReadError(f"{path}: expected an [H, W, 3] image, got shape {image.shape}")
    bad = np.count_nonzero(~np.isfinite(image))
    if bad:
        raise ImageReadError(f"{path}: {bad} NaN/Inf values")
    low = float(image.min())
    if low < -1e-6:
        raise ImageReadError(f"{path}: negative radiance values (min {low:g})")
    if not np.any(image > 0):
        raise ImageReadError(f"{path}: image is all zero")


def _as_rgb_float(image):
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {image.shape}")
    return image


def write_exr(path, image, half=True):
    """Write an RGB OpenEXR file with ZIP compression.

    Args:
        path: output file (str or path-like).
        image: float array [H, W, 3], RGB linear radiance.
        half: store HALF pixels (default; values are clamped to +-65504) or
            FLOAT pixels (exact) with ``half=False``.
    """
    image = _as_rgb_float(image)
    if half:
        image = np.clip(image, -HALF_MAX, HALF_MAX).astype(np.float16)
    channels = {c: np.ascontiguousarray(image[..., i]) for i, c in enumerate("RGB")}
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, channels).write(str(path))


def write_hdr(path, image):
    """Write a Radiance RGBE ``.hdr`` file.

    Args:
        path: output file; its extension must be ``.hdr`` or ``.pic``.
        image: float array [H, W, 3], RGB linear radiance; negative values are
            stored as 0 (RGBE cannot represent them). RGBE keeps ~8 bits of
            mantissa per channel (relative error up to ~1%).

    Raises:
        OSError: OpenCV could not write the file.
    """
    image = np.maximum(_as_rgb_float(image), 0.0)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])):
        raise OSError(f"{path}: cannot write Radiance HDR file")


# --------------------------------------------------------------------------- LDR


def read_ldr(path, min_size=8, max_pixels=None, notice=None):
    """Read a photo (JPEG, PNG, TIFF, BMP, WebP, ... as readable by Pillow).

    8-bit data is divided by 255, 16-bit PNG/TIFF by 65535 (decoded with
    OpenCV at full precision, since Pillow reduces 16-bit RGB to 8 bits).
    Grayscale is repeated to 3 channels, alpha is dropped, palette/CMYK/YCbCr
    images are converted to RGB by Pillow, and the EXIF orientation is applied
    so the result is in displayed orientation. TIFF files Pillow cannot map
    (e.g. floating point) are tried with OpenCV, after the size their header
    declares is checked (no EXIF orientation in that case). An embedded ICC
    profile other than sRGB is not applied, and an animated image gives its
    first frame: both are reported through `notice`, as are Pillow's warnings
    (corrupt EXIF data, ...), one line each.

    Args:
        path: str or path-like.
        min_size: smallest accepted height and width, in pixels.
        max_pixels: largest accepted width * height, checked on the size the
            file declares before anything is decoded; None: no limit but
            Pillow's own (decompression bomb) limit.
        notice: called with a message (``"<path>: ..."``) for what is read but
            not honoured (colour profile, animation frames); None: silent.

    Returns:
        float32 array [H, W, 3], RGB, values in [0, 1] (sRGB-encoded as stored).

    Raises:
        ImageReadError: missing/empty file, not an image, truncated or corrupt
            data, an HDR file (by extension or magic bytes), a floating-point
            image, an image smaller than `min_size` on either side, or one
            declaring more than `max_pixels` pixels.
    """
    head = _check_file(path)
    if (
        pathlib.Path(path).suffix.lower() in HDR_EXTS
        or head.startswith(_EXR_MAGIC)
        or head.startswith(_RADIANCE_MAGICS)
    ):
        raise ImageReadError(f"{path}: {_HDR_INPUT_REASON}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = _read_photo(path, head, max_pixels, notice)
    if notice is not None:
        ignored = (DeprecationWarning,) + ((Image.DecompressionBombWarning,) if max_pixels is not None else ())
        for warning in caught:  # deprecations are for developers; the declared size was checked against max_pixels
            if not issubclass(warning.category, ignored):
                notice(f"{path}: {' '.join(str(warning.message).split())}")
    if image.shape[0] < min_size or image.shape[1] < min_size:
        raise ImageReadError(
            f"{path}: image is {image.shape[1]}x{image.shape[0]} pixels; "
            f"need at least {min_size} on each side"
        )
    return np.ascontiguousarray(image)


def _read_photo(path, head, max_pixels, notice):
    """`read_ldr` without the size check: float32 [H, W, 3] in [0, 1], displayed orientation."""
    try:
        img = Image.open(path)
    except UnidentifiedImageError:
        image = None
        if head.startswith(_TIFF_MAGICS):  # e.g. floating-point RGB, which Pillow cannot map
            _check_declared_size(_tiff_size(path, head), path, max_pixels)
            image = _from_cv2(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), path)
        if image is None:
            raise ImageReadError(f"{path}: not an image (cannot identify image file)") from None
        return image
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{path}: image too large ({e})") from e
    except Exception as e:  # a header cut short or damaged
        raise ImageReadError(f"{path}: truncated or corrupt image ({e})") from e
    with img:
        _check_declared_size(img.size, path, max_pixels)
        if notice is not None:
            for message in _unhonoured(img, path):
                notice(message)
        return _from_pillow(img, path, head)


def _tiff_size(path, head):
    """(width, height) that the first directory of a TIFF file declares (read from its header only)."""
    order = "<" if head.startswith(b"II") else ">"
    size = {}
    try:
        with open(path, "rb") as f:
            f.seek(struct.unpack(order + "I", head[4:8])[0])
            (count,) = struct.unpack(order + "H", f.read(2))
            entries = f.read(12 * count)
        for offset in range(0, len(entries) - 11, 12):
            tag, kind = struct.unpack_from(order + "HH", entries, offset)
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG
                size[tag] = struct.unpack_from(order + ("H" if kind == 3 else "I"), entries, offset + 8)[0]
    except (OSError, struct.error) as e:
        raise ImageReadError(f"{path}: truncated or corrupt TIFF header ({e})") from e
    if len(size) != 2:
        raise ImageReadError(f"{path}: TIFF header declares no image size")
    return size[256], size[257]


def _check_declared_size(size, path, max_pixels):
    """Raise ImageReadError if the declared (width, height) `size` has more than `max_pixels` pixels."""
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            f"{path}: image is {width}x{height} pixels ({width * height / 1e6:.1f} MP), "
            f"above the limit of {max_pixels / 1e6:g} MP"
        )


def _unhonoured(img, path):
    """Messages for what `read_ldr` ignores in the opened `img`: a non-sRGB ICC profile, extra frames."""
    messages = []
    icc = img.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            name = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(BytesIO(icc))).strip()
        except Exception:  # an unparsable profile is as ignored as any other
            name = "unreadable"
        if "srgb" not in name.lower():
            messages.append(
                f"{path}: embedded colour profile '{name}' is not applied; the pixels are read as sRGB "
                "(convert the photo to sRGB first for correct colours)"
            )
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        messages.append(f"{path}: animated image with {frames} frames; only the first frame is used")
    return messages


def _is_16bit(img, head):
    """True for 16-bit-per-sample PNG/TIFF files (which Pillow may reduce to 8 bits)."""
    if img.format == "PNG":
        return head.startswith(_PNG_MAGIC) and head[24] == 16
    if img.format == "TIFF":
        return 16 in np.atleast_1d(img.tag_v2.get(258, 8))
    return False


def _from_pillow(img, path, head):
    """Decode an opened Pillow image to float32 [H, W, 3] in [0, 1], displayed orientation."""
    try:
        img.load()  # full decode: detects truncated/corrupt data
    except Exception as e:
        raise ImageReadError(f"{path}: truncated or corrupt image ({e})") from e
    orientation = img.getexif().get(0x0112, 1)
    if img.mode == "F":
        raise ImageReadError(f"{path}: {_FLOAT_INPUT_REASON}")
    if _is_16bit(img, head):
        image = _from_cv2(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), path)
        if image is None:
            raise ImageReadError(f"{path}: cannot decode 16-bit image")
    elif img.mode == "I" or img.mode.startswith("I;16"):
        raw = np.asarray(img)
        if raw.min() < 0 or raw.max() > 65535:
            raise ImageReadError(f"{path}: unsupported 32-bit integer image")
        image = np.repeat(raw.astype(np.float32)[..., None] / 65535.0, 3, axis=-1)
    else:
        if img.mode not in ("L", "RGB"):
            has_alpha = img.mode == "P" or "A" in img.getbands()
            try:
                img = img.convert("RGBA" if has_alpha else "RGB")
            except Exception as e:
                raise ImageReadError(f"{path}: cannot convert {img.mode} image to RGB ({e})") from e
        raw = np.asarray(img)
        if raw.ndim == 2:
            raw = raw[..., None]
        image = np.broadcast_to(raw[..., :3], raw.shape[:2] + (3,)).astype(np.float32) / 255.0
    return _apply_orientation(image, orientation)


def _from_cv2(raw, path):
    """Convert an OpenCV ``IMREAD_UNCHANGED`` result to float32 RGB [H, W, 3] in [0, 1].

    Returns None if `raw` is None (OpenCV could not decode the file).
    """
    if raw is None:
        return None
    if raw.dtype.kind == "f":
        raise ImageReadError(f"{path}: {_FLOAT_INPUT_REASON}")
    if raw.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"{path}: unsupported sample type {raw.dtype}")
    scale = 255.0 if raw.dtype == np.uint8 else 65535.0
    if raw.ndim == 2:
        raw = raw[..., None]
    if raw.shape[2] >= 3:
        raw = raw[..., 2::-1]  # BGR(A) -> RGB
    else:
        raw = raw[..., :1]  # gray(+alpha)
    return np.broadcast_to(raw, raw.shape[:2] + (3,)).astype(np.float32) / scale


def _apply_orientation(image, orientation):
    """Apply an EXIF Orientation value (1-8) to an [H, W, C] array (as Pillow's exif_transpose)."""
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1]
    if orientation == 5:
        return image.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(image, -1)
    if orientation == 7:
        return image[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(image, 1)
    return image


# ------------------------------------------------------------------ PNG and listing


def write_png(path, image_uint8):
    """Write an 8-bit PNG.

    Args:
        path: output file (written as PNG whatever its extension).
        image_uint8: uint8 array [H, W, 3] (RGB) or [H, W] (gray).
    """
    image = np.asarray(image_uint8)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected uint8 [H, W, 3] or [H, W], got {image.dtype} {image.shape}")
    Image.fromarray(image).save(path, format="PNG")


def list_images(inputs, exts):
    """Expand files and folders into a list of image paths.

    Folders are listed non-recursively, sorted by name, keeping regular files
    whose extension (case-insensitive) is in `exts` and skipping hidden files
    (names starting with "."). Paths given explicitly are kept whatever their
    extension or existence, so that reading them reports a proper error.
    Duplicates (same resolved path) are dropped, keeping the first occurrence.

    Args:
        inputs: a path or an iterable of paths (str or path-like).
        exts: iterable of extensions, e.g. ``(".jpg", "png")``.

    Returns:
        list of pathlib.Path.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    exts = {("." + e.lstrip(".")).lower() for e in exts}
    found = []
    for item in inputs:
        p = pathlib.Path(item)
        if p.is_dir():
            found.extend(
                f
                for f in sorted(p.iterdir())
                if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in exts
            )
        else:
            found.append(p)
    seen = set()
    result = []
    for p in found:
        key = os.path.realpath(p)  # unlike Path.resolve, never raises (a symlink loop fails when read)
        if key not in seen:
            seen.add(key)
            result.append(p)
    return result
