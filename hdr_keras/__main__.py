"""Command line of hdr_keras: ``python -m hdr_keras COMMAND [options]``, or ``hdr-keras COMMAND [options]`` once installed."""

import argparse
import importlib
import os
import sys

# Subcommands: name -> module exposing add_arguments(parser) and run(args) -> exit status.
# Each module is imported to build the parser, so it must import TensorFlow inside run() only.
COMMANDS = {"predict": "hdr_keras.predict", "evaluate": "hdr_keras.evaluate", "calibrate": "hdr_keras.calibrate", "beam": "hdr_keras.beam"}


def build_parser():
    """The top-level parser with one subparser per entry of COMMANDS."""
    from hdr_keras import __version__

    parser = argparse.ArgumentParser(
        prog="hdr-keras" if os.path.basename(sys.argv[0]) == "hdr-keras" else "python -m hdr_keras",
        description="Single-image HDR reconstruction by reversing the camera pipeline (Liu et al., CVPR 2020).",
        epilog="Run 'python -m hdr_keras COMMAND --help' for the options of a command and their defaults.",
    )
    parser.add_argument("--version", action="version", version=f"hdr_keras {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip()
        sub = commands.add_parser(
            name,
            help=doc.splitlines()[0] if doc else None,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv=None):
    """Parses ``argv`` (default: sys.argv[1:]) and runs the chosen command; returns its exit status."""
    # Keep the libraries' C++ logging off the terminal: TensorFlow's start-up notes, and OpenCV's
    # decoder complaints about bad files (predict reports each failed file itself, on one line).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not hasattr(args, "pipeline_args"):  # only beam takes options it does not define (Beam's)
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown:
        args.pipeline_args = unknown
    return args._run(args)


if __name__ == "__main__":
    sys.exit(main())
