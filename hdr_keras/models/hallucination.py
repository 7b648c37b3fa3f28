"""Hallucination-Net: restores clipped highlights (HDRCNN layout, docs/design.md#stages, #presets)."""

import keras
from keras import ops

from hdr_keras import ops as hdr_ops
from hdr_keras.layers import BatchNormalization, SkipFuse
from hdr_keras.models.built_on_call import BuiltOnCall
from hdr_keras.precision import FLOAT32

VGG_BGR_MEANS = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="hdr_keras")
class HallucinationNet(BuiltOnCall, keras.Model):
    """Linear image [N, H, W, 3] >= 0 -> HDR [N, H, W, 3], ``Hal = Lin + a * relu(Net(Lin))``.

    ``a = clip((max_c Lin - gamma) / (1 - gamma), 0, 1)`` (0 below ``gamma``), so the output is
    never below the input and equals it where ``a`` is 0. Net: input ``Lin * 255`` in BGR minus
    the VGG means; a VGG encoder (``encoder`` = ``(filters, convs)`` per block, 2x2 max-pool
    after each, the pre-pool activation kept as a skip); bottleneck conv + BN + ReLU; per decoder
    width: nearest x2, reflect pad 1, 3x3 VALID conv + ReLU, BN, ReLU, fuse with the skip / 255;
    tail 1x1 conv to 3 + BN + ReLU, fused with ``Lin``. H and W are reflect-padded to 2^blocks.
    Under a mixed policy the encoder and decoder run in the policy's dtype; the fuse with ``Lin``,
    the mask and the output are float32. Each decoder stage's upsample-pad-conv runs at the
    input resolution as 4 phases, its ReLU, BN and ReLU on the phases (docs/design.md#stages).
    """

    whole_image = False
    """Runs on tiles of a large image (the engine's choice; a whole-image stage says True)."""

    def __init__(
        self,
        encoder=((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)),
        bottleneck_filters=512,
        decoder_filters=(512, 512, 256, 128, 64),
        bn_epsilon=1e-5,
        gamma=0.88,
        **kwargs,
    ):
        kwargs.setdefault("dtype", FLOAT32)
        super().__init__(**kwargs)
        self.encoder = tuple(tuple(int(v) for v in block) for block in encoder)
        self.bottleneck_filters = int(bottleneck_filters)
        self.decoder_filters = tuple(int(f) for f in decoder_filters)
        self.bn_epsilon, self.gamma = float(bn_epsilon), float(gamma)
        if len(self.decoder_filters) != len(self.encoder):
            raise ValueError("decoder_filters needs one width per encoder block")

        def norm(name):
            return BatchNormalization(epsilon=self.bn_epsilon, name=name)

        self.encoder_convs = [
            [keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{b}_{i}") for i in range(1, n + 1)]
            for b, (f, n) in enumerate(self.encoder, 1)
        ]
        self.bottleneck_conv = keras.layers.Conv2D(self.bottleneck_filters, 3, padding="same", name="bottleneck_conv")
        self.bottleneck_bn = norm("bottleneck_bn")
        self.decoder_convs, self.decoder_bns, self.fuses = [], [], []
        for i, filters in enumerate(self.decoder_filters, 1):
            self.decoder_convs.append(keras.layers.Conv2D(filters, 3, padding="valid", name=f"decoder{i}_conv"))
            self.decoder_bns.append(norm(f"decoder{i}_bn"))
            self.fuses.append(SkipFuse(skip_scale=1 / 255, name=f"decoder{i}_fuse"))
        self.tail_conv = keras.layers.Conv2D(3, 1, name="tail_conv")
        self.tail_bn = norm("tail_bn")
        self.input_fuse = SkipFuse(name="input_fuse", dtype=FLOAT32)

    @property
    def multiple(self):
        return 2 ** len(self.encoder)

    def residual(self, linear, training=None):
        """``Net(Lin)`` before the ReLU and the mask: [N, H, W, 3], H and W multiples of 2^blocks."""
        x = ops.flip(linear * 255.0, axis=-1) - ops.convert_to_tensor(VGG_BGR_MEANS, linear.dtype)
        skips = []
        for convs in self.encoder_convs:
            for conv in convs:
                x = conv(x)
            skips.append(x)
            x = ops.max_pool(x, 2, 2, padding="valid")
        x = ops.relu(self.bottleneck_bn(self.bottleneck_conv(x), training=training))
        for conv, bn, fuse, skip in zip(self.decoder_convs, self.decoder_bns, self.fuses, reversed(skips)):
            x = ops.relu(self._upsample_conv(conv, x))
            x = hdr_ops.phases_to_space(ops.relu(bn.phases(x, 4, training=training)))
            x = fuse([x, skip])
        x = ops.relu(self.tail_bn.after_conv(self.tail_conv, x, training=training))
        return self.input_fuse([ops.cast(x, "float32"), linear])

    @staticmethod
    def _upsample_conv(conv, x):
        """``conv(reflect_pad(nearest_x2(x), 1, 1, 1, 1))`` for a 3x3 VALID ``conv`` as phases
        [N, H, W, 4F] (:func:`hdr_keras.ops.upsample2x_nearest_conv3x3`), with ``conv``'s variables."""
        if not conv.built:
            conv.build((None, None, None, x.shape[-1]))
        return hdr_ops.upsample2x_nearest_conv3x3(x, conv.kernel, conv.bias)

    def mask(self, linear):
        """Soft over-exposure mask [N, H, W, 1] in [0, 1]."""
        peak = ops.max(linear, axis=-1, keepdims=True)
        return ops.clip((peak - self.gamma) / (1.0 - self.gamma), 0.0, 1.0)

    def call(self, linear, training=None):
        padded, size = hdr_ops.pad_to_multiple(linear, self.multiple)
        residual = hdr_ops.crop_to(self.residual(padded, training=training), size)
        return linear + self.mask(linear) * ops.relu(residual)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": [list(block) for block in self.encoder],
            "bottleneck_filters": self.bottleneck_filters,
            "decoder_filters": list(self.decoder_filters),
            "bn_epsilon": self.bn_epsilon,
            "gamma": self.gamma,
        }
