"""Runtimes: what runs the model's stages for :class:`hdr_keras.engine.Engine`.

A runtime module ``hdr_keras.runtimes.<name>`` holds a class ``Runtime(preset, weights, refine,
dtype)`` with the attributes ``align`` (tiles start at multiples of it), ``whole_image`` (the
Hallucination stage runs once on the whole image), ``refines`` (the Refinement-Net runs: asked
for and not the identity) and these methods, on float32 NumPy arrays, returning float32 NumPy arrays:

- ``curve(ldr [N, h, w, 3] in [0, 1]) -> inverse_crf [N, 1024]``: Dequantization + Linearization-Net;
- ``linearize(ldr [N, H, W, 3], inverse_crf [N, 1024]) -> linear [N, H, W, 3]``: Dequantization + the curve;
- ``hallucinate(linear [N, H, W, 3]) -> hallucinated [N, H, W, 3]``: the Hallucination-Net;
- ``refine(ldr, linear, hallucinated) -> hdr [N, H, W, 3]``: the Refinement-Net (only if ``refines``);
- optionally ``curve_and_linearize(ldr [N, H, W, 3]) -> (inverse_crf [N, 1024], linear [N, H, W, 3])``:
  both of the first two on the same image with one Dequantization pass, which the engine uses for an
  image small enough for the curve as is (else it runs ``curve`` and ``linearize``).
"""

import importlib

from hdr_keras.errors import UsageError

RUNTIMES = {"tensorflow": "hdr_keras.runtimes.tensorflow"}
"""Runtime name -> module holding its ``Runtime`` class."""
AUTO = "tensorflow"
"""What ``runtime="auto"`` picks."""


def resolve(name):
    """``name`` (``"auto"`` or a key of :data:`RUNTIMES`) -> the runtime name; UsageError if unknown."""
    name = AUTO if name in (None, "auto") else name
    if name not in RUNTIMES:
        raise UsageError(f"unknown runtime {name!r}; choose from auto, {', '.join(RUNTIMES)}")
    return name


def load(name, preset, weights, refine=True, dtype="float32"):
    """A ``Runtime`` of runtime ``name`` (see :func:`resolve`) for ``preset`` with ``weights`` (a file)."""
    module = importlib.import_module(RUNTIMES[resolve(name)])
    return module.Runtime(preset, weights, refine=refine, dtype=dtype)
