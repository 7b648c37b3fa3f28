"""The sum-initialised 1x1 skip fuse of the hallucination decoder (from HDRCNN)."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="hdr_keras")
class SkipFuse(keras.layers.Layer):
    """``[x [N, H, W, C], skip [N, H, W, C]]`` -> 1x1 conv of their concatenation, [N, H, W, C].

    The kernel starts as ``[I; I]`` and the bias as 0, so an untrained fuse returns ``x + skip``.
    """

    def build(self, input_shape):
        channels = input_shape[0][-1]
        pair = np.concatenate([np.eye(channels), np.eye(channels)]).astype(np.float32)[None, None]
        self.kernel = self.add_weight(shape=pair.shape, initializer=keras.initializers.Constant(pair), name="kernel")
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")

    def call(self, inputs):
        x, skip = inputs
        return ops.conv(ops.concatenate([x, skip], axis=-1), self.kernel, padding="valid") + self.bias

    def compute_output_shape(self, input_shape):
        return input_shape[0]
