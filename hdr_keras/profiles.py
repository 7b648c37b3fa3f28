"""Camera profiles: a camera's measured inverse response curve, saved once and used for its photos.

A profile is a small JSON file written by ``hdr-keras calibrate`` (:mod:`hdr_keras.calibrate`)::

    {"format": "hdr_keras camera profile", "version": 1,
     "make": "Canon", "model": "Canon EOS REBEL T2i", "camera": "canon eos rebel t2i",
     "method": "debevec", "channels": "shared",
     "inverse_crf": [1024 numbers],            # shared curve, g(0) = 0, g(1) = 1, non-decreasing
     "inverse_crf_rgb": [[1024], [1024], [1024]],  # only when the per-channel curves fit clearly better
     "fit_error": {...}, "frames": [...], "hdr_keras_version": "...", "created": "..."}

The curves follow :mod:`hdr_keras.crf`: 1024 samples on ``x_i = i / 1023``, brightness -> relative
irradiance, the model's ``inverse_crf`` convention. Profiles saved with ``--save`` live in a
per-user folder (:func:`profile_dir`), one file per camera, named by :func:`camera_key` of the
EXIF make and model, so that ``predict --camera_profile auto`` finds the one of a photo's camera.
"""

import dataclasses
import datetime
import fractions
import hashlib
import json
import os
import pathlib
import re

import numpy as np

from hdr_keras import crf

FORMAT = "hdr_keras camera profile"
VERSION = 1
PROFILE_DIR_NAME = pathlib.Path("hdr_keras") / "camera_profiles"
_EXIF_IFD = 0x8769
_MAKE, _MODEL, _EXPOSURE_TIME = 0x010F, 0x0110, 0x829A


class ProfileError(ValueError):
    """A profile file that cannot be used; the message is one line naming the file and the reason."""


def camera_key(make, model):
    """The normalised camera name of an EXIF make and model: lower case, single spaces, make once.

    ``("Canon", "EOS 5D Mark II")`` and ``("Canon", "Canon EOS 5D Mark II")`` both give
    ``"canon eos 5d mark ii"``; ``("NIKON CORPORATION", "NIKON D800")`` gives
    ``"nikon corporation d800"`` (a model that repeats the make, or its first word, drops it).
    """
    make = " ".join(str(make or "").lower().split())
    model = " ".join(str(model or "").lower().split())
    for prefix in dict.fromkeys((make, make.split(" ")[0] if make else "")):
        if prefix and (model == prefix or model.startswith(prefix + " ")):
            model = model[len(prefix):].strip()
            break
    return " ".join(part for part in (make, model) if part)


def _file_stem(key):
    return re.sub(r"[^a-z0-9]+", "-", key).strip("-") or "camera"


def profile_dir():
    """The per-user profile folder: ``$XDG_DATA_HOME/hdr_keras/camera_profiles`` (default
    ``~/.local/share/hdr_keras/camera_profiles``), the XDG base-directory convention."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    root = pathlib.Path(base) if os.path.isabs(base) else pathlib.Path.home() / ".local" / "share"
    return root / PROFILE_DIR_NAME


@dataclasses.dataclass(frozen=True)
class Exif:
    """What calibration and profile lookup read from a photo's EXIF (``None`` where absent)."""

    make: str = None
    model: str = None
    exposure_time: float = None

    @property
    def camera(self):
        """:func:`camera_key` of make and model, or ``None`` without either."""
        return camera_key(self.make, self.model) if (self.make or self.model) else None


def _text(value):
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    value = str(value).replace("\x00", " ").strip() if value is not None else ""
    return value or None


def read_exif(path):
    """:class:`Exif` of an image file (JPEG, PNG, TIFF, ...); all ``None`` without EXIF.

    Raises ``OSError`` / ``PIL.UnidentifiedImageError`` when the file is not an image.
    """
    from PIL import Image

    with Image.open(path) as image:
        exif = image.getexif()
        time = exif.get_ifd(_EXIF_IFD).get(_EXPOSURE_TIME, exif.get(_EXPOSURE_TIME))
    try:
        time = float(fractions.Fraction(str(time))) if time is not None else None
    except (ValueError, ZeroDivisionError):
        time = None
    if time is not None and not (time > 0 and np.isfinite(time)):
        time = None
    return Exif(_text(exif.get(_MAKE)), _text(exif.get(_MODEL)), time)


