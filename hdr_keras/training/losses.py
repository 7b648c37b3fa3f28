"""Loss terms of the training recipe (docs/design.md#training, paper eq. 4). Images are NHWC float32; any Keras backend."""

import math

import keras
from keras import ops

LOG_SCALE = 10.0


def log_tonemap(hdr):
    """``y = log(1 + 10 x) / log(11)``: HDR >= 0 -> [0, ~5] (1 at x = 1), the hallucination domain."""
    return ops.log1p(LOG_SCALE * ops.maximum(hdr, 0.0)) / math.log(1.0 + LOG_SCALE)


def weighted_mean(per_sample, weight):
    """Mean of ``per_sample`` [N] weighted by ``weight`` [N] (0 drops a sample); 0 when all dropped."""
    return ops.sum(per_sample * weight) / ops.maximum(ops.sum(weight), 1.0)


def l2(prediction, target, weight):
    """Per-sample mean squared error, sample-weighted."""
    return weighted_mean(ops.mean(ops.square(prediction - target), axis=(1, 2, 3)), weight)


def l1(prediction, target, weight):
    """Per-sample mean absolute error, sample-weighted."""
    return weighted_mean(ops.mean(ops.abs(prediction - target), axis=(1, 2, 3)), weight)


def mean_l2(prediction, target):
    """Mean squared error over every element: curves [N, 1024], or images with no sample dropped."""
    return ops.mean(ops.square(prediction - target))


def clipped_region(hdr, level=1.0):
    """[N, H, W, 1] float: 1 where the true radiance reaches the camera's clip ``level`` in any channel."""
    return ops.cast(ops.max(hdr, axis=-1, keepdims=True) >= level, "float32")


def _region_mean(per_pixel, region, weight):
    """Per-sample mean of ``per_pixel`` [N, H, W, 1] over ``region`` [N, H, W, 1], sample-weighted;
    samples without a region count 0."""
    area = ops.sum(region, axis=(1, 2, 3))
    per_sample = ops.sum(per_pixel * region, axis=(1, 2, 3)) / ops.maximum(area, 1.0)
    return weighted_mean(per_sample, weight * ops.cast(area > 0, "float32"))


def chroma_l1(prediction, target, region, weight):
    """Mean L1 of the chromaticities ``rgb / sum`` inside ``region``: the colour of a fill, not its level."""

    def chroma(x):
        x = ops.maximum(x, 0.0)
        return x / (ops.sum(x, axis=-1, keepdims=True) + 1e-4)

    per_pixel = ops.sum(ops.abs(chroma(prediction) - chroma(target)), axis=-1, keepdims=True)
    return _region_mean(per_pixel, region, weight)


def log_luminance_l1(prediction, target, region, weight):
    """Mean L1 of ``log(mean_c x + 1e-3)`` inside ``region``: the level of a fill, in stops / ln 2."""

    def log_level(x):
        return ops.log(ops.mean(ops.maximum(x, 0.0), axis=-1, keepdims=True) + 1e-3)

    return _region_mean(ops.abs(log_level(prediction) - log_level(target)), region, weight)


def total_variation(images, weight):
    """Per-sample mean absolute difference of vertical and horizontal neighbours, sample-weighted.

    ``ops.slice``, not ``[:, 1:]`` indexing: on TensorFlow the gradient of a strided slice is a
    slow scatter (measured 39 vs 7.5 ms per 8x256x256 step on a CPU), that of a slice a pad.
    """
    n, h, w, c = ops.shape(images)
    dy = ops.slice(images, (0, 1, 0, 0), (n, h - 1, w, c)) - ops.slice(images, (0, 0, 0, 0), (n, h - 1, w, c))
    dx = ops.slice(images, (0, 0, 1, 0), (n, h, w - 1, c)) - ops.slice(images, (0, 0, 0, 0), (n, h, w - 1, c))
    return weighted_mean(ops.mean(ops.abs(dy), axis=(1, 2, 3)) + ops.mean(ops.abs(dx), axis=(1, 2, 3)), weight)


class PerceptualLoss:
    """L2 of VGG16 pool1..pool3 features of tone-mapped images, from user-supplied VGG16 weights.

    ``weights_path`` is a Keras weights file of ``keras.applications.VGG16(include_top=False)``
    (ImageNet weights cannot be downloaded here). Inputs are in the log tone-mapped domain.
    """

    LAYERS = ("block1_pool", "block2_pool", "block3_pool")

    def __init__(self, weights_path):
        vgg = keras.applications.VGG16(include_top=False, weights=None)
        vgg.load_weights(weights_path)
        vgg.trainable = False
        self.features = keras.Model(vgg.input, [vgg.get_layer(name).output for name in self.LAYERS])

    def __call__(self, prediction, target, weight):
        def prepare(images):
            images = ops.clip(images, 0.0, 1.0) * 255.0
            return keras.applications.vgg16.preprocess_input(images)

        total = 0.0
        for fp, ft in zip(self.features(prepare(prediction)), self.features(prepare(target))):
            total += l2(ops.cast(fp, "float32"), ops.cast(ft, "float32"), weight)
        return total
