"""The Beam pipeline of ``hdr-keras beam`` (:mod:`hdr_keras.beam`): transforms, model handler, outputs.

    Create(patterns) | MatchAll | Distinct paths | by output name: the first claims it |
    ReadMatches | Prepare (bytes, SHA-256; skip current units) | RunInference(EngineHandler)
    (decode + reconstruct, batched by size class) | Write (outputs.write locally, then published)

Each step also emits events, ("read" | "skipped" | "written" | "failed", input or failure); after a
Reshuffle, :class:`Tally` counts them into the Beam metrics and the failures go to failed.jsonl.
(Counting there, not in the steps: the DirectRunner of Beam 2.78 drops the metrics of a step with
a side input, and of elements that the bucketed batching releases at the end of the input.)
Everything the workers run is in this module (it imports ``apache_beam``, the beam extra).
"""

import hashlib
import io as bytes_io
import json
import os
import pathlib
import posixpath
import shutil
import tempfile
import time
import typing
import uuid

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import CompressionTypes, FileSystems
from apache_beam.metrics.metric import Metrics, MetricsFilter
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from hdr_keras import engine
from hdr_keras import outputs as units
from hdr_keras.errors import UsageError

FAILED_FILE = "failed.jsonl"
METRICS_NAMESPACE = "hdr_keras"
COUNTS = ("read", "written", "skipped", "failed")
SIZE_BUCKETS_MP = [1, 2, 4, 8, 16, 32]
"""Photos are batched with others of their size class: < 1 MP, 1-2, 2-4, ..., >= 32 megapixels."""
MAX_BATCH_SECONDS = 5
"""How long a batch waits for photos of its size class (Beam's bucketed batching needs a bound)."""


class Photo(typing.NamedTuple):
    """An input file read whole: its path, bytes and their SHA-256, and its declared pixels (0: unknown)."""

    path: str
    data: bytes
    sha256: str
    pixels: int


class Settings(typing.NamedTuple):
    """What the workers need besides the model: what to write where, and the weights' SHA-256."""

    out_dir: str
    formats: list
    preview: bool
    weights_sha256: str
    max_pixels: int
    writer_options: dict
    tiling: dict
    camera_profile: str


def run(args, pipeline_args):
    """Builds and runs the pipeline for ``hdr-keras beam`` ``args``; returns {count name: n}."""
    from hdr_keras import pretrained

    if not any(match.metadata_list for match in FileSystems.match(args.inputs)):
        raise UsageError("no input file matches " + ", ".join(args.inputs))
    weights = args.weights
    if weights is None or not _remote(weights):
        try:
            weights = str(pretrained.resolve_weights(args.preset, weights))
        except (ValueError, FileNotFoundError) as e:
            raise UsageError(str(e)) from None
    if not FileSystems.exists(args.out_dir):
        FileSystems.mkdirs(args.out_dir)
    settings = Settings(
        out_dir=args.out_dir,
        formats=list(args.format),
        preview=args.preview,
        weights_sha256=file_sha256(weights),
        max_pixels=round(args.max_megapixels * 1e6),
        writer_options=units.writer_options(args),
        tiling={"tile": args.tile, "overlap": args.tile_overlap, "tile_above": args.tile_above},
        camera_profile=args.camera_profile,
    )
    engine_options = {"preset": args.preset, "weights": weights, "refine": args.refine, "dtype": args.dtype,
                      "runtime": args.runtime}
    handler = EngineHandler(engine_options, settings, args.batch_size, args.share_model_across_processes)
    pipeline = beam.Pipeline(options=PipelineOptions(pipeline_args))
    build(pipeline, args.inputs, settings, handler)
    result = pipeline.run()
    result.wait_until_finish()
    counts = dict.fromkeys(COUNTS, 0)
    for counter in result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]:
        counts[counter.key.metric.name] += counter.committed or 0
    return counts


