"""HDR training data: a cache of normalised crops, and a deterministic tf.data pipeline over it.

The cache (docs/design.md#training) holds float16 [M, S, S, 3] crops (S = ``crop_size``, 512 by default), each
normalised to mean 0.5 and clamped to the float16 range. Ordinary images are resized to short
side S and cut into ``crops_per_image`` crops spread along the long side; lat-long panoramas
(aspect >= 1.8) first lose their top and bottom eighths (the distorted poles), the middle rows
are resized to height S and cut likewise. The pipeline then samples crops with stateless seeds:
random scale U(0.5, 2), random ``crop`` square, rotations and flips, optionally white balance and
saturation (:func:`augment_batch`, ``keras.ops`` on any backend), run like the camera model
(:mod:`hdr_keras.camera`) inside the training step, on the device that trains. Only
:func:`training_dataset` is TensorFlow (``tf.data``); it imports TensorFlow when called.
"""

import hashlib
import json
import logging
import os
import pathlib

import cv2
import numpy as np
from keras import ops

from hdr_keras import io, paths
from hdr_keras import ops as hdr_ops
from hdr_keras import seeds as random

PANORAMA_ASPECT = 1.8
CACHE_VERSION = 1


def crops_from_image(image, crop_size=512, crops_per_image=2):
    """Normalised crops float32 [k, S, S, 3] of one HDR image [H, W, 3] (see the module doc)."""
    height, width = image.shape[:2]
    if width >= PANORAMA_ASPECT * height:
        image = image[height // 8 : height - height // 8]
        height = image.shape[0]
    scale = crop_size / min(height, width)
    size = (max(crop_size, round(width * scale)), max(crop_size, round(height * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    height, width = image.shape[:2]
    count = crops_per_image if max(height, width) > crop_size else 1
    crops = []
    for i in range(count):
        y = round(i * (height - crop_size) / max(count - 1, 1))
        x = round(i * (width - crop_size) / max(count - 1, 1))
        crop = np.maximum(image[y : y + crop_size, x : x + crop_size], 0.0)
        crops.append(crop * (0.5 / max(float(crop.mean()), 1e-12)))
    return np.stack(crops).astype(np.float32)


def _fingerprint(paths, **params):
    items = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    blob = json.dumps({"files": items, "params": params, "version": CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_crops(hdr_dir, cache_dir=paths.DEFAULT_CACHE_DIR, crop_size=512, crops_per_image=2, log=logging.warning):
    """Float16 crops [M, S, S, 3] of the HDR files in ``hdr_dir``, built once and cached.

    A file that cannot be used (unreadable, a symlink loop, a header declaring a size too large
    to read, NaN/Inf, negative, all zero) is skipped with one warning naming it. Raises
    ValueError when no usable file is left.
    """
    hdr_dir = pathlib.Path(hdr_dir)
    if not hdr_dir.is_dir():
        raise FileNotFoundError(f"{hdr_dir}: HDR folder not found; {paths.MISSING_HINT}")
    files = io.list_images([hdr_dir], io.HDR_EXTS)
    key = _fingerprint(files, crop_size=crop_size, crops_per_image=crops_per_image)
    cache = pathlib.Path(cache_dir) / f"crops_{hdr_dir.name}_{key}.npy"
    if cache.is_file():
        return np.load(cache)
    crops = []
    for path in files:
        try:
            image = io.read_hdr(path)
            io.validate_hdr(image, path)
        except io.ImageReadError as error:
            log(f"skipping {error}")
            continue
        except MemoryError:  # a header declaring a huge image that the reader tried to allocate
            log(f"skipping {path}: out of memory reading it (does its header declare a huge size?)")
            continue
        crops.append(crops_from_image(image, crop_size, crops_per_image))
    if not crops:
        raise ValueError(f"{hdr_dir}: no usable HDR file (.hdr, .exr) in this folder")
    crops = np.minimum(np.concatenate(crops), io.HALF_MAX).astype(np.float16)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.stem}.{os.getpid()}.tmp.npy")  # one per process: workers build it at once
    np.save(tmp, crops)
    tmp.replace(cache)
    return crops


def _resampling_rows(source, size, scale, offset, flip):
    """[N, size, source] weights: output pixel i from source pixels near ``(offset + i + 0.5) / scale - 0.5``.

    Linear interpolation, widened to ``1 / scale`` source pixels when shrinking (antialiased, as
    ``tf.image.resize(antialias=True)``); rows sum to 1; ``flip`` [N] bool reverses the output order.
    """
    i = ops.arange(size, dtype="float32")[None, :]
    i = ops.where(flip[:, None], size - 1 - i, i)
    centre = (offset[:, None] + i + 0.5) / scale[:, None] - 0.5
    radius = ops.maximum(1.0, 1.0 / scale)[:, None, None]
    taps = ops.arange(source, dtype="float32")[None, None, :]
    weights = ops.relu(1.0 - ops.abs(taps - centre[..., None]) / radius)
    return weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-12)


def augment_batch(crops, seeds, size=256, scale_range=(0.5, 2.0), white_balance_stops=0.0, saturation_jitter=0.0):
    """Random views of cached crops: crops [N, S, S, C], seeds [N, 2] -> float32 [N, size, size, C] >= 0.

    Per image, from its stateless seed only (:mod:`hdr_keras.seeds`): scale U(scale_range) (raised
    to at least ``size / S`` so the view fits), a random ``size`` square of the scaled image, and
    one of the 8 rotations/flips. On 3-channel linear HDR, optional photometric changes (off at 0):
    white balance, R and B gains ``2^U(-w, w)`` relative to G (``w = white_balance_stops``), and
    saturation, a blend ``Y + f (x - Y)`` with the luminance ``Y``, ``f ~ U(1 - s, 1 + s)``
    (``s = saturation_jitter``). Written with ``keras.ops`` (static shapes, no resize op), so the
    TensorFlow loop and ``scripts/train_jax.py`` run the same augmentation inside their steps.
    """
    crops = ops.cast(crops, "float32")
    source = int(crops.shape[1])
    low = max(scale_range[0], size / source)
    high = max(scale_range[1], low)
    u = ops.map(lambda seed: random.uniform([9], seed), seeds)
    scale = low + (high - low) * u[:, 0]
    span = ops.maximum(source * scale - size, 0.0)
    rows = _resampling_rows(source, size, scale, span * u[:, 1], u[:, 3] < 0.5)
    cols = _resampling_rows(source, size, scale, span * u[:, 2], u[:, 4] < 0.5)
    images = ops.einsum("nys,nsxc->nyxc", rows, crops)
    images = ops.einsum("nxs,nysc->nyxc", cols, images)
    transpose = (u[:, 5] < 0.5)[:, None, None, None]
    images = ops.where(transpose, ops.transpose(images, (0, 2, 1, 3)), images)
    if images.shape[-1] == 3 and white_balance_stops:
        stops = white_balance_stops * (2.0 * u[:, 6:8] - 1.0)
        gains = ops.stack([ops.power(2.0, stops[:, 0]), ops.ones_like(stops[:, 0]), ops.power(2.0, stops[:, 1])], axis=-1)
        images = images * gains[:, None, None, :]
    if images.shape[-1] == 3 and saturation_jitter:
        images = hdr_ops.saturate(images, (1.0 + saturation_jitter * (2.0 * u[:, 8] - 1.0))[:, None, None, None])
    return ops.maximum(images, 0.0)


def training_dataset(crops, batch_size, seed=0, start=0):
    """Infinite batches of cached crops for :func:`augment_batch`, which runs in the training step.

    Yields ``(crops, seeds)``: float16 [batch_size, S, S, C] crops picked at random from ``crops``
    [M, S, S, C], and int32 [batch_size, 2] augmentation seeds. Element ``i`` depends only on
    ``(seed, i)``, so ``start`` (elements already consumed, ``step * batch_size``) resumes the exact
    sequence after a restart. The pipeline only gathers: the augmentation and the camera model run
    on the training device, so the host never has to keep pace with an accelerator.
    """
    import tensorflow as tf

    table = tf.constant(crops)
    count = len(crops)

    def element(index):
        element_seed = tf.cast(tf.stack([tf.constant(seed, tf.int64), index]) % (2**31 - 1), tf.int32)
        seeds = tf.random.experimental.stateless_split(element_seed, 2)
        pick = tf.random.stateless_uniform([], seeds[0], 0, count, tf.int32)
        return table[pick], seeds[1]

    dataset = tf.data.Dataset.range(start, 2**62).map(element, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def load_pairs(pairs_dir, size=512, log=logging.warning):
    """Real LDR/HDR pairs of ``pairs_dir``: each ``*.jpg|*.png`` with a same-stem ``.exr|.hdr``.

    Returns float16 [M, S, S, 6] (LDR in [0, 1] then HDR, resized together to short side ``S``
    and centre-cropped). Unusable pairs are skipped with a warning naming the file.
    """
    pairs_dir = pathlib.Path(pairs_dir)
    if not pairs_dir.is_dir():
        raise FileNotFoundError(f"{pairs_dir}: pairs folder not found")
    out = []
    for ldr_path in io.list_images([pairs_dir], (".jpg", ".jpeg", ".png")):
        hdr_path = next((p for p in (ldr_path.with_suffix(e) for e in (".exr", ".hdr")) if p.is_file()), None)
        if hdr_path is None:
            log(f"skipping {ldr_path}: no {ldr_path.stem}.exr or {ldr_path.stem}.hdr beside it")
            continue
        try:
            ldr, hdr = io.read_ldr(ldr_path), io.read_hdr(hdr_path)
            io.validate_hdr(hdr, hdr_path)
        except io.ImageReadError as error:
            log(f"skipping {error}")
            continue
        if ldr.shape != hdr.shape:
            log(f"skipping {ldr_path}: LDR {ldr.shape[:2]} and HDR {hdr.shape[:2]} differ in size")
            continue
        stacked = np.concatenate([ldr, np.minimum(hdr, io.HALF_MAX)], axis=-1)
        scale = size / min(stacked.shape[:2])
        stacked = cv2.resize(stacked, (round(stacked.shape[1] * scale), round(stacked.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        y, x = (stacked.shape[0] - size) // 2, (stacked.shape[1] - size) // 2
        out.append(stacked[y : y + size, x : x + size])
    if not out:
        raise ValueError(f"{pairs_dir}: no usable LDR/HDR pair")
    return np.stack(out).astype(np.float16)


def validation_batch(crops, size=256, max_images=8):
    """Deterministic centre crops float32 [k, size, size, 3] (k <= max_images) for validation."""
    crops = np.asarray(crops[:max_images], np.float32)
    offset = (crops.shape[1] - size) // 2
    return crops[:, offset : offset + size, offset : offset + size]
