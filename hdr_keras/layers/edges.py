"""Sobel edge features with the layout of ``tf.image.sobel_edges``."""

import keras
import numpy as np
from keras import ops

from hdr_keras import ops as hdr_ops

_KERNELS = np.transpose(
    np.array([[[-1, -2, -1], [0, 0, 0], [1, 2, 1]], [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]], np.float32), (1, 2, 0)
)


@keras.saving.register_keras_serializable(package="hdr_keras")
class SobelEdges(keras.layers.Layer):
    """Vertical then horizontal Sobel response per channel, reflect padding.

    Input [N, H, W, C]; output [N, H, W, 2C] ordered ``c0_dy, c0_dx, c1_dy, ...`` — the
    ``[N, H, W, C, 2]`` result of ``tf.image.sobel_edges`` flattened on its last two axes.
    """

    def call(self, images):
        channels = images.shape[-1]
        kernel = ops.convert_to_tensor(np.repeat(_KERNELS[:, :, None, :], channels, axis=2), images.dtype)
        padded = hdr_ops.reflect_pad(images, 1, 1, 1, 1)
        return ops.depthwise_conv(padded, kernel, strides=1, padding="valid")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2 * input_shape[-1],)
