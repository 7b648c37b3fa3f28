"""hdr_keras: single-image HDR reconstruction by reversing the camera pipeline (Liu et al., CVPR 2020).

Python API (docs/api.md), loaded on first use, so ``import hdr_keras`` imports neither TensorFlow
nor Keras: :func:`reconstruct` (a photo or an array -> :class:`Result` with ``.hdr``,
``.inverse_crf``, ``.info``), :class:`Reconstructor` (the model loaded once, for many photos),
:func:`load_model` (the Keras SingleHDR with its weights).

Where things are:

- Inference: :mod:`api` (the Python API) -> :mod:`engine` (curve, tiling, stages; every entry point
  runs through it) -> :mod:`runtimes` (what runs the stages: ``runtimes.tensorflow``, ``runtimes.litert``);
  :mod:`tiling` (tile plan and blending), :mod:`precision` (compute dtype), :mod:`errors` (UsageError).
- Commands (``python -m hdr_keras``, :mod:`__main__`): :mod:`predict` with :mod:`inputs` (the photos
  a batch reads) and :mod:`outputs` (output units: writers, atomic writes, sidecars, previews);
  ``evaluate`` (:mod:`metrics`, :mod:`highlights`); ``calibrate`` with :mod:`stack` (exposure stacks),
  :mod:`response_fit` (curve fits, held-out scoring) and :mod:`profiles` (camera profiles).
  :mod:`export` (SavedModel and TFLite: serving signatures, request checks, TF Serving clients).
- Model: :mod:`presets` (configs, as data), :mod:`models` (the four stages and
  :class:`~hdr_keras.models.SingleHDR`, whose ``from_preset`` is the one weights loader),
  :mod:`layers`, :mod:`ops` and :mod:`fill` (building blocks), :mod:`pretrained` (shipped weights,
  strict checks of weights files).
- Data and training: :mod:`crf` (camera curves, NumPy), :mod:`camera` and :mod:`seeds` (the forward
  camera model), :mod:`data` (datasets), :mod:`training` (stages, losses, the loop, runs).
- Files and platform: :mod:`io` (image files), :mod:`display` (Ultra HDR, AVIF), :mod:`filelock`,
  :mod:`paths` (default data folders), :mod:`quiet` (TensorFlow without its start-up noise).
"""

__version__ = "0.1.0"

_API = ("Reconstructor", "Result", "load_model", "reconstruct")
__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        from hdr_keras import api

        return getattr(api, name)
    raise AttributeError(f"module 'hdr_keras' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
