"""Soft (triangular) histogram features of an image."""

import keras
from keras import ops

from hdr_keras.precision import FLOAT32


@keras.saving.register_keras_serializable(package="hdr_keras")
class SoftHistogram(keras.layers.Layer):
    """Per-pixel triangular bin memberships, docs/design.md#stages.

    For each ``B`` in ``bins`` and each channel, ``B + 1`` bins centred at ``k / B`` with
    membership ``relu(1 - |x - k/B| * B)``; for x in [0, 1] they sum to 1.
    Input [N, H, W, C] in [0, 1]; output [N, H, W, C * sum(B + 1)] ordered by B, channel, bin.
    Computes in float32 under any policy (bin edges 1/16 apart need more than bfloat16's 8 bits).
    """

    def __init__(self, bins=(4, 8, 16), **kwargs):
        kwargs.setdefault("dtype", FLOAT32)
        super().__init__(**kwargs)
        self.bins = tuple(int(b) for b in bins)

    def call(self, images):
        channels = images.shape[-1]
        features = []
        for bins in self.bins:
            centres = ops.cast(ops.arange(bins + 1), images.dtype) / bins
            for c in range(channels):
                distance = ops.abs(images[..., c : c + 1] - centres)
                features.append(ops.relu(1.0 - distance * bins))
        return ops.concatenate(features, axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] * sum(b + 1 for b in self.bins),)

    def get_config(self):
        return {**super().get_config(), "bins": list(self.bins)}
