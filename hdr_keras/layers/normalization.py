"""Batch normalisation: TensorFlow's fused op where it pays off, elsewhere an inference pass in the compute dtype."""

import keras
from keras import ops

from hdr_keras import ops as hdr_ops


FUSED_MIN_CHANNELS = 16
"""Fewest channels for TensorFlow's fused op. With 3 (the Hallucination tail) the CPU's fused op
is slower than Keras' moments (84 ms forward and backward, [8, 256, 256, 3]) and than the affine
at inference (33 vs 10 ms, bfloat16 [1, 864, 1152, 3])."""


@keras.saving.register_keras_serializable(package="hdr_keras")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` (same variables, same weights-file paths, same results).

    On TensorFlow, over NHWC tensors of at least :data:`FUSED_MIN_CHANNELS` channels, both passes
    are TensorFlow's ``FusedBatchNormV3`` op, which computes in float32 inside (measured on the
    CPU in bfloat16: training 2.7x faster forward and backward than Keras' moments and casts,
    inference 5x faster than an affine and ReLU). Otherwise training is Keras' own, and inference
    ``x * scale + shift`` in ``x``'s dtype with ``scale`` and ``shift`` folded from the moving
    statistics in float32 (:meth:`affine`). :meth:`after_conv` folds the layer into the
    convolution before it; :meth:`phases` applies it to phase-major channels.
    """

    def affine(self):
        """(scale, shift), float32 [C]: the inference pass is ``x * scale + shift``."""
        scale = ops.rsqrt(ops.cast(self.moving_variance, "float32") + self.epsilon)
        if self.scale:
            scale = scale * ops.cast(self.gamma, "float32")
        shift = -ops.cast(self.moving_mean, "float32") * scale
        if self.center:
            shift = shift + ops.cast(self.beta, "float32")
        return scale, shift

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.renorm or self.axis not in (-1, len(inputs.shape) - 1):
            return super().call(inputs, training=training, mask=mask)
        return self._normalize(inputs, 1, bool(training) and self.trainable)

    def phases(self, x, count, training=None):
        """``self`` applied to each of the ``count`` phases of ``x`` [N, H, W, count * C] (phase-major
        channels, as :func:`hdr_keras.ops.upsample2x_nearest_conv3x3` returns them); training
        statistics are those of all phases together, as on the [N, 2H, 2W, C] image."""
        if bool(training) and self.trainable:
            shape = ops.shape(x)
            split = ops.reshape(x, (shape[0], shape[1], shape[2] * count, x.shape[-1] // count))
            return ops.reshape(self(split, training=True), shape)
        if not self.built:
            self.build(tuple(x.shape[:-1]) + (x.shape[-1] // count,))
        return self._normalize(x, count, False)

    def _normalize(self, x, count, training):
        """The pass over ``x`` [..., count * C], the parameters repeated ``count`` times."""
        tf = hdr_ops.tensorflow()
        if tf is None or len(x.shape) != 4 or x.shape[-1] < FUSED_MIN_CHANNELS:
            if training:
                return super().call(x, training=True)
            scale, shift = (ops.cast(ops.tile(v, count), x.dtype) for v in self.affine())
            return x * scale + shift
        channels = x.shape[-1] // count
        gamma = self.gamma if self.scale else tf.ones([channels])
        beta = self.beta if self.center else tf.zeros([channels])
        params = [tf.tile(tf.convert_to_tensor(v), [count]) for v in (gamma, beta, self.moving_mean, self.moving_variance)]
        if not training:
            return tf.raw_ops.FusedBatchNormV3(
                x=x, scale=params[0], offset=params[1], mean=params[2], variance=params[3], epsilon=self.epsilon,
                exponential_avg_factor=1.0, data_format="NHWC", is_training=False,
            )[0]  # fmt: skip
        # The op's batch variance has Bessel's correction; Keras' moving average takes it uncorrected.
        empty = tf.constant([], tf.float32)
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=params[0], offset=params[1], mean=empty, variance=empty, epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True,
        )  # fmt: skip
        size = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
        variance = variance * tf.maximum(size - 1.0, 1.0) / size
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
        return outputs

    def after_conv(self, conv, x, training=None):
        """``self(conv(x))`` for a linear ``keras.layers.Conv2D`` ``conv``; at inference one convolution
        whose kernel and bias absorb the affine (a pass over the output fewer)."""
        if training and self.trainable:
            return self(conv(x), training=training)
        if conv.activation is not keras.activations.linear or tuple(conv.dilation_rate) != (1, 1) or conv.groups != 1:
            raise ValueError(f"{conv.name}: only a linear, undilated, ungrouped convolution can be folded")
        if not conv.built:
            conv.build(x.shape)
        if not self.built:
            self.build(conv.compute_output_shape(x.shape))
        scale, shift = self.affine()
        kernel = ops.cast(ops.cast(conv.kernel, "float32") * scale, conv.compute_dtype)
        bias = shift if not conv.use_bias else ops.cast(conv.bias, "float32") * scale + shift
        y = ops.conv(ops.cast(x, conv.compute_dtype), kernel, strides=conv.strides, padding=conv.padding)
        return hdr_ops.bias_add(y, ops.cast(bias, conv.compute_dtype))
