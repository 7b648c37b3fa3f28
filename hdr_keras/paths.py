"""Default data locations: the defaults of the data flags (``--crf_dir``, ``--data_dir``, ``--val_dir``,
``--hdr_dir``).

The data root holds ``crf/`` (EMoR tables, DoRF curves) and ``hdr/train``, ``hdr/val`` (HDR photos).
It is ``$HDR_KERAS_DATA`` when that is set; else ``../shared/data`` beside the repository when the
package runs from a checkout (an editable install included); else, for an installed copy,
``../shared/data`` from the current directory.
"""

import os
import pathlib

DATA_ENV = "HDR_KERAS_DATA"
"""Environment variable naming the data root."""


def _data_root():
    if os.environ.get(DATA_ENV):
        return pathlib.Path(os.environ[DATA_ENV]).expanduser().resolve()
    repository = pathlib.Path(__file__).resolve().parents[1]
    if (repository / "pyproject.toml").is_file():
        return repository.parent / "shared" / "data"
    return pathlib.Path.cwd().parent / "shared" / "data"


SHARED_DATA = _data_root()
DEFAULT_CRF_DIR = SHARED_DATA / "crf"
DEFAULT_TRAIN_DIR = SHARED_DATA / "hdr" / "train"
DEFAULT_VAL_DIR = SHARED_DATA / "hdr" / "val"
DEFAULT_CACHE_DIR = pathlib.Path.home() / ".cache" / "hdr_keras"
"""Where training keeps its crop caches (``--cache_dir``)."""

MISSING_HINT = (
    f"pass the folder with its flag, or set {DATA_ENV} to the folder holding crf/ and hdr/train, hdr/val "
    f"(default data root: {SHARED_DATA})"
)
"""What to do when a default data folder is missing; appended to the not-found errors."""