def build(pipeline, patterns, settings, handler):
    """Adds the HDR pipeline over the files matching ``patterns`` to ``pipeline``."""
    claimed = (
        pipeline
        | "Patterns" >> beam.Create(list(patterns))
        | "Match" >> fileio.MatchAll()
        | "Paths" >> beam.Map(lambda metadata: metadata.path)
        | "Once" >> beam.Distinct()
        | "ByName" >> beam.Map(lambda path: (stem(path), path))
        | "SameName" >> beam.GroupByKey()
        | "Claim" >> beam.FlatMap(claim_names).with_outputs(EVENTS, main="paths")
    )
    read = (
        claimed.paths
        | "Read" >> fileio.ReadMatches()
        | "Prepare" >> beam.ParDo(Prepare(settings)).with_outputs(EVENTS, main="photos")
    )
    written = (
        read.photos
        | "Reconstruct" >> RunInference(handler)
        | "Write" >> beam.ParDo(Write(settings)).with_outputs(EVENTS)
    )
    (
        (claimed[EVENTS], read[EVENTS], written[EVENTS])
        | "Events" >> beam.Flatten()
        | "Settle" >> beam.Reshuffle()
        | "Tally" >> beam.ParDo(Tally())
        | "AllFailures" >> beam.combiners.ToList()
        | "DeadLetter" >> beam.Map(record_failures, settings.out_dir)
    )


EVENTS = "events"


def stem(path):
    """The output name of an input path (any file system): its file name without the extension."""
    return pathlib.PurePosixPath(posixpath.basename(path.rstrip("/"))).stem


def claim_names(name_and_paths):
    """The first (sorted) of the inputs with one output name; a failure event for each of the others."""
    _, paths = name_and_paths
    first, *others = sorted(paths)
    yield first
    for path in others:
        yield _failure(path, f"{path}: output name '{stem(path)}' is also that of {first}; rename one of them")


def _remote(path):
    return "://" in str(path)


def _event(kind, value):
    return beam.pvalue.TaggedOutput(EVENTS, (kind, value))


def _failure(path, error):
    return _event("failed", {"input": path, "error": error})


class Tally(beam.DoFn):
    """Counts the events into the Beam metrics :data:`COUNTS`; passes the failures on."""

    def process(self, event):
        kind, value = event
        Metrics.counter(METRICS_NAMESPACE, kind).inc()
        if kind == "failed":
            yield value


def file_sha256(path):
    """Hex SHA-256 of a file on any Beam file system."""
    digest = hashlib.sha256()
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def declared_pixels(data):
    """Width x height from an image header (nothing decoded); 0 when Pillow cannot tell."""
    from PIL import Image

    try:
        with Image.open(bytes_io.BytesIO(data)) as image:
            return image.width * image.height
    except Exception:  # not an image Pillow opens: the decoder gives the reason later
        return 0


def output_paths(settings, name):
    """{role: destination path} of the output unit of ``name`` (:func:`hdr_keras.outputs.output_paths`)."""
    local = units.output_paths(pathlib.PurePosixPath(), name, settings.formats, settings.preview)
    return {role: FileSystems.join(settings.out_dir, path.name) for role, path in local.items()}


def unit_is_current(outputs, sha256, weights_sha256):
    """Whether the output unit ``outputs`` ({role: path}) is complete and made from the input with
    ``sha256`` by the weights with ``weights_sha256``: its sidecar says so and lists each file at its size."""
    try:
        with FileSystems.open(outputs["json"], compression_type=CompressionTypes.UNCOMPRESSED) as f:
            sidecar = json.loads(f.read())
    except Exception:  # missing or unreadable: the unit is (re)written
        return False
    if sidecar.get("input_sha256") != sha256 or sidecar.get("weights", {}).get("sha256") != weights_sha256:
        return False
    listed = sidecar.get("files", {})
    for role, path in outputs.items():
        if role == "json":
            continue
        entry = listed.get(role)
        if not isinstance(entry, dict) or entry.get("name") != posixpath.basename(path):
            return False
        found = FileSystems.match([path])[0].metadata_list
        if not found or found[0].size_in_bytes != entry.get("bytes"):
            return False
    return True


