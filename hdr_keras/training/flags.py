"""absl flags shared by ``train_stage.py`` and ``finetune.py``."""

from absl import flags

from hdr_keras import crf, data, paths
from hdr_keras.presets import PRESETS


def define_common_flags(default_steps, default_lr):
    """Defines the data, model, optimisation, distribution and logging flags."""
    flags.DEFINE_enum("preset", "lite", sorted(PRESETS), "Model preset (hdr_keras/presets.py).")
    flags.DEFINE_string("model_dir", None, "Run folder: checkpoints, TensorBoard logs, weights. Reused to resume.")
    flags.mark_flag_as_required("model_dir")
    flags.DEFINE_string("data_dir", str(paths.DEFAULT_TRAIN_DIR), "Folder of training HDRs (.exr, .hdr).")
    flags.DEFINE_string("val_dir", str(paths.DEFAULT_VAL_DIR), "Folder of validation HDRs (.exr, .hdr).")
    flags.DEFINE_string("crf_dir", str(crf.DEFAULT_CRF_DIR), "Folder with invemor.txt, emor.txt, dorf_curves.npz.")
    flags.DEFINE_string("cache_dir", str(data.DEFAULT_CACHE_DIR), "Where the crop caches are kept.")
    flags.DEFINE_integer("batch_size", 8, "Global batch size (split over replicas).")
    flags.DEFINE_integer("crop", 256, "Training crop side in pixels (each net pads to its multiple internally).")
    flags.DEFINE_integer("steps", default_steps, "Total optimisation steps (a resumed run continues up to it).")
    flags.DEFINE_float("lr", default_lr, "Adam learning rate.")
    flags.DEFINE_integer("seed", 0, "Seed of the data sequence and the random cameras.")
    flags.DEFINE_integer("num_emor_curves", 191, "Random EMoR mixture curves added to the 191 DoRF training curves.")
    flags.DEFINE_bool("jpeg", True, "JPEG-compress the synthetic LDRs (quality 90-100).")
    flags.DEFINE_bool("sensor_noise", True, "Add sensor noise to the synthetic exposures (DESIGN §5).")
    flags.DEFINE_bool("mixed_precision", False, "Train with the mixed_float16 policy and loss scaling.")
    flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"], "tf.distribute strategy.")
    flags.DEFINE_string("tpu", "", "TPU address for --strategy=tpu.")
    flags.DEFINE_string("vgg_weights", None, "Keras weights of VGG16(include_top=False) for the perceptual term; "
                        "without it the term is off.")
    flags.DEFINE_string("stage_weights_dir", None, "Folder with <stage>.weights.h5 files to start from "
                        "(dequantization, linearization, hallucination, refinement).")
    flags.DEFINE_string("init_weights", None, "A whole-SingleHDR .weights.h5 file to start from.")
    flags.DEFINE_integer("log_every", 50, "Steps between training scalars.")
    flags.DEFINE_integer("eval_every", 500, "Steps between validation (scalars, images, curve plots).")
    flags.DEFINE_integer("checkpoint_every", 500, "Steps between checkpoints.")
    flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.")
    flags.DEFINE_bool("quiet", False, "No progress bar.")
