"""The LiteRT runtime: the model's stages from one .tflite file, run by LiteRT with XNNPACK, no TensorFlow.

The file holds one signature per stage (the interface is in :mod:`hdr_keras.runtimes`): ``curve``,
``linearize``, ``curve_and_linearize``, ``hallucinate`` and, when the Refinement-Net runs, ``refine``; inputs [1, H, W, 3]
with H and W dynamic, float32, TFLite builtin ops only (the Python LiteRT runtime has no Flex ops).
It is built once per model version and weights, with TensorFlow (:func:`build`), into the per-user
cache ``$XDG_CACHE_HOME/hdr_keras/litert/`` (``~/.cache`` without it), keyed by the weights'
SHA-256, the package version and a digest of the source that defines the graph; later processes
load it without importing TensorFlow or Keras. Beside it, ``<key>.json`` holds what the engine
needs to know of the model (``align``, ``whole_image``, ``refines``). Both are written to
temporaries and renamed into place (the .tflite last), under a lock, so concurrent processes build
it once and a kill leaves no half-written file.

Running: XNNPACK on all the CPUs this process may use. An interpreter is kept per input size
(:data:`MAX_SIZES` at most, least recently used dropped): a tiled image alternates a few tile sizes,
and resizing one interpreter re-plans its memory and XNNPACK's operators each time.

Variants (:data:`VARIANTS`): ``fp32``; ``fp16`` (float16 weights, computed in float32 on x86);
``int8`` (dynamic-range: int8 weights, activations quantised on the fly). Only ``fp32`` is used by
the engine: the others' accuracy and speed are measured by ``bench/bench_runtime.py``.
"""

import collections
import contextlib
import hashlib
import json
import os
import pathlib
import sys
import tempfile
import uuid

import numpy as np

from hdr_keras import __version__, filelock
from hdr_keras.errors import UsageError

STAGES = ("curve", "linearize", "curve_and_linearize", "hallucinate", "refine")
"""Signature keys, in the order the engine runs them (``refine`` only when the Refinement-Net runs)."""
VARIANTS = ("fp32", "fp16", "int8")
DTYPES = {"float32": "fp32"}
"""Compute dtype -> the variant that runs it (LiteRT runs float32 only)."""
MAX_SIZES = 4
"""Interpreters kept at once, one per input size."""
CACHE_ENV = "XDG_CACHE_HOME"
_PACKAGE = pathlib.Path(__file__).resolve().parents[1]
_GRAPH_SOURCES = ("models", "layers", "ops.py", "fill.py", "presets.py", "runtimes/litert.py")
"""Source that defines the converted graph (under the package), hashed into the cache key."""


class Error(UsageError):
    """The .tflite file cannot be built or loaded; the message is one line naming it."""


def cache_dir():
    """Folder of the built .tflite files: ``$XDG_CACHE_HOME/hdr_keras/litert`` (default ``~/.cache``)."""
    root = os.environ.get(CACHE_ENV) or pathlib.Path.home() / ".cache"
    return pathlib.Path(root).expanduser() / "hdr_keras" / "litert"


def source_digest():
    """Hex SHA-256 of the source files that define the graph (:data:`_GRAPH_SOURCES`), 12 characters."""
    digest = hashlib.sha256()
    for name in _GRAPH_SOURCES:
        path = _PACKAGE / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(_PACKAGE).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def cache_path(preset, weights_sha256, refine=True, variant="fp32"):
    """Path of the .tflite file for these settings (it may not exist yet)."""
    key = f"{preset}-{variant}-{'refine' if refine else 'norefine'}-{weights_sha256[:16]}-v{__version__}-{source_digest()}"
    return cache_dir() / f"{key}.tflite"


