"""Compute precision: which dtype policy the networks run under, and where bfloat16 pays off.

Every model of :mod:`hdr_keras.models` is safe under the ``mixed_bfloat16`` and ``mixed_float16``
policies: convolutions, dense layers and activations compute in the policy's dtype, while the
parts that need float32 (curve lookup indices and interpolation, the EMoR decode and monotone
projection, the soft histogram, the Dequantization-Net residual added to the 8-bit input, the
over-exposure mask, every output) are layers or containers pinned to ``float32``
(:data:`FLOAT32`). Variables are float32 under every policy.

``--dtype auto`` picks bfloat16 only where the hardware runs it natively: a CPU with AMX or
AVX512-BF16, or a GPU of compute capability 8.0 or newer; float32 elsewhere.
"""

import contextlib
import pathlib

FLOAT32 = "float32"
"""Policy of the precision-critical layers and of every model container (their outputs are float32)."""
DTYPES = ("auto", "float32", "bfloat16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_bf16_flags(cpuinfo="/proc/cpuinfo"):
    """The bfloat16 instruction sets this CPU reports (``amx_bf16``, ``avx512_bf16``); empty if unknown."""
    try:
        text = pathlib.Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return tuple(f for f in _CPU_BF16_FLAGS if f in flags)
    return ()


def gpu_supports_bf16():
    """True when TensorFlow sees a GPU of compute capability >= 8.0 (Ampere and newer)."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if tuple(capability) >= (8, 0):
            return True
    return False


def resolve(dtype):
    """``dtype`` in :data:`DTYPES` -> (``"float32"`` or ``"bfloat16"``, reason: a short string for logs)."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype, "asked for"
    flags = cpu_bf16_flags()
    if flags:
        return "bfloat16", "auto: CPU has " + " and ".join(flags)
    if gpu_supports_bf16():
        return "bfloat16", "auto: GPU with compute capability >= 8.0"
    return "float32", "auto: no AMX / AVX512-BF16 CPU or bfloat16 GPU found"


@contextlib.contextmanager
def policy_scope(dtype):
    """Builds models inside under the policy of ``dtype`` (``float32``, ``bfloat16``, ``float16``).

    Keras layers take the global policy when they are created; it is restored on exit.
    """
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[dtype])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
