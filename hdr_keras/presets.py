"""Model presets, as data: the config of every stage of :class:`SingleHDR`.

``paper``: the authors' TF1 release layer by layer (docs/design.md#presets), so their checkpoints map on.
``lite``: the same stages with reduced widths, the curve estimated on a 4x smaller image, and the
whole-image Context Hallucination-Net (docs/design.md#stages) in place of the tile-local HDRCNN one;
the preset this project trains and ships (small enough for a laptop CPU and TFLite).
"""

import copy

PRESETS = {
    "paper": {
        "dequantization": {
            "unet": {"stem_filters": 16, "stem_kernel": 7, "stage_filters": [32, 64, 128, 256], "stage_kernels": [5, 3, 3, 3]}
        },
        "linearization": {
            "histogram_bins": [4, 8, 16],
            "feature_pool": 0,
            "stem_filters": 64,
            "stem_kernel": 7,
            "stages": [[64, 256, 3, 1], [128, 512, 2, 2]],
            "bn_epsilon": 1e-3,
            "num_basis": 11,
        },
        "hallucination": {
            "encoder": [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]],
            "bottleneck_filters": 512,
            "decoder_filters": [512, 512, 256, 128, 64],
            "bn_epsilon": 1e-5,
            "gamma": 0.88,
        },
        "refinement": {
            "unet": {
                "stem_filters": 16,
                "stem_kernel": 7,
                "stage_filters": [32, 64, 128, 128],
                "stage_kernels": [5, 3, 3, 3],
                "out_channels": 3,
                "head_initializer": "zeros",
            }
        },
    },
    "lite": {
        "dequantization": {
            "unet": {
                "stem_filters": 8,
                "stem_kernel": 3,
                "stage_filters": [8, 16, 32, 32],
                "stage_kernels": [3, 3, 3, 3],
                "head_initializer": "zeros",
            },
            "residual_scale": 4 / 255,
            "detail_input": True,
        },
        "linearization": {
            "histogram_bins": [4, 8, 16],
            "feature_pool": 2,
            "stem_filters": 32,
            "stem_kernel": 3,
            "stages": [[32, 128, 1, 1], [64, 256, 2, 2]],
            "bn_epsilon": 1e-3,
            "num_basis": 11,
        },
        "hallucination": {
            "architecture": "context",
            "unet": {
                "stem_filters": 12,
                "stem_kernel": 3,
                "stage_filters": [16, 32, 48, 64],
                "stage_kernels": [3, 3, 3, 3],
                "head_initializer": "zeros",
            },
            "working_side": 512,
            "levels": 6,
            "gamma": 0.88,
        },
        "refinement": {
            "unet": {
                "stem_filters": 8,
                "stem_kernel": 3,
                "stage_filters": [16, 32, 64, 64],
                "stage_kernels": [3, 3, 3, 3],
                "out_channels": 3,
                "head_initializer": "zeros",
            }
        },
    },
}


def get_preset(name):
    """A deep copy of preset ``name``'s config; raises ValueError naming the known presets."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return copy.deepcopy(PRESETS[name])
