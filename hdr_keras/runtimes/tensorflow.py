"""The TensorFlow runtime: the model's stages as traced functions (one trace each, any H and W).

The one traced inference of the package: ``predict``, the API and ``evaluate`` all run the model
through this class (the interface is in :mod:`hdr_keras.runtimes`). :meth:`Runtime.outputs` is the
whole chain in one call, batched, with every intermediate output (what ``evaluate`` scores).
"""


import numpy as np


class Runtime:
    """A built SingleHDR and its stages as ``tf.function`` s (see :mod:`hdr_keras.runtimes`)."""

    def __init__(self, preset, weights, refine=True, dtype="float32"):
        from hdr_keras import precision
        from hdr_keras.models import SingleHDR

        with precision.policy_scope(dtype):
            model = SingleHDR.from_preset(preset, weights=weights, refine=refine)
        self._trace(model)

    @classmethod
    def from_model(cls, model):
        """A runtime around an already built ``model`` (its ``refine`` attribute as set)."""
        runtime = cls.__new__(cls)
        runtime._trace(model)
        return runtime

    def _trace(self, model):
        import tensorflow as tf

        self.model = model
        # An untrained Refinement-Net is the identity: skip it (same output, a third less time).
        model.refine = model.refine and model.refinement is not None and not model.refinement.is_identity()
        self.refines = model.refine
        self.whole_image = bool(getattr(model.hallucination, "whole_image", False))
        self.align = model.tile_multiple
        image = tf.TensorSpec([None, None, None, 3], tf.float32)
        curve = tf.TensorSpec([None, 1024], tf.float32)

        def traced(*specs):
            def wrap(fn):
                function = tf.function(fn, input_signature=list(specs), reduce_retracing=True)

                def call(*args):
                    try:
                        return function(*args)
                    except tf.errors.ResourceExhaustedError as e:  # the same error whatever the runtime
                        raise MemoryError(f"out of memory in the {fn.__name__[:-3]} stage") from e

                return call

            return wrap

        @traced(image)
        def curve_fn(ldr):
            return model.linearization(model.dequantization(ldr, training=False), training=False)["inverse_crf"]

        @traced(image, curve)
        def linearize_fn(ldr, inverse_crf):
            return model.linearization.apply_curve([model.dequantization(ldr, training=False), inverse_crf])

        @traced(image)
        def curve_and_linearize_fn(ldr):
            dequantized = model.dequantization(ldr, training=False)
            inverse_crf = model.linearization(dequantized, training=False)["inverse_crf"]
            return inverse_crf, model.linearization.apply_curve([dequantized, inverse_crf])

        @traced(image)
        def hallucinate_fn(linear):
            return model.hallucination(linear, training=False)

        @traced(image, image, image)
        def refine_fn(ldr, linear, hallucinated):
            dequantized = model.dequantization(ldr, training=False)
            return model.refinement([hallucinated, linear, dequantized], training=False)

        @traced(image)
        def outputs_fn(ldr):
            return model(ldr, training=False)

        @traced(image, curve)
        def outputs_with_curve_fn(ldr, inverse_crf):
            return model(ldr, training=False, inverse_crf=inverse_crf)

        self._curve, self._linearize, self._hallucinate, self._refine = curve_fn, linearize_fn, hallucinate_fn, refine_fn
        self._outputs, self._outputs_with_curve = outputs_fn, outputs_with_curve_fn
        self._curve_and_linearize = curve_and_linearize_fn

    def curve(self, ldr):
        return self._curve(np.asarray(ldr, np.float32)).numpy()

    def linearize(self, ldr, inverse_crf):
        return self._linearize(np.asarray(ldr, np.float32), np.asarray(inverse_crf, np.float32)).numpy()

    def curve_and_linearize(self, ldr):
        inverse_crf, linear = self._curve_and_linearize(np.asarray(ldr, np.float32))
        return inverse_crf.numpy(), linear.numpy()

    def hallucinate(self, linear):
        return self._hallucinate(np.asarray(linear, np.float32)).numpy()

    def refine(self, ldr, linear, hallucinated):
        arrays = (np.asarray(a, np.float32) for a in (ldr, linear, hallucinated))
        return self._refine(*arrays).numpy()

    def outputs(self, ldr, inverse_crf=None):
        """The whole chain on a batch ``ldr`` [N, H, W, 3]: {``dequantized``, ``inverse_crf``,
        ``linear``, ``hdr``} as NumPy arrays; a given ``inverse_crf`` [N, 1024] replaces the estimate."""
        ldr = np.asarray(ldr, np.float32)
        if inverse_crf is None:
            out = self._outputs(ldr)
        else:
            out = self._outputs_with_curve(ldr, np.asarray(inverse_crf, np.float32))
        return {key: out[key].numpy() for key in ("dequantized", "inverse_crf", "linear", "hdr")}
