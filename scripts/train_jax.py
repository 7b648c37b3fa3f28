"""Trains every stage of a preset, then the joint chain, with Keras on JAX, within a time budget.

For accelerator machines that have JAX but no TensorFlow (a TensorFlow wheel is too large to
carry). Same models (:mod:`hdr_keras.models`), tasks and losses (:mod:`hdr_keras.training`) and
camera model (:mod:`hdr_keras.camera`) as ``train_stage.py``; differences: the whole step —
augmentation (random scale, crop, rot90, flips) and camera synthesis — runs jitted on the
device from a crop cache held in device memory, and there is no JPEG step (a TensorFlow op).

    KERAS_BACKEND=jax python scripts/train_jax.py --crops crops.npy --out_dir weights --budget 420

``--crops``: float16 [M, S, S, 3] crops (``python scripts/pack_crops.py``). Writes
``<stage>.weights.h5`` after each stage, ``single_hdr.weights.h5`` and ``log.tsv``.
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from hdr_keras import camera as camera_lib  # noqa: E402
from hdr_keras.models import SingleHDR  # noqa: E402
from hdr_keras.training.tasks import TASKS, LossWeights  # noqa: E402


def augment(crops, size):
    """Random scale U(0.5, 2) (at least enough to fill ``size``), crop, rot90 and flips of cached crops."""
    source = crops.shape[1]
    count = crops.shape[0]

    def one(key):
        k_pick, k_scale, k_x, k_y, k_rot, k_flip = jax.random.split(key, 6)
        image = crops[jax.random.randint(k_pick, (), 0, count)].astype(jnp.float32)
        low = max(0.5, size / source)
        scale = jax.random.uniform(k_scale, (), minval=low, maxval=max(2.0, low))
        span = size - source * scale
        shift = jnp.stack([jax.random.uniform(k_y, (), minval=span, maxval=0.0), jax.random.uniform(k_x, (), minval=span, maxval=0.0)])
        image = jax.image.scale_and_translate(
            image, (size, size, 3), (0, 1), jnp.stack([scale, scale]), shift, method="linear", antialias=True
        )
        image = jax.lax.switch(jax.random.randint(k_rot, (), 0, 4), [lambda x, k=k: jnp.rot90(x, k) for k in range(4)], image)
        flips = jax.random.bernoulli(k_flip, 0.5, (2,))
        image = jnp.where(flips[0], image[:, ::-1], image)
        image = jnp.where(flips[1], image[::-1], image)
        return jnp.maximum(image, 0.0)

    return one


def train_task(name, model, crops, camera, steps, budget, batch, size, lr, log, seed):
    """Trains one task for ``steps`` or ``budget`` seconds, whichever ends first; returns steps done."""
    task = TASKS[name](model, LossWeights())
    trainable = task.trained.trainable_variables
    ids = {id(v) for v in trainable}
    others = [v for v in model.variables if id(v) not in ids]
    optimizer = keras.optimizers.Adam(lr)
    optimizer.build(trainable)
    views = jax.vmap(augment(crops, size))

    def loss_fn(train_values, other_values, key):
        mapping = list(zip(trainable, train_values)) + list(zip(others, other_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            k_data, k_cam = jax.random.split(key)
            hdr = views(jax.random.split(k_data, batch))
            batch_data = camera(hdr, k_cam, use_jpeg=False)
            losses, _ = task(batch_data, training=True)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", required=True, help="float16 crop cache [M, S, S, 3] (.npy)")
    parser.add_argument("--curves", required=True, help="training curves .npz with forward and inverse [K, 1024]")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds of training in all (compilation excluded)")
    parser.add_argument("--shares", default="deq=0.2,lin=0.25,hal=0.3,joint=0.25", help="budget share per task")
    parser.add_argument("--max_steps", type=int, default=10**9, help="cap per task (for smoke tests)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--joint_lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init_weights", help="whole-SingleHDR .weights.h5 to start from (e.g. the shipped weights)")
    parser.add_argument("--init_dir", help="folder of <stage>.weights.h5 files to start from (those present)")
    args = parser.parse_args()

    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "log.tsv", "a", buffering=1)

    def log(name, step, seconds, losses):
        line = f"{name}\t{step}\t{seconds:.1f}\t" + "\t".join(f"{k}={v:.5g}" for k, v in sorted(losses.items()))
        print(line, flush=True)
        log_file.write(line + "\n")

    print("devices:", jax.devices(), flush=True)
    crops = jnp.asarray(np.load(args.crops))
    curves = np.load(args.curves)
    camera = camera_lib.CameraModel(curves["forward"], curves["inverse"])
    model = SingleHDR.from_preset(args.preset)
    model(np.zeros((1, 64, 64, 3), np.float32))
    if args.init_weights:
        model.load_weights(args.init_weights)
    for name in ("dequantization", "linearization", "hallucination", "refinement"):
        path = pathlib.Path(args.init_dir or "") / f"{name}.weights.h5"
        if args.init_dir and path.is_file():
            getattr(model, name).load_weights(path)
            print("loaded", path, flush=True)
    shares = dict((k, float(v)) for k, v in (item.split("=") for item in args.shares.split(",")))
    for i, (name, share) in enumerate(shares.items()):
        lr = args.joint_lr if name == "joint" else args.lr
        train_task(name, model, crops, camera, args.max_steps, args.budget * share, args.batch_size, args.crop, lr, log, args.seed + i)
        task = TASKS[name](model)
        task.trained.save_weights(out / task.weights_name)
    print("done", flush=True)


if __name__ == "__main__":
    main()
