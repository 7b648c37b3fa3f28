"""Trains one stage of SingleHDR on synthetic LDR/HDR pairs (docs/design.md#training).

    python train_stage.py --stage=deq --model_dir=runs/lite/deq --steps=20000
    python train_stage.py --stage=lin --model_dir=runs/lite/lin
    python train_stage.py --stage=hal --model_dir=runs/lite/hal
    python train_stage.py --stage=ref --model_dir=runs/lite/ref --stage_weights_dir=runs/lite/weights
    python train_stage.py --stage=ref --model_dir=runs/lite/ref --init_weights=runs/lite/joint/single_hdr.weights.h5

Each stage trains on its ground-truth input (deq: the LDR; lin: the pre-quantisation image;
hal: the clipped linear image; ref: the frozen chain's outputs). The trained network's weights go
to ``model_dir/{dequantization,linearization,hallucination,refinement}.weights.h5``, the whole chain
(other stages as loaded) to ``model_dir/single_hdr.weights.h5`` for ``predict``/``evaluate --weights``.
Run again with the same ``--model_dir`` to resume. Every flag: ``--helpshort``; with absl's own: ``--helpfull``.
"""

import sys

from absl import app, flags, logging

from hdr_keras.quiet import import_tensorflow
from hdr_keras.training import flags as training_flags

flags.DEFINE_enum("stage", None, ["deq", "lin", "hal", "ref"], "Which stage to train.")
flags.mark_flag_as_required("stage")
training_flags.define_common_flags(default_steps=20000, default_lr=1e-4)
flags.adopt_module_key_flags(training_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import_tensorflow(min_log_level=3)  # before the training modules import it: no C++ log noise
    from hdr_keras import pretrained
    from hdr_keras.training import checkpoints, run

    logging.info("training stage %s", FLAGS.stage)
    try:
        run.run(FLAGS.stage, FLAGS)
    except (checkpoints.CheckpointError, pretrained.WeightsError, run.ModelDirInUse, FileNotFoundError) as e:
        sys.exit(f"train_stage.py: error: {e}")
    except KeyboardInterrupt:  # SIGINT/SIGTERM: the loop saved and logged a checkpoint
        sys.exit(130)


if __name__ == "__main__":
    app.run(main)
