"""SingleHDR: the whole reversed camera pipeline, built from the stage configs (docs/design.md#stages)."""

import math

import keras
from keras import ops

from hdr_keras.models.built_on_call import BuiltOnCall
from hdr_keras.models.context_hallucination import ContextHallucinationNet
from hdr_keras.models.hallucination import HallucinationNet
from hdr_keras.models.linearization import LinearizationNet
from hdr_keras.models.unet import DequantizationNet, RefinementNet
from hdr_keras.precision import FLOAT32
from hdr_keras.presets import get_preset

HALLUCINATION_NETS = {"hdrcnn": HallucinationNet, "context": ContextHallucinationNet}
"""``hallucination["architecture"]`` -> class: the authors' tile-local HDRCNN layout, or the whole-image
context stage (default ``hdrcnn``)."""


@keras.saving.register_keras_serializable(package="hdr_keras")
class SingleHDR(BuiltOnCall, keras.Model):
    """LDR [N, H, W, 3] in [0, 1], any H and W -> dict of outputs.

    Outputs: ``dequantized`` [N, H, W, 3] in [0, 1]; ``inverse_crf`` [N, 1024] monotone, 0 to 1;
    ``linear`` [N, H, W, 3] in [0, 1]; ``hallucinated`` [N, H, W, 3] >= ``linear``; and ``hdr``
    (linear radiance at relative scale, >= 0): the Refinement-Net's output when ``refinement`` is
    configured and ``refine`` is true, else ``hallucinated``. Every output is float32, also
    when the model was built under a mixed policy (:mod:`hdr_keras.precision`).
    """

    def __init__(self, dequantization, linearization, hallucination, refinement=None, refine=True, **kwargs):
        kwargs.setdefault("dtype", FLOAT32)
        super().__init__(**kwargs)
        self.stage_configs = {
            "dequantization": dict(dequantization),
            "linearization": dict(linearization),
            "hallucination": dict(hallucination),
            "refinement": None if refinement is None else dict(refinement),
        }
        self.refine = bool(refine)
        self.dequantization = DequantizationNet(**dequantization, name="dequantization")
        self.linearization = LinearizationNet(**linearization, name="linearization")
        hallucination = dict(hallucination)
        architecture = hallucination.pop("architecture", "hdrcnn")
        if architecture not in HALLUCINATION_NETS:
            raise ValueError(f"unknown hallucination architecture {architecture!r}; known: {', '.join(HALLUCINATION_NETS)}")
        self.hallucination = HALLUCINATION_NETS[architecture](**hallucination, name="hallucination")
        self.refinement = None if refinement is None else RefinementNet(**refinement, name="refinement")

    @classmethod
    def from_preset(cls, name, weights=None, refine=True, **kwargs):
        """Preset ``name`` (see :mod:`hdr_keras.presets`), built (every stage, the Refinement-Net too
        when not ``refine``, so one weights file fits either way), with fresh weights or ``weights``
        strictly loaded: a whole-SingleHDR ``.weights.h5`` such as the preset's shipped one
        (:func:`hdr_keras.pretrained.shipped_weights`), see :func:`hdr_keras.pretrained.load_weights`.
        The one weights loader of the package."""
        model = cls(**get_preset(name), refine=True, **kwargs)
        # JAX compiles every eager op for its shapes (about 20 s for one call on 2 cores), so the
        # build call is symbolic there; on TensorFlow an eager one is faster (1.1 s against 1.4 s).
        sample = (1, 64, 64, 3)
        model(keras.KerasTensor(sample) if keras.backend.backend() == "jax" else ops.zeros(sample))
        model.refine = bool(refine)
        if weights is not None:
            from hdr_keras import pretrained

            pretrained.load_weights(model, weights, name)
        return model

    @property
    def tile_multiple(self):
        """Tiles start at multiples of this: the downsampling factor of the nets that run per tile
        (the Hallucination stage only when it is not a whole-image one)."""
        multiples = [self.dequantization.unet.multiple]
        if not getattr(self.hallucination, "whole_image", False):
            multiples.append(self.hallucination.multiple)
        if self.refinement is not None:
            multiples.append(self.refinement.unet.multiple)
        return math.lcm(*multiples)

    def call(self, ldr, training=None, inverse_crf=None):
        """Runs the chain; a given ``inverse_crf`` [N, 1024] replaces the Linearization-Net's estimate."""
        dequantized = self.dequantization(ldr, training=training)
        if inverse_crf is None:
            inverse_crf = self.linearization(dequantized, training=training)["inverse_crf"]
        linear = self.linearization.apply_curve([dequantized, inverse_crf])
        hallucinated = self.hallucination(linear, training=training)
        outputs = {
            "dequantized": dequantized,
            "inverse_crf": inverse_crf,
            "linear": linear,
            "hallucinated": hallucinated,
            "hdr": hallucinated,
        }
        if self.refinement is not None and self.refine:
            outputs["hdr"] = self.refinement([hallucinated, linear, dequantized], training=training)
        return outputs

    def get_config(self):
        return {**super().get_config(), **self.stage_configs, "refine": self.refine}
