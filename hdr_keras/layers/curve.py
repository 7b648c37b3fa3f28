"""Camera-curve layers: EMoR weights to a monotone inverse curve, and curve application."""

import keras
from keras import ops

from hdr_keras import crf
from hdr_keras import ops as hdr_ops
from hdr_keras.precision import FLOAT32


@keras.saving.register_keras_serializable(package="hdr_keras")
class MonotonicCRF(keras.layers.Layer):
    """EMoR weights [N, K] -> monotone inverse camera curve [N, 1024] in [0, 1].

    ``g = g0 + w @ hinv[:K]`` projected by paper eq. 3: non-decreasing, exactly 0 at 0 and 1
    at 1. ``g0`` and the basis are non-trainable weights, so a saved model carries them.
    Computes in float32 under any policy (a bfloat16 decode would move the curve by ~1e-2).
    """

    def __init__(self, num_basis=crf.NUM_BASIS, **kwargs):
        kwargs.setdefault("dtype", FLOAT32)
        super().__init__(**kwargs)
        self.num_basis = int(num_basis)

    def build(self, input_shape):
        table = crf.inverse_basis_asset()
        if not 1 <= self.num_basis < len(table):
            raise ValueError(f"num_basis must be in [1, {len(table) - 1}], got {self.num_basis}")
        self.mean = self.add_weight(
            shape=(crf.NUM_SAMPLES,), initializer=keras.initializers.Constant(table[0]), trainable=False, name="g0"
        )
        self.basis = self.add_weight(
            shape=(self.num_basis, crf.NUM_SAMPLES),
            initializer=keras.initializers.Constant(table[1 : self.num_basis + 1]),
            trainable=False,
            name="hinv",
        )

    def call(self, weights):
        return hdr_ops.monotone_curve(self.mean + ops.matmul(weights, self.basis))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], crf.NUM_SAMPLES)

    def get_config(self):
        return {**super().get_config(), "num_basis": self.num_basis}


@keras.saving.register_keras_serializable(package="hdr_keras")
class ApplyCurve(keras.layers.Layer):
    """``[images [N, H, W, C] in [0, 1], curves [N, 1024]]`` -> curve(images), same shape, float32.

    Computes in float32 under any policy (the lookup position needs 10 bits of precision).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", FLOAT32)
        super().__init__(**kwargs)

    def call(self, inputs):
        images, curves = inputs
        return hdr_ops.apply_curve(images, curves)

    def compute_output_shape(self, input_shape):
        return input_shape[0]
