"""The forward camera model HDR -> LDR, as batched, graph-safe tensor ops (docs/design.md#image-formation).

``L = Q(F(C(H t + noise)))``: exposure ``t``, sensor noise, clipping ``C(x) = min(x, 1)``, a
camera curve ``F`` (1024 samples, one per image), 8-bit quantisation ``Q`` and optional JPEG.
Optionally (off by default) the steps in-camera JPEG engines add to the global curve: a local tone
map before the clip (:func:`local_tone`), and after the curve a display-domain saturation boost and
sharpening (:func:`display_finish`).
Every function takes NHWC float32. Written with ``keras.ops``: on the TensorFlow backend these are
TensorFlow ops that run inside ``tf.data`` and in a compiled step on a GPU; on JAX they run in a
jitted step (JPEG through a host callback, :func:`jpeg`). Randomness is stateless (:mod:`hdr_keras.seeds`), so a seed
gives the same images on any device.
"""

import dataclasses

import numpy as np
from keras import ops

from hdr_keras import seeds as random
from hdr_keras.ops import apply_curve, luminance, saturate

__all__ = ["CameraModel", "add_noise", "apply_curve", "clip", "display_finish", "jpeg", "local_tone", "loss_weight", "quantize"]

DARK, BRIGHT = 6.0 / 255.0, 249.0 / 255.0
LOCAL_TONE_BLOCK = 16
"""The local tone map's luminance: means of 16 x 16 blocks, smoothed by two 3 x 3 means, bilinear back
(a blur about 60 px across)."""
MAX_LOCAL_GAIN = 4.0
"""The local tone map's gain stays within ``[1 / 4, 4]`` (two stops)."""
_GAUSSIAN_5 = np.outer(*(2 * [np.exp(-0.5 * np.arange(-2, 3) ** 2)]))
SHARPEN_KERNEL = (_GAUSSIAN_5 / _GAUSSIAN_5.sum()).astype(np.float32)
"""5x5 Gaussian (sigma 1 px) of the unsharp mask."""


def clip(images):
    """``C(x) = min(x, 1)``."""
    return ops.minimum(images, 1.0)


def quantize(images):
    """8-bit quantisation ``floor(255 x + 0.5) / 255`` of [0, 1] images."""
    return ops.floor(255.0 * images + 0.5) / 255.0


def add_noise(images, shot_std, read_std, seed):
    """``relu(x + s x N(0,1) + c N(0,1))``; ``shot_std``, ``read_std`` broadcast to [N, 1, 1, C]."""
    seeds = random.split(seed, 2)
    shot = random.normal(ops.shape(images), seeds[0])
    read = random.normal(ops.shape(images), seeds[1])
    return ops.relu(images + shot_std * images * shot + read_std * read)


def jpeg(images, quality):
    """JPEG round trip of each [0, 1] image [N, H, W, 3] at its integer ``quality`` [N], 4:2:0 chroma.

    Real photos are baseline JPEG with 4:2:0 chroma subsampling. TensorFlow backend:
    ``tf.image.adjust_jpeg_quality`` (libjpeg; it subsamples chroma 4:2:0, like
    ``tf.io.encode_jpeg(chroma_downsampling=True)``), a CPU op. JAX backend: OpenCV's
    ``cv2.imencode`` (``IMWRITE_JPEG_SAMPLING_FACTOR_420``) on the host through
    ``jax.pure_callback``, so a jitted step can use it (not differentiable; the LDR is an input).
    """
    import keras

    if keras.backend.backend() == "jax":
        import jax

        shape = jax.ShapeDtypeStruct(images.shape, "float32")
        return jax.pure_callback(_jpeg_host, shape, images, ops.cast(quality, "int32"), vmap_method="sequential")
    import tensorflow as tf

    def one(args):
        image, q = args
        return tf.image.adjust_jpeg_quality(image, q)

    return tf.map_fn(one, (images, tf.cast(quality, tf.int32)), fn_output_signature=tf.float32)


