"""The sum-initialised 1x1 skip fuse of the hallucination decoder (from HDRCNN)."""

import keras
import numpy as np
from keras import ops

from hdr_keras import ops as hdr_ops


@keras.saving.register_keras_serializable(package="hdr_keras")
class SkipFuse(keras.layers.Layer):
    """``[x [N, H, W, C], skip [N, H, W, C]]`` -> 1x1 conv of ``concat(x, skip_scale * skip)``, [N, H, W, C].

    The kernel starts as ``[I; I]`` and the bias as 0, so an untrained fuse returns
    ``x + skip_scale * skip``. Computed without concatenating (:func:`hdr_keras.ops.concat_conv`)
    and without a pass to scale the skip (``skip_scale`` scales the kernel's skip rows).
    """

    def __init__(self, skip_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.skip_scale = float(skip_scale)

    def build(self, input_shape):
        channels = input_shape[0][-1]
        pair = np.concatenate([np.eye(channels), np.eye(channels)]).astype(np.float32)[None, None]
        self.kernel = self.add_weight(shape=pair.shape, initializer=keras.initializers.Constant(pair), name="kernel")
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")

    def call(self, inputs):
        x, skip = inputs
        kernel = self.kernel
        if self.skip_scale != 1.0:
            channels = x.shape[-1]
            kernel = ops.concatenate([kernel[:, :, :channels], kernel[:, :, channels:] * self.skip_scale], axis=2)
        return hdr_ops.concat_conv([x, skip], kernel, self.bias)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "skip_scale": self.skip_scale}
