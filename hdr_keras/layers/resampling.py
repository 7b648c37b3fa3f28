"""The x2 upsampling layer of the U-Net; it exports with dynamic H and W."""

import keras

from hdr_keras import ops as hdr_ops


@keras.saving.register_keras_serializable(package="hdr_keras")
class LegacyBilinearUpsample2x(keras.layers.Layer):
    """Bilinear x2 with the TF1 ``resize_bilinear`` alignment: [N, H, W, C] -> [N, 2H, 2W, C]."""

    def call(self, images):
        return hdr_ops.upsample2x_legacy_bilinear(images)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else 2 * h, None if w is None else 2 * w, c)

