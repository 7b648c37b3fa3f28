"""Renders the README's sample photo with the project's camera model, and its before/after picture.

    python scripts/make_example.py                       # examples/sample.jpg
    python scripts/make_example.py --weights hdr_keras/assets/weights/lite.weights.h5   # + figure

The sample: the middle rows of a CC0 Poly Haven panorama from ``../shared/data/hdr/val``
(``st_fagans_interior_1k.hdr`` by default), normalised to mean 0.5, exposed at +1 stop, through
DoRF test curve 0, 8-bit, JPEG quality 95 (docs/design.md#image-formation). With ``--weights`` it also runs the model
and writes ``examples/before_after.jpg``, top to bottom: the photo; the linearised photo without hallucination,
shown 3 stops darker (clipped areas go flat); the reconstructed HDR shown 3 stops darker.
"""

import pathlib

import numpy as np
from absl import app, flags
from PIL import Image

from hdr_keras import crf, io, paths
from hdr_keras.pretrained import build_model

REPO = pathlib.Path(__file__).resolve().parents[1]
flags.DEFINE_string("hdr", str(paths.DEFAULT_VAL_DIR / "st_fagans_interior_1k.hdr"), "Source HDR (CC0).")
flags.DEFINE_string("crf_dir", str(crf.DEFAULT_CRF_DIR), "Folder of the DoRF curves.")
flags.DEFINE_float("stops", 1.0, "Exposure of the rendering, in stops.")
flags.DEFINE_string("out_dir", str(REPO / "examples"), "Output folder.")
flags.DEFINE_string("weights", None, "Weights for the before/after picture (skipped without).")
FLAGS = flags.FLAGS


def render_sample(hdr):
    """HDR [H, W, 3] -> 8-bit sRGB-like photo uint8 [h, w, 3] of its middle rows."""
    height = hdr.shape[0]
    hdr = hdr[height // 4 : height - height // 4]
    hdr = hdr * (0.5 / hdr.mean()) * 2.0**FLAGS.stops
    forward, _ = crf.test_curves(FLAGS.crf_dir)
    linear = np.minimum(hdr, 1.0)
    ldr = np.stack([np.interp(linear[..., c], crf.GRID, forward[0]) for c in range(3)], axis=-1)
    return (np.floor(255.0 * ldr + 0.5)).astype(np.uint8)


def darken(image, stops, gamma=2.2):
    """Linear image -> uint8 display at ``stops`` (negative darkens), simple gamma."""
    return (np.clip(image * 2.0**stops, 0, 1) ** (1 / gamma) * 255).round().astype(np.uint8)


def main(_):
    out = pathlib.Path(FLAGS.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    photo = render_sample(io.read_hdr(FLAGS.hdr))
    sample = out / "sample.jpg"
    Image.fromarray(photo).save(sample, quality=95)
    print(f"wrote {sample} {photo.shape[1]}x{photo.shape[0]}")
    if FLAGS.weights:
        ldr = io.read_ldr(sample)
        outputs = build_model("lite", FLAGS.weights)(ldr[None], training=False)
        hdr, linear = np.asarray(outputs["hdr"][0]), np.asarray(outputs["linear"][0])
        panels = [(ldr * 255).round().astype(np.uint8), darken(linear, -3), darken(hdr, -3)]
        figure = np.concatenate(panels, axis=0)
        scale = 768 / figure.shape[1]
        image = Image.fromarray(figure).resize((768, round(figure.shape[0] * scale)), Image.LANCZOS)
        image.save(out / "before_after.jpg", quality=90)
        print(f"wrote {out / 'before_after.jpg'}")


if __name__ == "__main__":
    app.run(main)
