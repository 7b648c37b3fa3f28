"""absl flags shared by ``train_stage.py`` and ``finetune.py``."""

from absl import flags

from hdr_keras import crf, paths
from hdr_keras.presets import PRESETS


def define_common_flags(default_steps, default_lr):
    """Defines the data, model, optimisation, distribution and logging flags."""
    flags.DEFINE_enum("preset", "lite", sorted(PRESETS), "Model preset (hdr_keras/presets.py).")
    flags.DEFINE_string("model_dir", None, "Run folder: checkpoints, TensorBoard logs, weights. Reused to resume.")
    flags.mark_flag_as_required("model_dir")
    flags.DEFINE_string("data_dir", str(paths.DEFAULT_TRAIN_DIR), "Folder of training HDRs (.exr, .hdr).")
    flags.DEFINE_string("val_dir", str(paths.DEFAULT_VAL_DIR), "Folder of validation HDRs (.exr, .hdr).")
    flags.DEFINE_string("crf_dir", str(crf.DEFAULT_CRF_DIR), "Folder with invemor.txt, emor.txt, dorf_curves.npz.")
    flags.DEFINE_string("cache_dir", str(paths.DEFAULT_CACHE_DIR), "Where the crop caches are kept.")
    flags.DEFINE_integer("batch_size", 8, "Global batch size (split over replicas).")
    flags.DEFINE_integer("crop", 256, "Training crop side in pixels (each net pads to its multiple internally).")
    flags.DEFINE_integer("steps", default_steps, "Total optimisation steps (a resumed run continues up to it).")
    flags.DEFINE_float("lr", default_lr, "Adam learning rate.")
    flags.DEFINE_integer("seed", 0, "Seed of the data sequence and the random cameras.")
    flags.DEFINE_list("curve_sets", list(crf.CURVE_SETS), "Training camera curves: the training split of each set "
                      "(dorf: 191 DoRF curves; modern: 55 modern camera, display and tone curves).")
    flags.DEFINE_integer("modern_repeat", 3, "How often the modern training curves are listed (weight against DoRF's 191).")
    flags.DEFINE_integer("num_emor_curves", 0, "Random EMoR mixture curves added to the training curves.")
    flags.DEFINE_bool(
        "jpeg", True, "JPEG-compress 3 in 4 synthetic LDRs (4:2:0, quality 70-98); lin never does (its input is before quantisation)."
    )
    flags.DEFINE_bool("sensor_noise", True, "Add sensor noise to the synthetic exposures (docs/design.md#image-formation).")
    flags.DEFINE_float("white_balance_stops", 0.0, "Random white balance of the linear crops: R and B gains "
                       "2^U(-w, w) relative to G (e.g. 0.3); 0: off.")
    flags.DEFINE_float("saturation_jitter", 0.0, "Random saturation of the linear crops: blend with the "
                       "luminance by a factor U(1 - s, 1 + s) (e.g. 0.4); 0: off.")
    flags.DEFINE_float("local_tone", 0.0, "In-camera local tone map before the clip: gain (local / mean "
                       "luminance)^-U(0, t), within 2 stops (e.g. 0.3); 0: off.")
    flags.DEFINE_float("display_saturation", 0.0, "In-camera saturation boost after the curve: Y + (1 + U(0, s)) "
                       "(x - Y) (e.g. 0.3); 0: off.")
    flags.DEFINE_float("sharpening", 0.0, "In-camera unsharp mask after the curve, amount U(0, a), Gaussian "
                       "sigma 1 px (e.g. 1.0); 0: off.")
    flags.DEFINE_enum("mixed_precision", "off", ["off", "bfloat16", "float16"],
                      "Compute dtype of the networks (variables and losses stay float32): bfloat16 "
                      "(mixed_bfloat16; fast on AMX / AVX512-BF16 CPUs and recent GPUs) or float16 "
                      "(mixed_float16 with loss scaling).")
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
