"""Seconds of ``hdr-keras calibrate`` on an 18-frame stack of 21 MP JPEGs (issue 26: under 60 s on 2 cores).

Usage (from the repository root)::

    python bench/bench_calibrate.py                 # 18 frames of 5616x3744, 1/3 stop apart
    python bench/bench_calibrate.py --frames 5 --width 2000 --height 1500

Synthesises a static scene (:func:`hdr_keras.stack.synthetic_radiance`), renders it at
``--frames`` exposure times 1/3 stop apart through the sRGB curve
(:func:`hdr_keras.stack.render_stack`), writes the frames as JPEG (quality 92) with EXIF make,
model and exposure time into a temporary folder, then times the calibrate command on that folder
(reading, alignment, every method's held-out fit, the profile write) and prints the seconds and
the command's report. A script that reports numbers, not a test.
"""

import argparse
import fractions
import pathlib
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hdr_keras import __main__ as cli  # noqa: E402
from hdr_keras import crf  # noqa: E402
from hdr_keras import stack as stack_lib  # noqa: E402


def write_stack(folder, frames, width, height, seed=0):
    """Writes ``frames`` JPEGs of one synthetic scene into ``folder``; returns their exposure times."""
    from PIL import Image, TiffImagePlugin

    rng = np.random.default_rng(seed)
    radiance = stack_lib.synthetic_radiance(height, width, rng)
    factors = [8.0 * 2.0 ** ((e - (frames - 1) / 2) / 3) for e in range(frames)]
    times = [fractions.Fraction(k / 4000).limit_denominator(1_000_000) for k in factors]
    forward = crf.invert_curve(crf.srgb_inverse_curve())
    for e, (k, t) in enumerate(zip(factors, times)):
        image = stack_lib.render_stack(radiance, [k], forward)[0]
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D Mark II"
        exif.get_ifd(0x8769)[0x829A] = TiffImagePlugin.IFDRational(t.numerator, t.denominator)
        Image.fromarray(image).save(folder / f"frame_{e:02d}.jpg", quality=92, exif=exif)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=18)
    parser.add_argument("--width", type=int, default=5616)
    parser.add_argument("--height", type=int, default=3744)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp) / "stack"
        folder.mkdir()
        start = time.perf_counter()
        write_stack(folder, args.frames, args.width, args.height)
        print(f"wrote {args.frames} JPEGs of {args.width}x{args.height} in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        status = cli.main(["calibrate", str(folder), "--output", str(pathlib.Path(tmp) / "profile.json")])
        seconds = time.perf_counter() - start
    print(f"calibrate: {seconds:.1f} s for {args.frames} frames of {args.width}x{args.height} (exit {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())
