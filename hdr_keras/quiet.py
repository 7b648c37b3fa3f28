"""TensorFlow without its C++ start-up noise on the terminal, for the commands and scripts.

TensorFlow 2.21 prints, while its libraries load, the oneDNN banner and "All log messages before
absl::InitializeLog()" through absl, before any log level applies; afterwards
``TF_CPP_MIN_LOG_LEVEL`` keeps its info and warning lines (CPU feature notes) away, and at 3 the
errors grappler logs for optimisations it skips (``remapper failed``). A failing import still raises.
"""

import os
import sys


def import_tensorflow(min_log_level=2):
    """Imports and returns TensorFlow with stderr (file descriptor 2) on /dev/null while it loads.

    Also sets ``TF_CPP_MIN_LOG_LEVEL`` to ``min_log_level`` unless the environment sets it; with
    it set to 0 (all logs, for debugging) nothing is hidden. 2 keeps C++ errors; the training
    scripts pass 3, as grappler logs an optimisation it skips as an error (``remapper failed:
    ... LeakyReluGrad``, harmless: the graph runs unfused), and real failures reach Python as
    exceptions with their message. Call it before anything imports TensorFlow (Keras on the
    TensorFlow backend does).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", str(min_log_level))
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return tensorflow
