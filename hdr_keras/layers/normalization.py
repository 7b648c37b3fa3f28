"""Batch normalisation whose inference pass runs in the layer's compute dtype."""

import keras
from keras import ops

from hdr_keras import ops as hdr_ops


FUSED_MIN_CHANNELS = 16
"""Fewest channels for the fused training pass: with 3 (the Hallucination tail) the CPU's fused op
took 84 ms forward and backward on [8, 256, 256, 3], several times Keras' moments."""


@keras.saving.register_keras_serializable(package="hdr_keras")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` (same variables, same weights-file paths, same results).

    On TensorFlow a training pass over NHWC tensors is one fused op (:meth:`_fused_training_pass`).
    At inference it is ``x * scale + shift`` in ``x``'s dtype, with ``scale`` and ``shift`` folded
    from the moving statistics in float32 (:meth:`affine`). Keras computes every pass in float32,
    which under a bfloat16 policy costs two casts of the whole tensor; the moments of a training
    pass need float32, the affine at inference does not. :meth:`after_conv` folds it into the
    convolution before it.
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
        fusable = mask is None and not self.renorm and len(inputs.shape) == 4 and self.axis in (-1, 3)
        fusable = fusable and inputs.shape[-1] >= FUSED_MIN_CHANNELS
        if training and self.trainable and fusable and hdr_ops.tensorflow() is not None:
            return self._fused_training_pass(inputs)
        if (training and self.trainable) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        scale, shift = self.affine()
        return inputs * ops.cast(scale, inputs.dtype) + ops.cast(shift, inputs.dtype)

    def _fused_training_pass(self, inputs):
        """Keras' training pass as TensorFlow's one ``FusedBatchNormV3`` op (and one gradient op):
        2.7x faster than Keras' moments and affine on a CPU (bfloat16 [8, 256, 256, 16]). The op
        returns the batch variance with Bessel's correction; the moving average takes the
        uncorrected one, as in Keras."""
        tf = hdr_ops.tensorflow()
        channels = inputs.shape[-1]
        scale = self.gamma if self.scale else tf.ones([channels])
        offset = self.beta if self.center else tf.zeros([channels])
        empty = tf.constant([], tf.float32)
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=tf.convert_to_tensor(scale), offset=tf.convert_to_tensor(offset), mean=empty,
            variance=empty, epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC", is_training=True,
        )  # fmt: skip
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
        variance = variance * tf.maximum(count - 1.0, 1.0) / count
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
        return outputs

    def phases(self, x, count, training=None):
        """``self`` applied to each of the ``count`` phases of ``x`` [N, H, W, count * C] (phase-major
        channels, as :func:`hdr_keras.ops.upsample2x_nearest_conv3x3` returns them); training
        statistics are those of all phases together, as on the [N, 2H, 2W, C] image."""
        if training and self.trainable:
            shape = ops.shape(x)
            split = ops.reshape(x, (shape[0], shape[1], shape[2] * count, x.shape[-1] // count))
            return ops.reshape(self(split, training=training), shape)
        if not self.built:
            self.build(tuple(x.shape[:-1]) + (x.shape[-1] // count,))
        scale, shift = self.affine()
        return x * ops.cast(ops.tile(scale, count), x.dtype) + ops.cast(ops.tile(shift, count), x.dtype)

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
