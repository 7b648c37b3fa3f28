"""Reconstruct HDR images from millions of photos with Apache Beam (Dataflow, Flink, Spark, DirectRunner).

    hdr-keras beam --inputs 'gs://bucket/photos/*.jpg' --out_dir gs://bucket/hdr [output flags as
        predict's] [Beam pipeline options: --runner, --project, --direct_num_workers, ...]

Every matched file gives what predict writes for it (OUT_DIR/STEM.exr and the other --format
files, STEM.json, with --preview STEM.png), through RunInference with the model loaded once per
worker process and shared by its threads, photos batched with others of similar size. Files are
read and written through Beam's file systems (local; gs://, s3:// with Beam's gcp, aws extras),
each output under a temporary name, then renamed. An input that cannot be read or reconstructed
goes to OUT_DIR/failed.jsonl ({"input", "error"} per line; a line already there is not repeated)
and the pipeline goes on. A rerun skips the photos whose sidecar records the same input SHA-256,
weights and files. The counts read, written, skipped, failed print at the end. Exit status: 0 the
pipeline ran (failed inputs are listed in failed.jsonl), 2 usage error. Needs the beam extra
(pip install 'hdr-keras[beam]'). Documentation: docs/distributed.md.
"""

import sys

from hdr_keras import engine, predict, runtimes
from hdr_keras.display import avif, ultrahdr
from hdr_keras.errors import UsageError
from hdr_keras.precision import DTYPES
from hdr_keras.presets import PRESETS


def add_arguments(parser):
    """Adds the ``beam`` options to an argparse parser; options it does not know are Beam's pipeline options."""
    parser.set_defaults(pipeline_args=[])
    parser.add_argument(
        "--inputs",
        action="append",
        required=True,
        metavar="GLOB",
        help="pattern of input photo files, local or on a Beam file system (gs://..., s3://...); repeatable",
    )
    parser.add_argument("--out_dir", required=True, metavar="DIR", help="output folder, local or on a Beam file system")
    parser.add_argument(
        "--preset", default=engine.DEFAULT_PRESET, choices=sorted(PRESETS), help="model preset (default: %(default)s)"
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="FILE",
        help="Keras .weights.h5 file of the whole model, local or on a Beam file system (default: the "
        "preset's shipped weights)",
    )
    parser.add_argument(
        "--format",
        default=["exr"],
        type=predict._formats,
        metavar="FMT[,FMT...]",
        help="output formats, comma-separated: exr, hdr, uhdr, avif, as predict's (default: exr)",
    )
    parser.add_argument(
        "--max_boost", type=float, default=ultrahdr.DEFAULT_MAX_BOOST_STOPS, metavar="STOPS",
        help="uhdr: cap on the gain map's boost, in stops (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--uhdr_quality", type=int, default=ultrahdr.DEFAULT_QUALITY, metavar="Q", help="uhdr: JPEG quality (default: %(default)s)"
    )
    parser.add_argument(
        "--avif_quality", type=int, default=avif.DEFAULT_QUALITY, metavar="Q", help="avif: quality 0..100 (default: %(default)s)"
    )
    parser.add_argument("--float32", action="store_true", help="32-bit float OpenEXR (default: off)")
    parser.add_argument("--preview", action="store_true", help="also write STEM.png, a tone-mapped preview (default: off)")
    parser.add_argument(
        "--camera_profile",
        default="auto",
        metavar="FILE|auto|none",
        help="as predict's: a profile file (local) whose curve replaces the estimate; auto: the worker's saved "
        "profile of the camera each photo's EXIF names, if any; none (default: %(default)s)",
    )
    parser.add_argument(
        "--norefine", dest="refine", action="store_false", help="do not run the Refinement-Net (default: off)"
    )
    parser.add_argument("--dtype", default=engine.DEFAULT_DTYPE, choices=DTYPES, help="compute dtype (default: %(default)s)")
    parser.add_argument("--runtime", default="auto", choices=("auto", *runtimes.RUNTIMES),
                        help="what runs the networks, as predict's --runtime (default: %(default)s)")
    parser.add_argument(
        "--tile", type=int, default=engine.DEFAULT_TILE, metavar="PX", help="tile side for large images (default: %(default)s)"
    )
    parser.add_argument(
        "--tile_overlap", type=int, default=engine.DEFAULT_OVERLAP, metavar="PX", help="tile overlap (default: %(default)s)"
    )
    parser.add_argument(
        "--tile_above", type=float, default=engine.DEFAULT_TILE_ABOVE_MP, metavar="MP",
        help="tile images larger than this many megapixels (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--max_megapixels", type=float, default=predict.DEFAULT_MAX_MP, metavar="MP",
        help="refuse photos declaring more pixels, before decoding (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--batch_size", type=int, default=4, metavar="N",
        help="most photos of one size class per inference batch (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--share_model_across_processes",
        action="store_true",
        help="one model per machine, called by its worker processes through a proxy (default: off: one model "
        "per worker process, shared by its threads)",
    )


def check(args):
    """UsageError unless the options are valid (before any pipeline starts)."""
    predict.check_options(args)
    if args.batch_size < 1:
        raise UsageError(f"--batch_size must be >= 1, got {args.batch_size}")


def run(args):
    """Runs the pipeline for parsed ``args`` (Beam's options in ``args.pipeline_args``); returns the exit status."""
    try:
        from hdr_keras import beam_pipeline
    except ImportError as e:
        print(f"beam: error: apache-beam is not installed ({e}); pip install 'hdr-keras[beam]'", file=sys.stderr)
        return predict.EXIT_USAGE
    try:
        check(args)
        counts = beam_pipeline.run(args, args.pipeline_args)
    except UsageError as e:
        print(f"beam: error: {e}", file=sys.stderr)
        return predict.EXIT_USAGE
    print(f"beam: {', '.join(f'{n} {name}' for name, n in counts.items())} -> {args.out_dir}", file=sys.stderr)
    return predict.EXIT_OK
