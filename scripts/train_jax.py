"""Trains every stage of a preset, then the joint chain, with Keras on JAX, within a time budget.

For accelerator machines that have JAX but no TensorFlow (a TensorFlow wheel is too large to
carry). Same models (:mod:`hdr_keras.models`), tasks and losses (:mod:`hdr_keras.training`),
augmentation (:func:`hdr_keras.data.augment_batch`) and camera model (:mod:`hdr_keras.camera`,
JPEG included, through a host callback) as ``train_stage.py``; the difference: the whole step
runs jitted on the device from a crop cache held in device memory, with no ``tf.data``.

    KERAS_BACKEND=jax python scripts/train_jax.py --crops=crops.npy --curves=curves.npz --out_dir=weights --budget=420

``--crops``: float16 [M, S, S, 3] crops and ``--curves``: ``forward``, ``inverse`` [K, 1024]
(both from ``python scripts/pack_crops.py``). Starts from ``--init_weights`` (a whole-SingleHDR
file) and/or ``--stage_weights_dir`` (``<stage>.weights.h5`` files), loaded strictly
(:mod:`hdr_keras.pretrained`). Writes ``<stage>.weights.h5`` after each task, the whole chain
``single_hdr.weights.h5`` at the end, and ``log.tsv``.
"""

import os
import pathlib
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags  # noqa: E402

from hdr_keras.presets import PRESETS  # noqa: E402

flags.DEFINE_string("crops", None, "Float16 crop cache [M, S, S, 3] (.npy).", required=True)
flags.DEFINE_string("curves", None, "Training curves .npz with forward and inverse [K, 1024].", required=True)
flags.DEFINE_string("out_dir", None, "Folder for the weights files and log.tsv.", required=True)
flags.DEFINE_enum("preset", "lite", sorted(PRESETS), "Model preset (hdr_keras/presets.py).")
flags.DEFINE_float("budget", 420.0, "Seconds of training in all (compilation excluded).")
flags.DEFINE_list("shares", ["deq=0.2", "lin=0.25", "hal=0.3", "joint=0.25"], "Tasks, in order, and their budget shares.")
flags.DEFINE_integer("max_steps", 10**9, "Cap on the steps of each task (for smoke tests).")
flags.DEFINE_integer("batch_size", 16, "Batch size.")
flags.DEFINE_integer("crop", 256, "Training crop side in pixels.")
flags.DEFINE_float("lr", 2e-4, "Adam learning rate of the stage tasks.")
flags.DEFINE_float("joint_lr", 5e-5, "Adam learning rate of the joint task.")
flags.DEFINE_integer("seed", 0, "Seed of the data and the random cameras.")
flags.DEFINE_bool("jpeg", True, "JPEG-compress the synthetic LDRs (as train_stage.py).")
flags.DEFINE_bool("sensor_noise", True, "Add sensor noise to the synthetic exposures.")
flags.DEFINE_float("white_balance_stops", 0.0, "Random white balance of the linear crops (see train_stage.py); 0: off.")
flags.DEFINE_float("saturation_jitter", 0.0, "Random saturation of the linear crops (see train_stage.py); 0: off.")
flags.DEFINE_float("local_tone", 0.0, "In-camera local tone map before the clip (see train_stage.py); 0: off.")
flags.DEFINE_float("display_saturation", 0.0, "In-camera saturation boost after the curve (see train_stage.py); 0: off.")
flags.DEFINE_float("sharpening", 0.0, "In-camera unsharp mask after the curve (see train_stage.py); 0: off.")
flags.DEFINE_string("init_weights", None, "A whole-SingleHDR .weights.h5 file to start from (e.g. the shipped weights).")
flags.DEFINE_string("stage_weights_dir", None, "Folder with <stage>.weights.h5 files to start from (those present).")
FLAGS = flags.FLAGS


