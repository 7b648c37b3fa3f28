"""SingleHDR: the whole reversed camera pipeline, built from the stage configs (docs/design.md#stages)."""

import keras

from hdr_keras.models.hallucination import HallucinationNet
from hdr_keras.models.linearization import LinearizationNet
from hdr_keras.models.unet import DequantizationNet, RefinementNet
from hdr_keras.precision import FLOAT32
from hdr_keras.presets import get_preset


@keras.saving.register_keras_serializable(package="hdr_keras")
class SingleHDR(keras.Model):
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
        self.hallucination = HallucinationNet(**hallucination, name="hallucination")
        self.refinement = None if refinement is None else RefinementNet(**refinement, name="refinement")

    @classmethod
    def from_preset(cls, name, refine=True, **kwargs):
        """Builds preset ``name`` (see :mod:`hdr_keras.presets`) with fresh weights."""
        return cls(**get_preset(name), refine=refine, **kwargs)

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
