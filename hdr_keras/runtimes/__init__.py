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
import os

from hdr_keras.errors import UsageError

RUNTIMES = {"tensorflow": "hdr_keras.runtimes.tensorflow", "litert": "hdr_keras.runtimes.litert"}
"""Runtime name -> module holding its ``Runtime`` class."""


def pick(runtime="auto", dtype="auto"):
    """(runtime name, compute dtype, reason: a short string for logs) for a requested runtime
    (``"auto"`` or a key of :data:`RUNTIMES`) and dtype (:data:`hdr_keras.precision.DTYPES`).

    ``auto`` is the faster runtime for this machine (issue 25): TensorFlow where bfloat16 runs
    natively (a CPU with AMX or AVX512-BF16; a GPU), or when bfloat16 is asked for; LiteRT
    (XNNPACK) in float32 elsewhere, about twice TensorFlow's float32 speed on an AVX2 CPU. Reads
    /proc/cpuinfo and /dev only: imports no TensorFlow. UsageError if unknown or not supported.
    """
    from hdr_keras import precision

    runtime = "auto" if runtime is None else runtime
    if runtime != "auto" and runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime {runtime!r}; choose from auto, {', '.join(RUNTIMES)}")
    if dtype not in precision.DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}; choose from {', '.join(precision.DTYPES)}")
    if runtime == "auto":
        flags = precision.cpu_bf16_flags()
        if not flags and dtype != "bfloat16" and not _has_gpu():
            return "litert", "float32", "auto: no AMX / AVX512-BF16 CPU or GPU: LiteRT with XNNPACK, float32"
        runtime = "tensorflow"
    if runtime == "litert":
        if dtype == "bfloat16":
            raise UsageError("the litert runtime computes in float32 only; pass --runtime tensorflow for bfloat16")
        return "litert", "float32", "LiteRT computes in float32"
    dtype, reason = precision.resolve(dtype)
    return runtime, dtype, reason


def _has_gpu():
    """True when an NVIDIA GPU device is present (without asking TensorFlow)."""
    return os.path.exists("/dev/nvidia0")


def load(name, preset, weights, refine=True, dtype="float32"):
    """A ``Runtime`` of runtime ``name`` (see :func:`pick`) for ``preset`` with ``weights`` (a file)."""
    module = importlib.import_module(RUNTIMES[pick(name, dtype)[0]])
    return module.Runtime(preset, weights, refine=refine, dtype=dtype)
