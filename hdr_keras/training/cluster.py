"""Multi-worker training from ``TF_CONFIG``: the strategy, the chief, and where each worker writes.

``TF_CONFIG`` (JSON, set by the cluster for each process) names the cluster and this task::

    {"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}

With more than one task in it, training runs under ``tf.distribute.MultiWorkerMirroredStrategy``:
every worker builds the same model, feeds its share of each global batch and all-reduces the
gradients. The chief (task ``chief``, or ``worker`` 0 when the cluster has none) writes the
checkpoints, TensorBoard events and weights into ``--model_dir``; every other worker writes the
same (the saves run collectives, so all must save) into a temporary folder it removes at the end,
and restores from the chief's checkpoints, so ``--model_dir`` must be storage every worker reads
(``gs://``, NFS). docs/distributed.md.
"""

import contextlib
import json
import os
import shutil
import tempfile

MULTI_WORKER_TYPES = ("chief", "worker")


def tf_config():
    """(cluster {type: [addresses]}, task {"type", "index"}) from ``TF_CONFIG``, or None when unset or one task."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    config = json.loads(text)
    cluster = config.get("cluster", {})
    if sum(len(cluster.get(kind, [])) for kind in MULTI_WORKER_TYPES) < 2:
        return None
    return cluster, config.get("task", {})


def is_chief(strategy):
    """Whether this process writes into ``--model_dir``: the chief of a cluster, or a single host."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def num_workers(strategy):
    """How many processes train together (1 on a single host)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return sum(len(spec.get(kind, [])) for kind in MULTI_WORKER_TYPES)


@contextlib.contextmanager
def write_dir(strategy, model_dir):
    """Yields the folder this process writes its run files into: ``model_dir`` for the chief, else a
    temporary folder (removed on exit)."""
    if is_chief(strategy):
        yield model_dir
        return
    resolver = strategy.cluster_resolver
    folder = tempfile.mkdtemp(prefix=f"hdr_keras-{resolver.task_type}{resolver.task_id}-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
