"""Linearization-Net: estimates the inverse camera curve and linearises the image (docs/design.md#stages, #presets)."""

import keras
from keras import ops

from hdr_keras.layers import ApplyCurve, BatchNormalization, MonotonicCRF, SobelEdges, SoftHistogram
from hdr_keras.models.built_on_call import BuiltOnCall
from hdr_keras.precision import FLOAT32


@keras.saving.register_keras_serializable(package="hdr_keras")
class Bottleneck(BuiltOnCall, keras.layers.Layer):
    """ResNet-50 bottleneck, Caffe style (stride on the 1x1 convs), convs without bias.

    [N, H, W, C] -> [N, H/stride, W/stride, filters * 4 or ``out_filters``].
    """

    def __init__(self, filters, out_filters, stride=1, project=False, bn_epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.out_filters, self.stride = int(filters), int(out_filters), int(stride)
        self.project, self.bn_epsilon = bool(project), float(bn_epsilon)

        def conv(filters, kernel, stride, name):
            return keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=name)

        def norm(name):
            return BatchNormalization(epsilon=self.bn_epsilon, name=name, dtype=FLOAT32)

        self.conv_a, self.bn_a = conv(self.filters, 1, self.stride, "conv_a"), norm("bn_a")
        self.conv_b, self.bn_b = conv(self.filters, 3, 1, "conv_b"), norm("bn_b")
        self.conv_c, self.bn_c = conv(self.out_filters, 1, 1, "conv_c"), norm("bn_c")
        if self.project:
            self.conv_proj, self.bn_proj = conv(self.out_filters, 1, self.stride, "conv_proj"), norm("bn_proj")

    def call(self, x, training=None):
        shortcut = self.bn_proj(self.conv_proj(x), training=training) if self.project else x
        y = ops.relu(self.bn_a(self.conv_a(x), training=training))
        y = ops.relu(self.bn_b(self.conv_b(y), training=training))
        y = self.bn_c(self.conv_c(y), training=training)
        return ops.relu(ops.add(y, shortcut))  # float32 batch norm + a policy-dtype identity shortcut

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "out_filters": self.out_filters,
            "stride": self.stride,
            "project": self.project,
            "bn_epsilon": self.bn_epsilon,
        }


@keras.saving.register_keras_serializable(package="hdr_keras")
class LinearizationNet(BuiltOnCall, keras.Model):
    """Dequantized LDR [N, H, W, 3] in [0, 1] -> ``{"inverse_crf": [N, 1024], "linear": [N, H, W, 3]}``.

    Features: the image, its Sobel edges and soft histograms (3 + 6 + 3 * sum(B + 1) channels),
    computed after ``feature_pool`` 2x2 average pools (0 in the authors' code: full resolution).
    Encoder: ``stem_kernel`` conv (stride 2, bias) + BN + ReLU + 3x3/2 max-pool, then for each
    ``(filters, out_filters, blocks, stride)`` in ``stages`` a run of bottlenecks (the first
    projects), spatial mean, dense to ``num_basis`` EMoR weights (zero-initialised, so an untrained
    net starts at the EMoR mean curve g0), monotone curve, applied to the input.

    Under a mixed policy only the stem and the bottleneck convolutions run in the policy's dtype;
    the features, the batch norms (in bfloat16 they moved the curve by 4e-3), the spatial mean,
    the dense layer and the curve are float32, as are the outputs.
    """

    def __init__(
        self,
        histogram_bins=(4, 8, 16),
        feature_pool=0,
        stem_filters=64,
        stem_kernel=7,
        stages=((64, 256, 3, 1), (128, 512, 2, 2)),
        bn_epsilon=1e-3,
        num_basis=11,
        **kwargs,
    ):
        kwargs.setdefault("dtype", FLOAT32)
        super().__init__(**kwargs)
        self.histogram_bins = tuple(int(b) for b in histogram_bins)
        self.feature_pool = int(feature_pool)
        self.stem_filters, self.stem_kernel = int(stem_filters), int(stem_kernel)
        self.stages = tuple(tuple(int(v) for v in stage) for stage in stages)
        self.bn_epsilon, self.num_basis = float(bn_epsilon), int(num_basis)

        self.edges = SobelEdges(name="sobel", dtype=FLOAT32)
        self.histogram = SoftHistogram(self.histogram_bins, name="histogram")
        self.stem_conv = keras.layers.Conv2D(self.stem_filters, self.stem_kernel, strides=2, padding="same", name="conv1")
        self.stem_bn = BatchNormalization(epsilon=self.bn_epsilon, name="bn1", dtype=FLOAT32)
        self.blocks = [
            Bottleneck(filters, out, stride if i == 0 else 1, i == 0, self.bn_epsilon, name=f"stage{s}_block{i + 1}")
            for s, (filters, out, count, stride) in enumerate(self.stages, 2)
            for i in range(count)
        ]
        self.dense = keras.layers.Dense(self.num_basis, kernel_initializer="zeros", name="emor_weights", dtype=FLOAT32)
        self.curve = MonotonicCRF(self.num_basis, name="inverse_crf")
        self.apply_curve = ApplyCurve(name="apply_curve")

    def features(self, images):
        """[N, H, W, 3] -> [N, H', W', 9 + 3 * sum(B + 1)] (102 channels with the default bins)."""
        for _ in range(self.feature_pool):
            images = ops.average_pool(images, 2, 2, padding="same")
        return ops.concatenate([images, self.edges(images), self.histogram(images)], axis=-1)

    def call(self, images, training=None):
        x = ops.relu(self.stem_bn(self.stem_conv(self.features(images)), training=training))
        x = ops.max_pool(x, 3, 2, padding="same")
        for block in self.blocks:
            x = block(x, training=training)
        curve = self.curve(self.dense(ops.mean(ops.cast(x, "float32"), axis=(1, 2))))
        return {"inverse_crf": curve, "linear": self.apply_curve([images, curve])}

    def get_config(self):
        return {
            **super().get_config(),
            "histogram_bins": list(self.histogram_bins),
            "feature_pool": self.feature_pool,
            "stem_filters": self.stem_filters,
            "stem_kernel": self.stem_kernel,
            "stages": [list(stage) for stage in self.stages],
            "bn_epsilon": self.bn_epsilon,
            "num_basis": self.num_basis,
        }
