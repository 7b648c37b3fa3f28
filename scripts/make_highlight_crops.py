"""Before/after crops of filled highlights on a real camera JPEG, for the model card.

    python scripts/make_highlight_crops.py --before old.weights.h5 --after hdr_keras/assets/weights/lite.weights.h5

Runs ``predict``'s procedure (``hdr_keras.engine.Engine``) with two weights files on a real
in-camera JPEG (default: the longest exposure of ``../shared/data/real/venice_canal_handheld``,
Canon EOS REBEL T2i, 1/20 s, about 10 % of its pixels clipped) and writes
``examples/real_highlights.jpg``: for each crop box, left to right, the photo, the ``before``
reconstruction and the ``after`` one, both shown ``--stops`` darker so that the filled highlights
are visible (the photo itself is clipped flat there).
"""

import pathlib

import numpy as np
from absl import app, flags
from PIL import Image

from hdr_keras import io, paths
from hdr_keras.engine import Engine

REPO = pathlib.Path(__file__).resolve().parents[1]
flags.DEFINE_string("photo", str(paths.SHARED_DATA / "real" / "venice_canal_handheld" / "IMG_4211.jpg"), "A real camera JPEG.")
flags.DEFINE_string("before", None, "Weights of the 'before' column (whole SingleHDR).")
flags.DEFINE_string("after", None, "Weights of the 'after' column (whole SingleHDR).")
flags.DEFINE_list("boxes", ["0,440,200,720", "40,60,320,260"], "Crop boxes top,left,bottom,right in pixels.")
flags.DEFINE_float("stops", -2.0, "Exposure of the HDR columns, in stops.")
flags.DEFINE_string("out", str(REPO / "examples" / "real_highlights.jpg"), "Output JPEG.")
flags.mark_flags_as_required(["before", "after"])
FLAGS = flags.FLAGS


def display(linear, stops):
    """Linear RGB -> uint8 sRGB at ``stops``."""
    x = np.clip(linear * 2.0**stops, 0.0, 1.0)
    return np.round(255 * np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)).astype(np.uint8)


def main(_):
    photo = io.read_ldr(FLAGS.photo)
    columns = [np.round(photo * 255).astype(np.uint8)]
    for weights in (FLAGS.before, FLAGS.after):
        hdr = Engine("lite", weights).reconstruct(photo).hdr
        columns.append(display(hdr, FLAGS.stops))
    rows = []
    for box in FLAGS.boxes:
        top, left, bottom, right = (int(v) for v in box.split(","))
        gap = np.full((bottom - top, 8, 3), 255, np.uint8)
        rows.append(np.concatenate(sum([[c[top:bottom, left:right], gap] for c in columns], [])[:-1], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    Image.fromarray(np.concatenate(rows)[:-8]).save(FLAGS.out, quality=92)
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