def _jpeg_host(images, quality):
    """:func:`jpeg` with OpenCV on NumPy arrays: float [N, H, W, 3] in [0, 1], int [N] -> float32."""
    import cv2

    out = np.empty(images.shape, np.float32)
    for i, (image, q) in enumerate(zip(np.asarray(images), np.asarray(quality))):
        bgr = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)[..., ::-1]
        params = [cv2.IMWRITE_JPEG_QUALITY, int(q), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
        ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(bgr), params)
        if not ok:
            raise RuntimeError(f"OpenCV could not JPEG-encode a {image.shape} image at quality {int(q)}")
        out[i] = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1] / np.float32(255.0)
    return out


def local_tone(images, strength):
    """Local tone map of linear images [N, H, W, 3] >= 0: ``x * clip((local / global)^-strength, 1/4, 4)``.

    ``local`` is the luminance blurred over about 60 px (:data:`LOCAL_TONE_BLOCK`), ``global`` its
    image mean; ``strength`` [N, 1, 1, 1] in [0, 1) (0: unchanged). Shadows are lifted and bright
    areas held down, varying across the image, as cameras' shadow and highlight optimisers do.
    """
    height, width = images.shape[1], images.shape[2]
    local = ops.average_pool(luminance(images), LOCAL_TONE_BLOCK, LOCAL_TONE_BLOCK, padding="same")
    for _ in range(2):
        local = ops.average_pool(local, 3, 1, padding="same")
    local = ops.image.resize(local, (height, width), interpolation="bilinear")
    overall = ops.mean(local, axis=(1, 2), keepdims=True) + 1e-6
    gain = ops.power(ops.maximum(local, 1e-6) / overall, -strength)
    return images * ops.clip(gain, 1.0 / MAX_LOCAL_GAIN, MAX_LOCAL_GAIN)


def display_finish(images, saturation, sharpening):
    """After the curve, on display values [N, H, W, 3] in [0, 1]: saturation ``Y + (1 + s)(x - Y)``, then
    the unsharp mask ``x + a (x - G x)`` (``G``: :data:`SHARPEN_KERNEL`); ``saturation`` s and
    ``sharpening`` a [N, 1, 1, 1] >= 0 (0: unchanged). Clipped to [0, 1]."""
    images = saturate(images, 1.0 + saturation)  # on display values, as camera engines do
    kernel = ops.convert_to_tensor(np.repeat(SHARPEN_KERNEL[:, :, None, None], 3, axis=2))
    padded = ops.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="symmetric")
    blurred = ops.depthwise_conv(padded, kernel, strides=1, padding="valid")
    return ops.clip(images + sharpening * (images - blurred), 0.0, 1.0)


def loss_weight(ldr):
    """1.0 per sample [N] unless more than half of its grey pixels are <= 6/255 or >= 249/255."""
    grey = ops.mean(ldr, axis=-1)
    bad = ops.cast(ops.logical_or(grey <= DARK, grey >= BRIGHT), "float32")
    return ops.cast(ops.mean(bad, axis=(1, 2)) <= 0.5, "float32")


