"""Default data locations: ``../shared/data`` beside the repository (each is a flag's default)."""

import pathlib

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_CRF_DIR = SHARED_DATA / "crf"
DEFAULT_TRAIN_DIR = SHARED_DATA / "hdr" / "train"
DEFAULT_VAL_DIR = SHARED_DATA / "hdr" / "val"
