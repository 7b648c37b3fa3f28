"""The ``evaluate`` command: flags, running a protocol, writing the report."""

import argparse
import pathlib
import sys
import time

from hdr_keras import crf
from hdr_keras import stack as stack_lib
from hdr_keras.evaluate import native, real, synthetic
from hdr_keras.evaluate.scenes import DEFAULT_EXPOSURES, DEFAULT_SIZE
from hdr_keras.evaluate.tables import write_json
from hdr_keras.paths import DEFAULT_VAL_DIR
from hdr_keras.precision import DTYPES
from hdr_keras.presets import PRESETS


def number_list(values, kind):
    """argparse values (``["-3,-2", "0"]`` or ``["-3", "-2"]``) -> list of ``kind``."""
    items = [item for value in values for item in str(value).replace(",", " ").split()]
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {' '.join(values)!r}") from None


def add_arguments(parser):
    """Adds the ``evaluate`` flags to an argparse parser."""
    parser.add_argument("--hdr_dir", default=str(DEFAULT_VAL_DIR),
                        help="folder of test HDR files (.exr/.hdr/.pic), or one file (default: %(default)s)")
    parser.add_argument("--preset", default="lite", choices=sorted(PRESETS), help="model preset (default: %(default)s)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--weights", default=None,
                         help="SingleHDR .weights.h5 file (default: the weights shipped for --preset)")
    weights.add_argument("--random_weights", action="store_true",
                         help="evaluate a randomly initialised model (seed 0): smoke test only, the numbers mean nothing")
    parser.add_argument("--crf_dir", default=str(crf.DEFAULT_CRF_DIR),
                        help="folder with dorf_curves.npz, modern_curves.npz and invemor.txt (default: %(default)s)")
    parser.add_argument("--curve_set", default="dorf", choices=crf.CURVE_SETS,
                        help="test curves: the 10 DoRF test curves or the modern camera / display test curves "
                        "(default: %(default)s)")
    parser.add_argument("--curves", nargs="+", default=None,
                        help="indices into the test curves of --curve_set, e.g. 0,1 (default: all)")
    parser.add_argument("--exposures", nargs="+", default=None,
                        help="exposure stops u (t = 2^u), e.g. --exposures=-3,0,3 or --exposures -3 0 3 "
                        "(default: -3,-2,-1,0,1,2,3)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="side of the square test crops (default: %(default)s)")
    parser.add_argument("--max_images", type=int, default=None, help="use at most this many HDR files (first by name)")
    parser.add_argument("--jpeg_quality", type=int, default=None,
                        help="JPEG-compress the LDRs at this quality, 4:2:0 chroma subsampling (default: no JPEG)")
    parser.add_argument("--batch_size", type=int, default=1, help="LDRs per model call (default: %(default)s)")
    parser.add_argument("--pu21_peak", type=float, default=4000.0,
                        help="cd/m^2 of the reference maximum (or --pu21_percentile) for PU21 (default: %(default)s)")
    parser.add_argument("--pu21_percentile", type=float, default=100.0,
                        help="percentile of the reference mapped to --pu21_peak (default: %(default)s, the maximum)")
    parser.add_argument("--no_oracle_curve", dest="oracle_curve", action="store_false",
                        help="skip the row of the model given the true inverse curve (saves one of two model calls "
                        "per image)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="compute dtype of the networks; auto picks bfloat16 only on a CPU with AMX or "
                        "AVX512-BF16 or a bfloat16 GPU; logged and written to the report (default: %(default)s)")
    parser.add_argument("--real_stack", default=None, metavar="DIR",
                        help="run the real-camera protocol instead: DIR holds photos and exposures.tsv, or "
                        "sub-folders that do (e.g. ../shared/data/real)")
    parser.add_argument("--long_side", type=int, default=stack_lib.DEFAULT_LONG_SIDE,
                        help="with --real_stack: downscale the photos to this long side (default: %(default)s)")
    parser.add_argument("--native", action="store_true",
                        help="run the native-resolution highlight protocol instead: every scene of --hdr_dir whole, at "
                        "its own size, with 3/10/25 %% of its pixels clipped, the --curve_set test curves and JPEG "
                        "85/90/95 (or --jpeg_quality), reconstructed as predict does; PU21 and the highlight-fidelity "
                        "figures inside the clipped regions, beside inverse sRGB and the model given each render's "
                        "true curve (docs/evaluate.md)")
    parser.add_argument("--sheet", default=None, metavar="PNG",
                        help="with --native: write a contact sheet of the worst crops here (photo, model, truth, "
                        "3 stops darker)")
    parser.add_argument("--out", default=None, help="write the JSON report here")
    parser.add_argument("--markdown", default=None, help="write the Markdown tables here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no tables on stdout")
    return parser


def run(args):
    """Runs the ``evaluate`` subcommand; returns the process exit code."""
    from hdr_keras.quiet import import_tensorflow

    import_tensorflow()  # first import of TensorFlow: without its C++ start-up noise
    from hdr_keras import pretrained

    try:
        curves = None if args.curves is None else number_list(args.curves, int)
        exposures = DEFAULT_EXPOSURES if args.exposures is None else number_list(args.exposures, float)
    except argparse.ArgumentTypeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.jpeg_quality is not None and not 1 <= args.jpeg_quality <= 100:
        print("error: --jpeg_quality must be in 1..100", file=sys.stderr)
        return 2
    if args.size < 16:
        print("error: --size must be at least 16", file=sys.stderr)
        return 2
    if args.long_side < 64:
        print("error: --long_side must be at least 64", file=sys.stderr)
        return 2
    if args.real_stack is not None:
        try:
            stack_lib.find_stacks(args.real_stack)
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    weights = None
    if not args.random_weights:
        try:
            weights = pretrained.resolve_weights(args.preset, args.weights, random_flag="--random_weights")
        except (FileNotFoundError, pretrained.MissingWeightsError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    import keras

    from hdr_keras import precision

    dtype, dtype_reason = precision.resolve(args.dtype)
    print(f"evaluate: compute dtype {dtype} ({dtype_reason})", file=sys.stderr)
    if args.native:
        return _run_native(args, weights, dtype)
    if args.random_weights:
        keras.utils.set_random_seed(0)
    try:
        with precision.policy_scope(dtype):
            model = pretrained.build_model(args.preset, weights)
    except pretrained.WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    start = time.perf_counter()
    try:
        if args.real_stack is not None:
            result = real.evaluate_real(
                model,
                args.real_stack,
                long_side=args.long_side,
                pu21_peak=args.pu21_peak,
                pu21_percentile=args.pu21_percentile,
                oracle_curve=args.oracle_curve,
                progress=not args.quiet,
            )
        else:
            result = synthetic.evaluate(
                model,
                args.hdr_dir,
                crf_dir=args.crf_dir,
                curve_set=args.curve_set,
                curves=curves,
                exposures=exposures,
                size=args.size,
                jpeg_quality=args.jpeg_quality,
                max_images=args.max_images,
                batch_size=args.batch_size,
                pu21_peak=args.pu21_peak,
                pu21_percentile=args.pu21_percentile,
                oracle_curve=args.oracle_curve,
                progress=not args.quiet,
            )
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = result["config"]
    config.update(
        {
            "preset": args.preset,
            "weights": None if weights is None else str(weights),
            "weights_sha256": None if weights is None else pretrained.sha256(weights),
            "random_weights": bool(args.random_weights),
            "dtype": dtype,
            "dtype_reason": dtype_reason,
            "seconds": round(time.perf_counter() - start, 3),
        }
    )
    if args.real_stack is None:
        config["hdr_dir"] = str(args.hdr_dir)
    # keep the config first in the JSON
    result = {"config": config, **{k: v for k, v in result.items() if k != "config"}}
    text = synthetic.markdown(result) if args.real_stack is None else real.markdown_real(result)
    if args.out:
        write_json(result, args.out)
    if args.markdown:
        path = pathlib.Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not args.quiet:
        print(text)
    return 0


def _run_native(args, weights, dtype):
    """``evaluate --native``: the protocol of :mod:`hdr_keras.evaluate.native` through the engine."""
    from hdr_keras import pretrained
    from hdr_keras.engine import Engine
    from hdr_keras.errors import UsageError

    if weights is None:
        print("error: --native runs the engine, which needs weights: drop --random_weights", file=sys.stderr)
        return 2
    try:
        engine = Engine(args.preset, weights, dtype=dtype)
    except (UsageError, pretrained.WeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    qualities = native.DEFAULT_QUALITIES if args.jpeg_quality is None else (args.jpeg_quality,)
    start = time.perf_counter()
    try:
        result = native.evaluate_native(engine, args.hdr_dir, crf_dir=args.crf_dir, curve_set=args.curve_set,
                                        qualities=qualities, max_images=args.max_images, sheet=args.sheet,
                                        pu21_peak=args.pu21_peak, pu21_percentile=args.pu21_percentile,
                                        oracle_curve=args.oracle_curve,
                                        progress=not args.quiet)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result["config"].update({**engine.describe(), "seconds": round(time.perf_counter() - start, 3)})
    text = native.markdown_native(result)
    if args.out:
        write_json(result, args.out)
    if args.markdown:
        pathlib.Path(args.markdown).write_text(text)
    if not args.quiet:
        print(text)
    return 0


def main(argv=None):
    from hdr_keras import evaluate

    parser = argparse.ArgumentParser(prog="python -m hdr_keras evaluate", description=evaluate.__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
