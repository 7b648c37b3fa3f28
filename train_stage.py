"""Trains one stage of SingleHDR on synthetic LDR/HDR pairs (DESIGN §5).

    python train_stage.py --stage=deq --model_dir=runs/lite/deq --steps=20000
    python train_stage.py --stage=lin --model_dir=runs/lite/lin
    python train_stage.py --stage=hal --model_dir=runs/lite/hal
    python train_stage.py --stage=ref --model_dir=runs/lite/ref --stage_weights_dir=runs/lite/weights

Each stage trains on its ground-truth input (deq: the LDR; lin: the pre-quantisation image;
hal: the clipped linear image; ref: the frozen chain's outputs). The trained network's weights go
to ``model_dir/{dequantization,linearization,hallucination,refinement}.weights.h5``, the whole chain
(other stages as loaded) to ``model_dir/single_hdr.weights.h5`` for ``predict``/``evaluate --weights``.
Run again with the same ``--model_dir`` to resume. Every flag: ``--helpshort``; with absl's own: ``--helpfull``.
"""

from absl import app, flags, logging

from hdr_keras.training import flags as training_flags
from hdr_keras.training import run

flags.DEFINE_enum("stage", None, ["deq", "lin", "hal", "ref"], "Which stage to train.")
flags.mark_flag_as_required("stage")
training_flags.define_common_flags(default_steps=20000, default_lr=1e-4)
flags.adopt_module_key_flags(training_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.info("training stage %s", FLAGS.stage)
    run.run(FLAGS.stage, FLAGS)


if __name__ == "__main__":
    app.run(main)