def stage_module(model):
    """A ``tf.Module`` with one batch-1 ``tf.function`` per stage of the built SingleHDR ``model``
    (``model.refine`` decides whether ``refine`` is one), tracking only the variables they read
    (so that the converter freezes them); ``signatures()`` -> {key: concrete function}."""
    import tensorflow as tf

    def traced(*names):
        specs = [tf.TensorSpec([1, 1024] if n == "inverse_crf" else [1, None, None, 3], tf.float32, name=n) for n in names]
        return lambda fn: tf.function(fn, input_signature=specs, autograph=False)

    @traced("ldr")
    def curve(ldr):
        dequantized = model.dequantization(ldr, training=False)
        return {"inverse_crf": model.linearization(dequantized, training=False)["inverse_crf"]}

    @traced("ldr", "inverse_crf")
    def linearize(ldr, inverse_crf):
        return {"linear": model.linearization.apply_curve([model.dequantization(ldr, training=False), inverse_crf])}

    @traced("ldr")
    def curve_and_linearize(ldr):
        dequantized = model.dequantization(ldr, training=False)
        inverse_crf = model.linearization(dequantized, training=False)["inverse_crf"]
        return {"inverse_crf": inverse_crf, "linear": model.linearization.apply_curve([dequantized, inverse_crf])}

    @traced("linear")
    def hallucinate(linear):
        return {"hallucinated": model.hallucination(linear, training=False)}

    @traced("ldr", "linear", "hallucinated")
    def refine(ldr, linear, hallucinated):
        dequantized = model.dequantization(ldr, training=False)
        return {"hdr": model.refinement([hallucinated, linear, dequantized], training=False)}

    functions = {"curve": curve, "linearize": linearize, "curve_and_linearize": curve_and_linearize, "hallucinate": hallucinate}
    if model.refine:
        functions["refine"] = refine
    module = tf.Module()
    concrete = {key: fn.get_concrete_function() for key, fn in functions.items()}
    module.model_variables = list({id(v): v for fn in concrete.values() for v in fn.variables}.values())
    for key, fn in functions.items():
        setattr(module, key, fn)
    module.signatures = lambda: concrete
    return module


def convert(model, variant="fp32"):
    """TFLite flatbuffer (bytes) of ``model``'s stages (:func:`stage_module`), builtin ops only."""
    import tensorflow as tf

    from hdr_keras.export import tflite_converter

    module = stage_module(model)
    signatures = module.signatures()
    with tempfile.TemporaryDirectory(prefix="hdr_litert_") as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
        converter = tflite_converter(tmp, variant, signature_keys=list(signatures))
        return converter.convert()


def model_info(model):
    """What the engine needs of ``model`` (a built SingleHDR, ``refine`` as it will run): align,
    whole_image, refines."""
    return {
        "align": model.tile_multiple,
        "whole_image": bool(getattr(model.hallucination, "whole_image", False)),
        "refines": bool(model.refine),
    }


def build(preset, weights, refine=True, variant="fp32", weights_sha256=None, log=None):
    """Path of the .tflite file of ``preset`` with ``weights`` (a file), built now if not cached.

    Building imports TensorFlow and takes tens of seconds; ``log(message)`` is told before it
    starts. ``refine``: whether the Refinement-Net runs when it is not the identity.
    """
    from hdr_keras import pretrained

    if variant not in VARIANTS:
        raise ValueError(f"unknown LiteRT variant {variant!r}; known: {', '.join(VARIANTS)}")
    weights_sha256 = weights_sha256 or pretrained.sha256(weights)
    path = cache_path(preset, weights_sha256, refine, variant)
    if _complete(path):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Error(f"{path.parent}: cannot create the LiteRT cache folder ({e.strerror or e}); set {CACHE_ENV}") from None
    with filelock.hold(path.parent / f".{path.stem}.lock"):  # another process building it: wait for it
        if _complete(path):
            return path
        from hdr_keras.quiet import import_tensorflow

        import_tensorflow()
        from hdr_keras import precision

        with precision.policy_scope("float32"):
            model = pretrained.build_model(preset, weights, refine=bool(refine))  # a bad file fails here, alone
        if log is not None:
            log(f"building the LiteRT model for these weights, once: {path} (about a minute)")
        model.refine = model.refine and model.refinement is not None and not model.refinement.is_identity()
        content = convert(model, variant)
        _write_atomic(_info_path(path), json.dumps(model_info(model), indent=1).encode())
        _write_atomic(path, content)
    return path