def decode(photo, max_pixels, camera_profile="none"):
    """(pixels float32 [H, W, 3] in [0, 1], camera profile (Profile, file) or None) of a photo, as
    ``predict`` decodes a file (:func:`hdr_keras.io.read_ldr`) and picks its profile
    (:func:`hdr_keras.profiles.resolve`), on a local copy; the errors name ``photo.path``."""
    from hdr_keras import io as hio
    from hdr_keras import profiles

    with tempfile.TemporaryDirectory(prefix="hdr_keras-beam-") as folder:
        local = os.path.join(folder, "input" + pathlib.PurePosixPath(photo.path).suffix)
        with open(local, "wb") as f:
            f.write(photo.data)
        try:
            image = hio.read_ldr(local, min_size=engine.MIN_SIZE, max_pixels=max_pixels)
        except hio.ImageReadError as e:
            raise hio.ImageReadError(str(e).replace(local, photo.path)) from None
        return image, profiles.resolve(camera_profile, local)


def size_class(photo):
    """The batching length of a photo: its declared megapixels (bucketed by :data:`SIZE_BUCKETS_MP`)."""
    return photo.pixels // 1_000_000


def publish(local, destination):
    """Copies the local file ``local`` to ``destination`` (any Beam file system) under a temporary
    name beside it, flushed to disk (fsync) on a local disk, then renames it into place."""
    folder, name = posixpath.split(destination) if _remote(destination) else os.path.split(destination)
    tmp = FileSystems.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(local, "rb") as source, FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as target:
            shutil.copyfileobj(source, target, 1 << 20)
        if not _remote(tmp):
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        FileSystems.rename([tmp], [destination])
    except BaseException:
        if FileSystems.exists(tmp):
            FileSystems.delete([tmp])
        raise


def write_unit(settings, photo, image, result, start, camera_profile=None):
    """Writes ``photo``'s output unit: :func:`hdr_keras.outputs.write` (predict's files and sidecar,
    plus ``input_sha256``) into a local folder, then each file published, the sidecar last.
    ``camera_profile``: what the sidecar records of the profile used (None: the curve was estimated)."""
    from hdr_keras import __version__

    name = stem(photo.path)
    destinations = output_paths(settings, name)
    if FileSystems.exists(destinations["json"]):  # an interruption leaves no sidecar describing other files
        FileSystems.delete([destinations["json"]])
    with tempfile.TemporaryDirectory(prefix="hdr_keras-beam-") as folder:
        local = units.output_paths(pathlib.Path(folder), name, settings.formats, settings.preview)
        height, width = result.hdr.shape[:2]
        meta = {"hdr_keras_version": __version__, "input": photo.path, "formats": settings.formats}
        meta.update(width=int(width), height=int(height), camera_profile=camera_profile, input_sha256=photo.sha256)
        base_image = image if "uhdr" in settings.formats else None
        units.write(local, result, base_image, meta, start, **settings.writer_options)
        for role in [r for r in local if r != "json"] + ["json"]:
            publish(str(local[role]), destinations[role])


def record_failures(failures, out_dir):
    """Adds ``failures`` ({"input", "error"}) to ``out_dir/failed.jsonl``, except those already
    there; rewritten whole (a temporary name, then a rename), and only when something is new."""
    path = FileSystems.join(out_dir, FAILED_FILE)
    lines = []
    if FileSystems.exists(path):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            lines = [line for line in f.read().decode().splitlines() if line.strip()]
    known = set()
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        known.add((entry.get("input"), entry.get("error")))
    new = sorted({(f["input"], f["error"]) for f in failures} - known)
    if not new:
        return 0
    lines += [json.dumps({"input": source, "error": error}) for source, error in new]
    with tempfile.TemporaryDirectory(prefix="hdr_keras-beam-") as folder:
        local = os.path.join(folder, FAILED_FILE)
        pathlib.Path(local).write_text("\n".join(lines) + "\n")
        publish(local, path)
    return len(new)


