"""The stage networks and the end-to-end SingleHDR model."""

from hdr_keras.models.context_hallucination import ContextHallucinationNet
from hdr_keras.models.hallucination import HallucinationNet
from hdr_keras.models.linearization import Bottleneck, LinearizationNet
from hdr_keras.models.single_hdr import SingleHDR
from hdr_keras.models.unet import DequantizationNet, RefinementNet, UNet
from hdr_keras.presets import PRESETS, get_preset

__all__ = [
    "PRESETS",
    "Bottleneck",
    "ContextHallucinationNet",
    "DequantizationNet",
    "HallucinationNet",
    "LinearizationNet",
    "RefinementNet",
    "SingleHDR",
    "UNet",
    "get_preset",
]
