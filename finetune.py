"""Joint fine-tuning of the whole SingleHDR chain (paper eq. 4), optionally with the Refinement-Net.

    python finetune.py --model_dir=runs/lite/joint --stage_weights_dir=runs/lite/weights
    python finetune.py --model_dir=runs/lite/real --init_weights=runs/lite/joint/single_hdr.weights.h5 \\
        --pairs_dir=my_pairs

Starts from stage weights (``--stage_weights_dir`` holding ``dequantization``, ``linearization``,
``hallucination`` [and ``refinement``] ``.weights.h5``) or a whole-model file (``--init_weights``).
On synthetic pairs by default; with ``--pairs_dir`` on real LDR/HDR pairs (each ``*.jpg|*.png``
with a same-stem ``.exr|.hdr``), where only the HDR terms apply, against the real HDR rescaled to
the prediction over well-exposed pixels. Writes ``model_dir/single_hdr.weights.h5``.
"""

import sys

from absl import app, flags

from hdr_keras.quiet import import_tensorflow
from hdr_keras.training import flags as training_flags

training_flags.define_common_flags(default_steps=5000, default_lr=1e-5)
flags.adopt_module_key_flags(training_flags)
flags.DEFINE_float("w_deq", 1.0, "Weight of the dequantization L2.")
flags.DEFINE_float("w_lin", 10.0, "Weight of the linear-image L2.")
flags.DEFINE_float("w_crf", 1.0, "Weight of the inverse-curve L2.")
flags.DEFINE_float("w_hal", 1.0, "Weight of the log-domain HDR L1.")
flags.DEFINE_float("w_perceptual", 0.001, "Weight of the perceptual term (needs --vgg_weights).")
flags.DEFINE_float("w_tv", 0.1, "Weight of the total variation of the log-domain HDR.")
flags.DEFINE_bool("refine", True, "Include the Refinement-Net in the chain.")
flags.DEFINE_string("pairs_dir", None, "Folder of real LDR/HDR pairs; synthetic pairs when unset.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import_tensorflow(min_log_level=3)  # before the training modules import it: no C++ log noise
    from hdr_keras import pretrained
    from hdr_keras.training import checkpoints, run
    from hdr_keras.training.tasks import LossWeights

    weights = LossWeights(
        deq=FLAGS.w_deq, lin=FLAGS.w_lin, crf=FLAGS.w_crf, hal=FLAGS.w_hal, perceptual=FLAGS.w_perceptual, tv=FLAGS.w_tv
    )
    try:
        run.run("joint", FLAGS, loss_weights=weights, refine=FLAGS.refine, pairs_dir=FLAGS.pairs_dir)
    except (checkpoints.CheckpointError, pretrained.WeightsError, run.ModelDirInUse, FileNotFoundError) as e:
        sys.exit(f"finetune.py: error: {e}")
    except KeyboardInterrupt:  # SIGINT/SIGTERM: the loop saved and logged a checkpoint
        sys.exit(130)


if __name__ == "__main__":
    app.run(main)
