"""Keras layers of hdr_keras; each is registered and round-trips ``get_config``."""

from hdr_keras.layers.curve import ApplyCurve, MonotonicCRF
from hdr_keras.layers.edges import SobelEdges
from hdr_keras.layers.fuse import SkipFuse
from hdr_keras.layers.histogram import SoftHistogram
from hdr_keras.layers.normalization import BatchNormalization
from hdr_keras.layers.resampling import LegacyBilinearUpsample2x

__all__ = [
    "ApplyCurve",
    "BatchNormalization",
    "LegacyBilinearUpsample2x",
    "MonotonicCRF",
    "SkipFuse",
    "SobelEdges",
    "SoftHistogram",
]
