"""The synthetic test set: HDR scenes prepared as square crops and rendered through camera curves."""

import warnings

import cv2
import numpy as np

from hdr_keras import crf, io

DEFAULT_EXPOSURES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
DEFAULT_SIZE = 512
SCENE_MEAN = 0.5
GAMMA = 2.2


def prepare_scene(image, size=DEFAULT_SIZE):
    """HDR [H, W, 3] -> float32 [size, size, 3]: short side to ``size``, centre crop, mean 0.5.

    Resizing uses ``cv2.INTER_AREA`` and is skipped when the short side already equals ``size``;
    the crop keeps the middle (for 2:1 lat-long panoramas, the middle columns, all rows).
    Negative values (tolerated by :func:`hdr_keras.io.validate_hdr`) are set to 0 first.
    Raises ValueError when the crop holds no positive value.
    """
    image = np.maximum(np.asarray(image, np.float32), 0.0)
    height, width = image.shape[:2]
    if min(height, width) != size:
        scale = size / min(height, width)
        new_h = size if height <= width else max(size, int(round(height * scale)))
        new_w = size if width <= height else max(size, int(round(width * scale)))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        height, width = new_h, new_w
    top, left = (height - size) // 2, (width - size) // 2
    image = np.ascontiguousarray(image[top : top + size, left : left + size])
    mean = float(image.mean(dtype=np.float64))
    if not mean > 0.0:
        raise ValueError("crop is all zero")
    return (image * (SCENE_MEAN / mean)).astype(np.float32)


def load_scenes(hdr_paths, size=DEFAULT_SIZE, max_images=None):
    """Reads, validates and prepares HDR files; returns ``(scenes, skipped)``.

    ``hdr_paths``: a folder, a file, or a list of them (folders are listed with
    :func:`hdr_keras.io.list_images` over :data:`hdr_keras.io.HDR_EXTS`, sorted by name).
    ``scenes`` is a list of ``(path, float32 [size, size, 3])``; unreadable or invalid files are
    skipped with a warning naming them and listed in ``skipped`` as ``{"file", "reason"}``.
    ``max_images`` keeps the first that many usable files.
    """
    scenes, skipped = [], []
    for path in io.list_images(hdr_paths, io.HDR_EXTS):
        if max_images is not None and len(scenes) >= max_images:
            break
        try:
            image = io.read_hdr(path)
            io.validate_hdr(image, path)
            scene = prepare_scene(image, size)
        except (ValueError, OSError, cv2.error) as error:
            reason = str(error)
            if not reason.startswith(str(path)):
                reason = f"{path}: {reason}"
            warnings.warn(f"skipping HDR file {reason}", stacklevel=2)
            skipped.append({"file": str(path), "reason": reason})
            continue
        scenes.append((path, scene))
    return scenes, skipped


def render(scene, forward_curve, exposures, jpeg_quality=None):
    """Deterministic LDRs of one scene under one forward curve at each exposure (in stops).

    Returns numpy float32 arrays [E, H, W, 3]: ``hdr`` (``H t``, unclipped), ``clipped``
    (``C(H t)``), ``pre_quantization`` (``F(C(H t))``) and ``ldr`` (``Q(F(C(H t)))``, then a JPEG
    round trip at ``jpeg_quality`` when given). No noise: the camera model's building blocks
    :func:`hdr_keras.camera.clip`, ``apply_curve``, ``quantize`` and ``jpeg`` are applied directly.
    """
    import tensorflow as tf

    from hdr_keras import camera

    t = tf.pow(2.0, tf.constant(exposures, tf.float32))
    hdr = tf.constant(scene)[None] * t[:, None, None, None]
    clipped = camera.clip(hdr)
    curves = tf.repeat(tf.constant(np.asarray(forward_curve, np.float32))[None], len(exposures), axis=0)
    pre_quantization = camera.apply_curve(clipped, curves)
    ldr = camera.quantize(pre_quantization)
    if jpeg_quality is not None:
        ldr = camera.jpeg(ldr, tf.fill([len(exposures)], int(jpeg_quality)))
    return {
        "hdr": np.asarray(hdr),
        "clipped": np.asarray(clipped),
        "pre_quantization": np.asarray(pre_quantization),
        "ldr": np.asarray(ldr),
    }


def apply_curves(ldr, curves):
    """Each of ``curves`` [K, 1024] applied to each LDR [E, H, W, 3] -> tensor [K, E, H, W, 3].

    The same interpolation as the model's (:func:`hdr_keras.ops.apply_curve`); graph-safe.
    """
    import tensorflow as tf

    from hdr_keras import ops

    ldr, curves = tf.convert_to_tensor(ldr, tf.float32), tf.convert_to_tensor(curves, tf.float32)
    k, e = tf.shape(curves)[0], tf.shape(ldr)[0]
    images = tf.reshape(tf.tile(ldr[None], [k, 1, 1, 1, 1]), tf.concat([[k * e], tf.shape(ldr)[1:]], 0))
    table = tf.reshape(tf.tile(curves[:, None], [1, e, 1]), [k * e, -1])
    out = ops.apply_curve(images, table)
    return tf.reshape(out, tf.concat([[k, e], tf.shape(ldr)[1:]], 0))


def gamma_curve(gamma=GAMMA):
    """The inverse gamma curve ``x^gamma`` on the 1024-sample grid, float32."""
    return (crf.GRID**gamma).astype(np.float32)
