"""The U-Net of the Dequantization-Net and Refinement-Net (docs/design.md#stages, #presets)."""

import keras
from keras import ops

from hdr_keras import ops as hdr_ops
from hdr_keras.layers import LegacyBilinearUpsample2x
from hdr_keras.models.built_on_call import BuiltOnCall
from hdr_keras.precision import FLOAT32


@keras.saving.register_keras_serializable(package="hdr_keras")
class UNet(BuiltOnCall, keras.layers.Layer):
    """Authors' U-Net body: [N, H, W, C] -> [N, H, W, out_channels], H and W multiples of 2^stages.

    Stem: two ``stem_kernel`` convs of ``stem_filters``. Each down stage: 2x2 average pool,
    then two convs (``stage_kernels[i]``) of ``stage_filters[i]``. Each up stage: legacy
    bilinear x2, 3x3 conv to the skip's width, concatenation with the skip, 3x3 conv. Head:
    3x3 conv to ``out_channels``, linear (``head_initializer="zeros"`` starts the net at 0, so a
    residual refinement starts as the identity). LeakyReLU(``negative_slope``) after every other conv.
    ``global_context``: the spatial mean of the deepest stage, through a dense layer, is added to
    every position there (whole-image context at any size).
    """

    def __init__(
        self,
        stem_filters=16,
        stem_kernel=7,
        stage_filters=(32, 64, 128, 256),
        stage_kernels=(5, 3, 3, 3),
        out_channels=3,
        negative_slope=0.1,
        head_initializer="glorot_uniform",
        global_context=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(stage_filters) != len(stage_kernels):
            raise ValueError("stage_filters and stage_kernels must have the same length")
        self.stem_filters = int(stem_filters)
        self.stem_kernel = int(stem_kernel)
        self.stage_filters = tuple(int(f) for f in stage_filters)
        self.stage_kernels = tuple(int(k) for k in stage_kernels)
        self.out_channels = int(out_channels)
        self.negative_slope = float(negative_slope)
        self.head_initializer = head_initializer
        self.global_context = bool(global_context)

        def conv(filters, kernel, name):
            return keras.layers.Conv2D(filters, kernel, padding="same", name=name)

        self.stem = [conv(self.stem_filters, self.stem_kernel, f"stem_conv{i}") for i in (1, 2)]
        self.down = [
            [conv(f, k, f"down{i}_conv1"), conv(f, k, f"down{i}_conv2")]
            for i, (f, k) in enumerate(zip(self.stage_filters, self.stage_kernels), 1)
        ]
        skips = (self.stem_filters,) + self.stage_filters[:-1]
        self.up = [[conv(f, 3, f"up{i}_conv1"), conv(f, 3, f"up{i}_conv2")] for i, f in enumerate(reversed(skips), 1)]
        self.upsample = LegacyBilinearUpsample2x()
        self.head = keras.layers.Conv2D(
            self.out_channels, 3, padding="same", kernel_initializer=head_initializer, name="head_conv"
        )
        self.context = keras.layers.Dense(self.stage_filters[-1], name="context") if self.global_context else None

    @property
    def multiple(self):
        """The factor H and W must be divisible by."""
        return 2 ** len(self.stage_filters)

    def _act(self, x):
        return ops.leaky_relu(x, self.negative_slope)

    def call(self, x):
        for layer in self.stem:
            x = self._act(layer(x))
        skips = []
        for conv1, conv2 in self.down:
            skips.append(x)
            x = ops.average_pool(x, 2, 2, padding="valid")
            x = self._act(conv2(self._act(conv1(x))))
        if self.context is not None:
            x = x + self.context(ops.mean(x, axis=(1, 2), keepdims=True))
        for (conv1, conv2), skip in zip(self.up, reversed(skips)):
            x = self._act(conv1(self.upsample(x)))
            x = self._act(conv2(ops.concatenate([x, skip], axis=-1)))
        return self.head(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    def get_config(self):
        return {
            **super().get_config(),
            "stem_filters": self.stem_filters,
            "stem_kernel": self.stem_kernel,
            "stage_filters": list(self.stage_filters),
            "stage_kernels": list(self.stage_kernels),
            "out_channels": self.out_channels,
            "negative_slope": self.negative_slope,
            "head_initializer": self.head_initializer,
            "global_context": self.global_context,
        }


class _PaddedUNetModel(BuiltOnCall, keras.Model):
    """A model around a :class:`UNet` that reflect-pads any H, W to its multiple and crops back.

    The model itself computes in float32 (its inputs and outputs are float32 under any policy);
    the U-Net body runs in the policy's dtype and :meth:`residual` returns it as float32.
    """

    def __init__(self, unet, **kwargs):
        kwargs.setdefault("dtype", FLOAT32)
        super().__init__(**kwargs)
        self.unet_config = dict(unet)
        self.unet = UNet(**self.unet_config, name="unet")

    def residual(self, x):
        padded, size = hdr_ops.pad_to_multiple(x, self.unet.multiple)
        return ops.cast(hdr_ops.crop_to(self.unet(padded), size), "float32")

    def get_config(self):
        return {**super().get_config(), "unet": self.unet_config}


@keras.saving.register_keras_serializable(package="hdr_keras")
class DequantizationNet(_PaddedUNetModel):
    """``D = clip(L + s tanh(UNet(x)), 0, 1)``: LDR [N, H, W, 3] in [0, 1] -> same shape and range.

    ``x`` is ``L`` (the authors' net) or, with ``detail_input``, ``L`` beside its local detail in
    8-bit code values, ``255 (L - mean3x3(L))``: quantisation steps are 1/255 apart, and without
    this the first convolutions must learn to cancel the image's level before they can see them.
    ``residual_scale`` ``s`` bounds the correction (1 in the authors' net).
    """

    def __init__(self, unet, residual_scale=1.0, detail_input=False, **kwargs):
        super().__init__(unet, **kwargs)
        self.residual_scale = float(residual_scale)
        self.detail_input = bool(detail_input)

    def call(self, ldr):
        x = ldr
        if self.detail_input:
            x = ops.concatenate([ldr, 255.0 * (ldr - ops.average_pool(ldr, 3, 1, padding="same"))], axis=-1)
        return ops.clip(ldr + self.residual_scale * ops.tanh(self.residual(x)), 0.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "residual_scale": self.residual_scale, "detail_input": self.detail_input}


@keras.saving.register_keras_serializable(package="hdr_keras")
class RefinementNet(_PaddedUNetModel):
    """``relu(Hal + UNet(concat(Hal, Lin, D)))``: three [N, H, W, 3] -> HDR [N, H, W, 3] >= 0."""

    def call(self, inputs):
        hallucinated, linear, dequantized = inputs
        x = ops.concatenate([hallucinated, linear, dequantized], axis=-1)
        return ops.relu(hallucinated + self.residual(x))

    def is_identity(self):
        """True when the U-Net's head kernel and bias are all zero (an untrained net starts so):
        the residual is then 0 and, ``Hal`` being >= 0, the output equals ``Hal`` exactly."""
        head = self.unet.head
        return all(not ops.any(ops.not_equal(variable, 0)) for variable in (head.kernel, head.bias))