class Prepare(beam.DoFn):
    """ReadableFile -> :class:`Photo`, or a failure (unreadable); a current unit is skipped."""

    def __init__(self, settings):
        self.settings = settings

    def process(self, readable):
        path = readable.metadata.path
        try:
            data = readable.read()
        except Exception as e:  # permissions, a vanished file, a store error
            yield _failure(path, f"{path}: cannot read ({type(e).__name__}: {e})")
            return
        yield _event("read", path)
        sha256 = hashlib.sha256(data).hexdigest()
        if unit_is_current(output_paths(self.settings, stem(path)), sha256, self.settings.weights_sha256):
            yield _event("skipped", path)
            return
        yield Photo(path, data, sha256, declared_pixels(data))


class Write(beam.DoFn):
    """PredictionResult(Photo, outcome) -> the photo's output unit written (an event), or a failure."""

    def __init__(self, settings):
        self.settings = settings

    def process(self, prediction):
        photo, outcome = prediction.example, prediction.inference
        if isinstance(outcome, str):
            yield _failure(photo.path, outcome)
            return
        image, result, start, camera_profile = outcome
        try:
            write_unit(self.settings, photo, image, result, start, camera_profile)
        except Exception as e:  # a full or read-only store: this unit fails, the others go on
            yield _failure(photo.path, f"{photo.path}: cannot write output ({type(e).__name__}: {e})")
            return
        yield _event("written", photo.path)


class EngineHandler(ModelHandler):
    """RunInference around :class:`hdr_keras.engine.Engine`, on batches of photos of one size class.

    The engine is loaded once per worker process (RunInference's shared handle) and used by its
    threads; with ``share_across_processes``, once per machine, each process calling it through a
    proxy. Each photo is decoded and reconstructed here; one that fails gives its one-line error
    as its outcome, and the batch goes on.
    """

    def __init__(self, engine_options, settings, batch_size=4, share_across_processes=False):
        super().__init__(
            min_batch_size=1,
            max_batch_size=batch_size,
            max_batch_duration_secs=MAX_BATCH_SECONDS,
            batch_length_fn=size_class,
            batch_bucket_boundaries=SIZE_BUCKETS_MP,
            large_model=share_across_processes,
        )
        self.engine_options, self.settings = engine_options, settings

    def load_model(self):
        from hdr_keras.quiet import import_tensorflow

        options = dict(self.engine_options)
        if _remote(options["weights"]):  # copied from the store once per worker process
            local = os.path.join(tempfile.mkdtemp(prefix="hdr_keras-weights-"), posixpath.basename(options["weights"]))
            with FileSystems.open(options["weights"], compression_type=CompressionTypes.UNCOMPRESSED) as source:
                with open(local, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            options["weights"] = local
        import_tensorflow()
        return engine.Engine(**options)

    def run_inference(self, batch, model, inference_args=None):
        from hdr_keras import io as hio
        from hdr_keras import profiles

        for photo in batch:
            start = time.perf_counter()
            try:
                image, profile = decode(photo, self.settings.max_pixels, self.settings.camera_profile)
                curve = None if profile is None else profile[0].inverse_crf
                described = None if profile is None else profiles.describe(*profile)
                outcome = (image, model.reconstruct(image, curve, **self.settings.tiling), start, described)
            except hio.ImageReadError as e:
                outcome = str(e)
            except MemoryError as e:
                outcome = f"{photo.path}: out of memory ({type(e).__name__}); try a smaller --tile or --tile_above"
            except Exception as e:  # this photo fails; the batch and the pipeline go on
                outcome = f"{photo.path}: failed ({type(e).__name__}: {e})"
            yield PredictionResult(photo, outcome)

    def get_num_bytes(self, batch):
        return sum(len(photo.data) for photo in batch)
