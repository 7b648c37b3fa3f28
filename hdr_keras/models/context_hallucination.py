"""Context Hallucination-Net: fills whole clipped regions at a working resolution (docs/design.md#stages).

The HDRCNN-style :class:`~hdr_keras.models.HallucinationNet` sees a few dozen pixels around each
clipped pixel and invents each channel freely; at photo resolution a clipped sky is far larger,
and the fill came out blotchy, box-edged and off-colour. This stage splits the fill into what a
network can judge from the whole image, *how much brighter*, and what the image itself says,
*which colour*, and guarantees the rest by construction (docs/design.md, "Context Hallucination").
"""

import math

import keras
from keras import ops

from hdr_keras import fill
from hdr_keras import ops as hdr_ops
from hdr_keras.models.built_on_call import BuiltOnCall
from hdr_keras.models.unet import UNet
from hdr_keras.precision import FLOAT32

LOG_FLOOR = 1.0 / 64.0
"""Floor of the network's log-intensity input (6 stops under the clip level)."""
MAX_SATURATION = 3.0
"""Largest factor on the surroundings' colour saturation the network may ask for (tone curves wash
out the colour of the pixels just below the clip, which is where the colour comes from)."""
GATE_LOW, GATE_HIGH = 0.5, 0.8
"""Full-resolution gate ``clip((max_c Lin - 0.5) / 0.3, 0, 1)``: a pixel darker than half the clip level
(a leaf or a window bar against a clipped sky) is never filled; one near the clip level follows the
smooth region mask whatever its quantisation and JPEG noise."""
INTERIOR_WINDOW = 9
"""The gain ramps in from a clipped region's edge over two means of this many working pixels (``interior``)."""


