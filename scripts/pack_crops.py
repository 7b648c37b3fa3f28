"""Packs a compact training set for a remote accelerator: a float16 crop cache and the curve tables.

    python scripts/pack_crops.py --data_dir ../shared/data/hdr/train --crop_size 288 --out_dir .devdata

Writes ``crops.npy`` (float16 [M, S, S, 3], see :func:`hdr_keras.data.load_crops`) and
``curves.npz`` (``forward``, ``inverse``: the training curve tables of :func:`hdr_keras.crf.training_curves`).
"""

import pathlib

import numpy as np
from absl import app, flags

from hdr_keras import crf, data, paths

flags.DEFINE_string("data_dir", str(paths.DEFAULT_TRAIN_DIR), "Folder of training HDRs.")
flags.DEFINE_string("crf_dir", str(crf.DEFAULT_CRF_DIR), "Folder of the curve tables.")
flags.DEFINE_integer("crop_size", 288, "Side of the cached crops.")
flags.DEFINE_integer("crops_per_image", 2, "Crops per image.")
flags.DEFINE_list("curve_sets", list(crf.CURVE_SETS), "Training curve sets (dorf, modern).")
flags.DEFINE_integer("modern_repeat", 3, "How often the modern training curves are listed.")
flags.DEFINE_integer("num_emor_curves", 0, "Random EMoR mixtures added to the training curves.")
flags.DEFINE_string("out_dir", ".devdata", "Output folder.")
FLAGS = flags.FLAGS


def main(_):
    out = pathlib.Path(FLAGS.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    crops = data.load_crops(FLAGS.data_dir, out / "cache", FLAGS.crop_size, FLAGS.crops_per_image)
    np.save(out / "crops.npy", crops)
    forward, inverse = crf.training_curves(FLAGS.crf_dir, FLAGS.num_emor_curves, 0, FLAGS.curve_sets, FLAGS.modern_repeat)
    np.savez(out / "curves.npz", forward=forward, inverse=inverse)
    print(f"wrote {out / 'crops.npy'} {crops.shape} and {out / 'curves.npz'} {forward.shape}")


if __name__ == "__main__":
    app.run(main)
