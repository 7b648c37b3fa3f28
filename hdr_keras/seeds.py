"""Stateless random numbers from an explicit seed (int32 [2]) on the TensorFlow or JAX backend.

``keras.random`` takes only integer or ``SeedGenerator`` seeds; the camera model needs seeds that
are tensors inside compiled steps, so that a (seed, step) pair fixes every image on any device.
"""

import keras


def _jax():
    import jax

    return jax


def _tf():
    import tensorflow as tf

    return tf


def split(seed, count):
    """``count`` new seeds [count, 2] derived from ``seed`` [2]."""
    if keras.backend.backend() == "jax":
        return _jax().random.split(keras.ops.cast(seed, "uint32"), count)
    return _tf().random.experimental.stateless_split(keras.ops.cast(seed, "int32"), count)


def uniform(shape, seed, minval=0.0, maxval=1.0, dtype="float32"):
    """Uniform numbers in [minval, maxval) (integers when ``dtype`` is integral)."""
    if keras.backend.backend() == "jax":
        jax = _jax()
        key = keras.ops.cast(seed, "uint32")
        if "int" in dtype:
            return jax.random.randint(key, tuple(shape), minval, maxval, dtype=dtype)
        return jax.random.uniform(key, tuple(shape), dtype, minval, maxval)
    return _tf().random.stateless_uniform(shape, keras.ops.cast(seed, "int32"), minval, maxval, dtype)


def normal(shape, seed, dtype="float32"):
    """Standard normal numbers."""
    if keras.backend.backend() == "jax":
        return _jax().random.normal(keras.ops.cast(seed, "uint32"), tuple(shape), dtype)
    return _tf().random.stateless_normal(shape, keras.ops.cast(seed, "int32"), dtype=dtype)