@keras.saving.register_keras_serializable(package="hdr_keras")
class ContextHallucinationNet(BuiltOnCall, keras.Model):
    """Linear image [N, H, W, 3] >= 0, any H and W -> HDR [N, H, W, 3], never below the input.

    1. Working resolution: ``f = ceil(max(H, W) / working_side)``, ``small`` = means of f x f blocks;
       ``a`` the soft over-exposure mask ``clip((max_c - gamma) / (1 - gamma), 0, 1)`` of ``small``
       dilated by a 3x3 maximum: JPEG ringing and blocking pull thin lines inside a clipped region
       under the clip level, and they must neither split the region nor lend it their colour.
    2. Colour: chromaticities ``rgb / sum`` of the unclipped ``small`` pixels, trusted by
       ``(1 - a) * min(1, peak / gamma)^2`` (bright surroundings count most), carried into the clipped
       regions by push-pull (:func:`hdr_keras.fill.propagate`, ``levels`` levels).
    3. A U-Net (``unet`` config) on ``[log(small + 1/64), a, colour, confidence]`` with the global mean
       of its bottleneck added back (whole-image context) gives two maps: a log gain ``k = softplus(.)``
       and a saturation ``s = 3 sigmoid(. - log 2)`` (1 at the start).
    4. Fill at working resolution: intensity ``exp(k * interior)`` times the clip level 1 (not the pixel's
       own, noisy, value), ``interior = a * region``, ``region`` the larger of ``mean_9x9(mean_9x9(a))``
       and the 3x3 erosion of ``a`` (about 0 at a region's edge and in noisy near-clip bands, so the
       fill meets the photo at the clip line without the steps that quantisation bands and JPEG
       noise would turn into contours and specks; 1 inside solid regions, small lamps too), colour
       ``1/3 + s (colour - 1/3)`` scaled so that its largest channel is the intensity.
    5. Back to full resolution from the clipped working pixels only (:func:`hdr_keras.fill.masked_upsample`),
       then per channel ``Hal = Lin + region * gate * relu(fill - Lin)``, ``region`` upsampled;
       ``gate`` the full-resolution :data:`GATE_LOW`-:data:`GATE_HIGH` ramp. Equal to ``Lin``
       where nothing is clipped, never darker than it, smooth where the photo is noisy near the clip
       level, sharp against dark detail.
    """

    whole_image = True
    """The engine runs this stage once on the whole image (it resamples to its working resolution itself)."""

    def __init__(self, unet, working_side=512, levels=6, gamma=0.88, **kwargs):
        kwargs.setdefault("dtype", FLOAT32)
        super().__init__(**kwargs)
        self.unet_config = dict(unet)
        self.working_side, self.levels, self.gamma = int(working_side), int(levels), float(gamma)
        self.unet = UNet(**{**self.unet_config, "out_channels": 2, "global_context": True}, name="unet")

    @property
    def multiple(self):
        """Working-resolution H and W are padded to this (the U-Net's and push-pull's factor)."""
        return math.lcm(self.unet.multiple, 2**self.levels)

    def mask(self, linear):
        """Soft over-exposure mask [N, H, W, 1] in [0, 1]."""
        peak = ops.max(linear, axis=-1, keepdims=True)
        return ops.clip((peak - self.gamma) / (1.0 - self.gamma), 0.0, 1.0)

    def colour(self, small, mask):
        """Propagated chromaticity [N, h, w, 3] (sums to 1) and its confidence [N, h, w, 1]."""
        total = ops.sum(small, axis=-1, keepdims=True)
        chroma = small / (total + fill.EPS)
        peak = ops.max(small, axis=-1, keepdims=True)
        trust = (1.0 - mask) * ops.square(ops.minimum(peak / self.gamma, 1.0))
        trust = trust * ops.cast(total > 3e-3, trust.dtype)
        return fill.propagate(chroma, trust, self.levels)

    def fill_small(self, small):
        """Working-resolution fill [N, h, w, 3], mask ``a`` and ``region`` (each [N, h, w, 1]); h and w
        multiples of :attr:`multiple`."""
        mask = ops.max_pool(self.mask(small), 3, 1, padding="same")
        colour, confidence = self.colour(small, mask)
        features = ops.concatenate([ops.log(small + LOG_FLOOR), mask, colour, confidence], axis=-1)
        out = ops.cast(self.unet(features), "float32")
        gain = ops.softplus(out[..., :1])
        saturation = MAX_SATURATION * ops.sigmoid(out[..., 1:] - math.log(MAX_SATURATION - 1.0))
        chroma = 1.0 / 3.0 + saturation * (colour - 1.0 / 3.0)
        chroma = ops.maximum(chroma, 0.0)
        direction = chroma / (ops.max(chroma, axis=-1, keepdims=True) + fill.EPS)
        smooth = ops.average_pool(ops.average_pool(mask, INTERIOR_WINDOW, 1, padding="same"), INTERIOR_WINDOW, 1, padding="same")
        region = ops.maximum(smooth, -ops.max_pool(-mask, 3, 1, padding="same"))
        interior = mask * region
        return direction * ops.exp(gain * interior), mask, region

    def call(self, linear, training=None):
        shape = ops.shape(linear)
        height, width = shape[1], shape[2]
        factor = fill.working_factor(height, width, self.working_side)
        small = fill.area_downscale(linear, factor)
        padded, size = hdr_ops.pad_to_multiple(small, self.multiple)
        fill_small, mask_small, region = (hdr_ops.crop_to(x, size) for x in self.fill_small(padded))
        filled = fill.masked_upsample(fill_small, mask_small, factor, height, width)
        region = fill.upsample(region, factor, height, width)
        peak = ops.max(linear, axis=-1, keepdims=True)
        gate = ops.clip((peak - GATE_LOW) / (GATE_HIGH - GATE_LOW), 0.0, 1.0)
        return linear + region * gate * ops.relu(filled - linear)

    def get_config(self):
        return {
            **super().get_config(),
            "unet": self.unet_config,
            "working_side": self.working_side,
            "levels": self.levels,
            "gamma": self.gamma,
        }