@dataclasses.dataclass(frozen=True)
class Profile:
    """A camera profile. ``inverse_crf`` float32 [1024] (shared curve); ``inverse_crf_rgb`` float32
    [3, 1024] or ``None``; ``fit_error`` and ``frames`` as written by calibrate."""

    make: str
    model: str
    method: str
    inverse_crf: np.ndarray
    inverse_crf_rgb: np.ndarray = None
    fit_error: dict = dataclasses.field(default_factory=dict)
    frames: list = dataclasses.field(default_factory=list)
    created: str = None
    hdr_keras_version: str = None

    @property
    def camera(self):
        return camera_key(self.make, self.model)

    def to_dict(self):
        """The JSON document (curves rounded to 7 decimals)."""
        data = {
            "format": FORMAT,
            "version": VERSION,
            "make": self.make,
            "model": self.model,
            "camera": self.camera,
            "method": self.method,
            "channels": "shared" if self.inverse_crf_rgb is None else "per_channel",
            "fit_error": self.fit_error,
            "frames": self.frames,
            "created": self.created or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "hdr_keras_version": self.hdr_keras_version or _package_version(),
            "inverse_crf": np.round(np.asarray(self.inverse_crf, np.float64), 7).tolist(),
        }
        if self.inverse_crf_rgb is not None:
            data["inverse_crf_rgb"] = np.round(np.asarray(self.inverse_crf_rgb, np.float64), 7).tolist()
        return data


def _package_version():
    from hdr_keras import __version__

    return __version__


def _check_curve(values, shape, path, key):
    try:
        curve = np.asarray(values, np.float64)
    except (TypeError, ValueError):
        raise ProfileError(f"{path}: {key} is not an array of numbers") from None
    if curve.shape != shape or not np.isfinite(curve).all():
        raise ProfileError(f"{path}: {key} must be {list(shape)} finite numbers")
    if np.diff(curve, axis=-1).min() < -1e-6 or abs(curve[..., 0]).max() > 1e-6 or abs(curve[..., -1] - 1).max() > 1e-6:
        raise ProfileError(f"{path}: {key} must be non-decreasing from 0 to 1")
    return curve.astype(np.float32)


def load_profile(path):
    """Reads and checks a profile file; raises :class:`ProfileError` (one line) if it is not one."""
    path = pathlib.Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileError(f"{path}: camera profile not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProfileError(f"{path}: cannot read this camera profile ({error.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProfileError(f"{path}: not a camera profile (no \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise ProfileError(f"{path}: camera profile version {data.get('version')!r}, this hdr_keras reads {VERSION}")
    curve = _check_curve(data.get("inverse_crf"), (crf.NUM_SAMPLES,), path, "inverse_crf")
    rgb = data.get("inverse_crf_rgb")
    rgb = None if rgb is None else _check_curve(rgb, (3, crf.NUM_SAMPLES), path, "inverse_crf_rgb")
    return Profile(
        make=data.get("make"),
        model=data.get("model"),
        method=data.get("method"),
        inverse_crf=curve,
        inverse_crf_rgb=rgb,
        fit_error=data.get("fit_error") or {},
        frames=data.get("frames") or [],
        created=data.get("created"),
        hdr_keras_version=data.get("hdr_keras_version"),
    )


def write_profile(profile, path):
    """Writes ``profile`` as JSON to ``path`` (atomically: a temporary file renamed into place)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with open(partial, "w") as file:
            json.dump(profile.to_dict(), file, indent=1)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def saved_profile_path(camera, directory=None):
    """Where the saved profile of the camera named ``camera`` (a :func:`camera_key`) lives."""
    return pathlib.Path(directory or profile_dir()) / f"{_file_stem(camera)}.json"


def save_profile(profile, directory=None):
    """Saves ``profile`` in the per-user folder (or ``directory``) under its camera; returns the path."""
    if not profile.camera:
        raise ProfileError("cannot save a camera profile without the camera's make and model (EXIF); pass --output")
    return write_profile(profile, saved_profile_path(profile.camera, directory))


def find_profile(make, model, directory=None):
    """The path of the saved profile of the camera ``make`` / ``model``, or ``None``."""
    if not (make or model):
        return None
    path = saved_profile_path(camera_key(make, model), directory)
    return path if path.is_file() else None


def sha256(path):
    """Hex SHA-256 of a file (recorded in sidecars beside the profile's path)."""
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def describe(profile, path):
    """What a sidecar records of ``profile`` read from ``path``: camera, file name and path, SHA-256, method."""
    path = pathlib.Path(path)
    return {"camera": profile.camera, "name": path.name, "path": str(path.resolve()), "sha256": sha256(path),
            "method": profile.method}  # fmt: skip


PROFILE_CHOICES = ("auto", "none")
"""The words ``--camera_profile`` takes besides a file path."""


def resolve(setting, image_path, directory=None):
    """The profile that ``predict --camera_profile SETTING`` uses for ``image_path``: ``(Profile, path)`` or ``None``.

    ``"none"``: none. ``"auto"``: the saved profile of the camera named in the photo's EXIF, if any
    (a photo without EXIF make/model, or not readable by Pillow, gets none). Any other value is a
    profile file, loaded and checked (:class:`ProfileError` if it is not one).
    """
    if setting is None or setting == "none":
        return None
    if setting == "auto":
        try:
            exif = read_exif(image_path)
        except Exception:  # an image Pillow cannot parse: predict reports it when it reads it
            return None
        path = find_profile(exif.make, exif.model, directory)
        return None if path is None else (load_profile(path), path)
    return load_profile(setting), pathlib.Path(setting)