@dataclasses.dataclass
class CameraModel:
    """Random cameras of the training recipe (docs/design.md#training) over a table of curves.

    ``forward_curves`` and ``inverse_curves`` are [M, 1024] (see
    :func:`hdr_keras.crf.training_curves`). Calling it on HDR crops [N, H, W, 3] >= 0 with a
    stateless ``seed`` (int32 [2]) returns a dict of [N, H, W, 3] images — ``hdr`` (``H t``, the
    unclipped target), ``clipped`` (``C`` after noise, the linear target), ``pre_quantization``
    (``F(C)``), ``ldr`` (quantised; JPEG-compressed for a ``jpeg_fraction`` of the samples when
    JPEG is enabled), ``linear_ldr`` (``F^-1(ldr)``: the LDR linearised with the true curve, what
    the Hallucination-Net sees at inference when the curve is right) — plus ``inverse_crf``
    [N, 1024] (true ``F^-1``), ``exposure`` [N] and ``loss_weight`` [N].

    ``local_tone``, ``display_saturation``, ``sharpening``: the largest strength of each in-camera
    step (:func:`local_tone`, :func:`display_finish`), drawn per image from U(0, max); 0 turns a step
    off. The local tone map acts on ``H t`` before the clip, so ``hdr`` and ``clipped`` include it
    (the global curve stays the one to recover); saturation and sharpening act on ``pre_quantization``.
    """

    forward_curves: np.ndarray
    inverse_curves: np.ndarray
    exposure_stops: tuple = (-3.0, 3.0)
    exposure_levels: int = 600
    max_shot_std: float = 0.08 / 6.0
    max_read_std: float = 0.005
    jpeg_quality: tuple = (70, 98)
    jpeg_fraction: float = 0.75
    local_tone: float = 0.0
    display_saturation: float = 0.0
    sharpening: float = 0.0

    @property
    def in_camera(self):
        """Whether any in-camera step is on."""
        return bool(self.local_tone or self.display_saturation or self.sharpening)

    def sample(self, batch, seed):
        """Per-image parameters from a stateless seed: exposure [N], noise stds [N,1,1,3], curve index, quality."""
        seeds = random.split(seed, 6)
        level = random.uniform([batch], seeds[0], 0, self.exposure_levels, "int32")
        lo, hi = self.exposure_stops
        stops = lo + (hi - lo) * ops.cast(level, "float32") / max(self.exposure_levels - 1, 1)
        shot = random.uniform([batch, 1, 1, 3], seeds[1], 0.0, self.max_shot_std)
        read = random.uniform([batch, 1, 1, 3], seeds[2], 0.0, self.max_read_std)
        curve = random.uniform([batch], seeds[3], 0, len(self.forward_curves), "int32")
        quality = random.uniform([batch], seeds[4], self.jpeg_quality[0], self.jpeg_quality[1] + 1, "int32")
        compressed = random.uniform([batch], seeds[5], 0.0, 1.0) < self.jpeg_fraction
        params = {
            "exposure": ops.power(2.0, stops),
            "shot_std": shot,
            "read_std": read,
            "curve": curve,
            "quality": quality,
            "compressed": compressed,
        }
        if self.in_camera:  # own keys, so that the other draws do not change when these steps are on
            keys = random.split(seeds[5], 3)
            for i, name in enumerate(("local_tone", "display_saturation", "sharpening")):
                params[name] = random.uniform([batch, 1, 1, 1], keys[i], 0.0, getattr(self, name))
        return params

    def render(self, hdr, params, seed, use_jpeg=True):
        """Applies given ``params`` (as from :meth:`sample`) to HDR [N, H, W, 3]; see the class doc."""
        forward = ops.take(ops.convert_to_tensor(self.forward_curves, "float32"), params["curve"], axis=0)
        inverse = ops.take(ops.convert_to_tensor(self.inverse_curves, "float32"), params["curve"], axis=0)
        exposed = hdr * params["exposure"][:, None, None, None]
        if "local_tone" in params:
            exposed = local_tone(exposed, params["local_tone"])
        clipped = clip(add_noise(exposed, params["shot_std"], params["read_std"], seed))
        pre_quantization = apply_curve(clipped, forward)
        if "sharpening" in params:
            pre_quantization = display_finish(pre_quantization, params["display_saturation"], params["sharpening"])
        ldr = quantize(pre_quantization)
        if use_jpeg:
            ldr = ops.where(params["compressed"][:, None, None, None], jpeg(ldr, params["quality"]), ldr)
        return {
            "hdr": exposed,
            "clipped": clipped,
            "pre_quantization": pre_quantization,
            "ldr": ldr,
            "linear_ldr": apply_curve(ldr, inverse),
            "inverse_crf": inverse,
            "exposure": params["exposure"],
            "loss_weight": loss_weight(ldr),
        }

    def __call__(self, hdr, seed, use_jpeg=True):
        seeds = random.split(seed, 2)
        return self.render(hdr, self.sample(ops.shape(hdr)[0], seeds[0]), seeds[1], use_jpeg)