def train_task(name, model, crops, camera, steps, budget, lr, log, seed):
    """Trains one task for ``steps`` or ``budget`` seconds, whichever ends first; returns steps done."""
    import jax
    import keras
    import numpy as np

    from hdr_keras import data
    from hdr_keras.training.tasks import TASKS, LossWeights

    task = TASKS[name](model, LossWeights())
    trainable = task.trained.trainable_variables
    ids = {id(v) for v in trainable}
    others = [v for v in model.variables if id(v) not in ids]
    optimizer = keras.optimizers.Adam(lr)
    optimizer.build(trainable)
    batch = FLAGS.batch_size

    def loss_fn(train_values, other_values, key):
        mapping = list(zip(trainable, train_values)) + list(zip(others, other_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            k_pick, k_view, k_cam = jax.random.split(key, 3)
            picks = jax.random.randint(k_pick, (batch,), 0, crops.shape[0])
            hdr = data.augment_batch(
                crops[picks], jax.random.split(k_view, batch), FLAGS.crop,
                white_balance_stops=FLAGS.white_balance_stops, saturation_jitter=FLAGS.saturation_jitter,
            )  # fmt: skip
            losses, _ = task(camera(hdr, k_cam, use_jpeg=FLAGS.jpeg and task.uses_ldr), training=True)
        return losses["loss"], (losses, [scope.get_current_value(v) for v in others])

    @jax.jit
    def step(state, key):
        train_values, other_values, opt_values = state
        (_, (losses, other_values)), grads = jax.value_and_grad(loss_fn, has_aux=True)(train_values, other_values, key)
        train_values, opt_values = optimizer.stateless_apply(opt_values, grads, train_values)
        return (train_values, other_values, opt_values), losses

    state = ([v.value for v in trainable], [v.value for v in others], [v.value for v in optimizer.variables])
    key = jax.random.PRNGKey(seed)
    compile_start = time.time()
    state, losses = step(state, key)
    jax.block_until_ready(losses)
    log(name, 0, time.time() - compile_start, {"compile_seconds": time.time() - compile_start})
    start = time.time()
    done = 1
    while done < steps and time.time() - start < budget:
        key, sub = jax.random.split(key)
        state, losses = step(state, sub)
        done += 1
        if done % 50 == 0:
            jax.block_until_ready(losses)
        if done % 200 == 0:
            values = {k: float(v) for k, v in losses.items()}
            log(name, done, time.time() - start, values)
            if not np.isfinite(values["loss"]):
                raise FloatingPointError(f"{name}: loss {values['loss']} at step {done}")
    for variable, value in zip(trainable, state[0]):
        variable.assign(value)
    for variable, value in zip(others, state[1]):
        variable.assign(value)
    log(name, done, time.time() - start, {k: float(v) for k, v in losses.items()})
    return done


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import jax
    import jax.numpy as jnp
    import numpy as np

    from hdr_keras import camera as camera_lib
    from hdr_keras import pretrained
    from hdr_keras.training.tasks import TASKS, WHOLE_WEIGHTS

    try:
        shares = {k: float(v) for k, v in (item.split("=") for item in FLAGS.shares)}
    except ValueError:
        raise app.UsageError(f"--shares: expected task=share items, got {','.join(FLAGS.shares)}") from None
    unknown = sorted(set(shares) - set(TASKS))
    if unknown:
        raise app.UsageError(f"--shares: unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    out = pathlib.Path(FLAGS.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "log.tsv", "a", buffering=1)

    def log(name, step, seconds, losses):
        line = f"{name}\t{step}\t{seconds:.1f}\t" + "\t".join(f"{k}={v:.5g}" for k, v in sorted(losses.items()))
        print(line, flush=True)
        log_file.write(line + "\n")

    print("devices:", jax.devices(), flush=True)
    crops = jnp.asarray(np.load(FLAGS.crops))
    curves = np.load(FLAGS.curves)
    noise = {} if FLAGS.sensor_noise else {"max_shot_std": 0.0, "max_read_std": 0.0}
    in_camera = {"local_tone": FLAGS.local_tone, "display_saturation": FLAGS.display_saturation, "sharpening": FLAGS.sharpening}
    camera = camera_lib.CameraModel(curves["forward"], curves["inverse"], **noise, **in_camera)
    try:
        model = pretrained.build_model(FLAGS.preset, FLAGS.init_weights)
        for path in pretrained.load_stage_weights(model, FLAGS.stage_weights_dir, FLAGS.preset):
            print("loaded", path, flush=True)
    except (FileNotFoundError, pretrained.WeightsError) as e:
        sys.exit(f"train_jax.py: error: {e}")
    for i, (name, share) in enumerate(shares.items()):
        lr = FLAGS.joint_lr if name == "joint" else FLAGS.lr
        train_task(name, model, crops, camera, FLAGS.max_steps, FLAGS.budget * share, lr, log, FLAGS.seed + i)
        task = TASKS[name](model)
        task.trained.save_weights(out / task.weights_name)
    model.save_weights(out / WHOLE_WEIGHTS)
    print("done", flush=True)


if __name__ == "__main__":
    app.run(main)
