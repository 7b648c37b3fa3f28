"""Writes hdr_keras/assets/invemor_k11.npy: g0 and the first 11 inverse EMoR basis vectors.

Provenance: `invemor.txt` of the EMoR model (Grossberg & Nayar 2003, Columbia CAVE), as laid in
`../shared/data/crf`. Output: float32 [12, 1024]; row 0 is g0, rows 1..11 are hinv(1..11).

    python scripts/make_emor_asset.py --crf_dir ../shared/data/crf
"""

import pathlib

import numpy as np
from absl import app, flags

from hdr_keras import crf

flags.DEFINE_string("crf_dir", str(crf.DEFAULT_CRF_DIR), "Folder holding invemor.txt.")
FLAGS = flags.FLAGS


def main(_):
    emor = crf.load_emor(FLAGS.crf_dir, inverse=True)
    table = np.concatenate([emor.mean[None], emor.basis[: crf.NUM_BASIS]]).astype(np.float32)
    out = pathlib.Path(crf.__file__).parent / "assets" / "invemor_k11.npy"
    np.save(out, table)
    print(f"wrote {out} {table.shape}")


if __name__ == "__main__":
    app.run(main)
