"""HDR training data: a cache of normalised crops, and a deterministic tf.data pipeline over it.

The cache (DESIGN §5) holds float16 [M, S, S, 3] crops (S = ``crop_size``, 512 by default), each
normalised to mean 0.5 and clamped to the float16 range. Ordinary images are resized to short
side S and cut into ``crops_per_image`` crops spread along the long side; lat-long panoramas
(aspect >= 1.8) first lose their top and bottom eighths (the distorted poles), the middle rows
are resized to height S and cut likewise. The pipeline then samples crops with stateless seeds:
random scale U(0.5, 2), random ``crop`` square, rot90 and flips — all TensorFlow ops, run like the
camera model (:mod:`hdr_keras.camera`) inside the training step, on the device that trains.
"""

import hashlib
import json
import logging
import pathlib

import cv2
import numpy as np
import tensorflow as tf

from hdr_keras import io

DEFAULT_CACHE_DIR = pathlib.Path.home() / ".cache" / "hdr_keras"
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


def load_crops(hdr_dir, cache_dir=DEFAULT_CACHE_DIR, crop_size=512, crops_per_image=2, log=logging.warning):
    """Float16 crops [M, S, S, 3] of the HDR files in ``hdr_dir``, built once and cached.

    A file that cannot be used (unreadable, NaN/Inf, negative, all zero) is skipped with one
    warning naming it. Raises ValueError when no usable file is left.
    """
    hdr_dir = pathlib.Path(hdr_dir)
    if not hdr_dir.is_dir():
        raise FileNotFoundError(f"{hdr_dir}: HDR folder not found")
    paths = io.list_images([hdr_dir], io.HDR_EXTS)
    key = _fingerprint(paths, crop_size=crop_size, crops_per_image=crops_per_image)
    cache = pathlib.Path(cache_dir) / f"crops_{hdr_dir.name}_{key}.npy"
    if cache.is_file():
        return np.load(cache)
    crops = []
    for path in paths:
        try:
            image = io.read_hdr(path)
            io.validate_hdr(image, path)
        except io.ImageReadError as error:
            log(f"skipping {error}")
            continue
        crops.append(crops_from_image(image, crop_size, crops_per_image))
    if not crops:
        raise ValueError(f"{hdr_dir}: no usable HDR file (.hdr, .exr) in this folder")
    crops = np.minimum(np.concatenate(crops), io.HALF_MAX).astype(np.float16)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, crops)
    tmp.replace(cache)
    return crops


def augment(crop, seed, size=256, scale_range=(0.5, 2.0)):
    """One random view of a crop [S, S, C]: scale, ``size`` crop, rot90, flips -> [size, size, C] >= 0.

    ``seed`` is a stateless int32 [2]; the scale is kept large enough for the crop to fit.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    source = tf.cast(tf.shape(crop)[0], tf.float32)
    low = tf.maximum(scale_range[0], size / source)
    scale = tf.random.stateless_uniform([], seeds[0], low, tf.maximum(scale_range[1], low))
    side = tf.maximum(tf.cast(tf.round(source * scale), tf.int32), size)
    image = tf.image.resize(tf.cast(crop, tf.float32), [side, side], antialias=True)
    image = tf.image.stateless_random_crop(image, [size, size, tf.shape(crop)[-1]], seeds[1])
    turns = tf.random.stateless_uniform([], seeds[2], 0, 4, tf.int32)
    image = tf.image.rot90(image, turns)
    image = tf.image.stateless_random_flip_left_right(image, seeds[3])
    image = tf.image.stateless_random_flip_up_down(image, tf.reverse(seeds[3], [0]))
    return tf.maximum(image, 0.0)


def training_dataset(crops, batch_size, seed=0, start=0):
    """Infinite batches of cached crops for :func:`augment_batch`, which runs in the training step.

    Yields ``(crops, seeds)``: float16 [batch_size, S, S, C] crops picked at random from ``crops``
    [M, S, S, C], and int32 [batch_size, 2] augmentation seeds. Element ``i`` depends only on
    ``(seed, i)``, so ``start`` (elements already consumed, ``step * batch_size``) resumes the exact
    sequence after a restart. The pipeline only gathers: the augmentation and the camera model run
    on the training device, so the host never has to keep pace with an accelerator.
    """
    table = tf.constant(crops)
    count = len(crops)

    def element(index):
        element_seed = tf.cast(tf.stack([tf.constant(seed, tf.int64), index]) % (2**31 - 1), tf.int32)
        seeds = tf.random.experimental.stateless_split(element_seed, 2)
        pick = tf.random.stateless_uniform([], seeds[0], 0, count, tf.int32)
        return table[pick], seeds[1]

    dataset = tf.data.Dataset.range(start, 2**62).map(element, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def augment_batch(crops, seeds, size=256):
    """:func:`augment` over a batch: crops [N, S, S, C], seeds int32 [N, 2] -> float32 [N, size, size, C]."""
    return tf.map_fn(lambda args: augment(args[0], args[1], size), (crops, seeds), fn_output_signature=tf.float32)


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