def _info_path(path):
    return path.with_suffix(".json")


def _complete(path):
    return path.is_file() and _info_path(path).is_file()


def _write_atomic(path, data):
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def num_threads():
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _say(message):
    print(f"hdr_keras: {message}", file=sys.stderr, flush=True)


class Runtime:
    """The stages of ``preset`` with ``weights`` run by LiteRT (see :mod:`hdr_keras.runtimes`).

    ``dtype`` must be ``float32``; the .tflite file is built on first use (:func:`build`).
    Arrays in and out are float32 NumPy arrays; a batch of N runs image by image.
    """

    def __init__(self, preset, weights, refine=True, dtype="float32", variant=None, log=_say):
        if dtype not in DTYPES:
            raise UsageError(f"the litert runtime computes in float32 only, not {dtype}; pass --runtime tensorflow")
        self.variant = variant or DTYPES[dtype]
        self.path = build(preset, weights, refine, self.variant, log=log)
        self.load(self.path)

    @classmethod
    def from_file(cls, path):
        """A runtime around a .tflite file of :func:`build` (its ``.json`` beside it)."""
        runtime = cls.__new__(cls)
        runtime.variant, runtime.path = None, pathlib.Path(path)
        runtime.load(runtime.path)
        return runtime

    def load(self, path):
        try:
            info = json.loads(_info_path(path).read_text())
            self.content = pathlib.Path(path).read_bytes()
        except (OSError, ValueError) as e:
            raise Error(f"{path}: cannot read the LiteRT model ({e}); remove it to rebuild it") from None
        self.align, self.whole_image, self.refines = int(info["align"]), bool(info["whole_image"]), bool(info["refines"])
        self.threads = num_threads()
        self._interpreters = collections.OrderedDict()

    def _runner(self, key, shape):
        """The signature runner of stage ``key`` on an interpreter kept for inputs of ``shape``."""
        from ai_edge_litert.interpreter import Interpreter

        interpreter = self._interpreters.pop(shape, None)
        if interpreter is None:
            while len(self._interpreters) >= MAX_SIZES:
                self._interpreters.popitem(last=False)
            interpreter = Interpreter(model_content=self.content, num_threads=self.threads)
        self._interpreters[shape] = interpreter
        return interpreter.get_signature_runner(key)

    def _run(self, key, outputs, **inputs):
        inputs = {name: np.ascontiguousarray(value, np.float32) for name, value in inputs.items()}
        first = next(iter(inputs.values()))
        batch, shape = first.shape[0], tuple(first.shape[1:3])
        results = []
        for i in range(batch):
            runner = self._runner(key, shape)
            results.append(runner(**{name: value[i : i + 1] for name, value in inputs.items()}))
        return tuple(np.concatenate([r[name] for r in results]) for name in outputs)

    def curve(self, ldr):
        return self._run("curve", ["inverse_crf"], ldr=ldr)[0]

    def linearize(self, ldr, inverse_crf):
        return self._run("linearize", ["linear"], ldr=ldr, inverse_crf=inverse_crf)[0]

    def curve_and_linearize(self, ldr):
        return self._run("curve_and_linearize", ["inverse_crf", "linear"], ldr=ldr)

    def hallucinate(self, linear):
        return self._run("hallucinate", ["hallucinated"], linear=linear)[0]

    def refine(self, ldr, linear, hallucinated):
        return self._run("refine", ["hdr"], ldr=ldr, linear=linear, hallucinated=hallucinated)[0]
