"""tf.distribute for the training loops: choosing the strategy, the chief, and splitting each
global batch across the replicas.

``auto`` picks MultiWorkerMirroredStrategy when ``TF_CONFIG`` names a cluster (one process
per worker: ``python -m trainers.launch`` on one machine, one ``TF_CONFIG`` per machine on
several), MirroredStrategy when more than one GPU is visible, and the default (one-device)
strategy otherwise. Training code runs under ``strategy.scope()`` and builds its datasets
with the *global* batch size; :func:`distribute` hands replica ``k`` of ``R`` rows
``[k n / R, (k + 1) n / R)`` of every global batch of ``n`` rows, and
:class:`pitune_tf.common.loss_model.LossModel` weighs each replica's mean loss by its share
of the batch, so the summed gradient is the gradient of the global batch's mean loss, as on
one device. (The command lines list STRATEGIES from :mod:`pitune_tf.common.training_options`,
without TensorFlow.)"""

from __future__ import annotations

import json
import os

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import tf
from pitune_tf.common.training_options import STRATEGIES


def cluster_from_env() -> dict | None:
    """The ``cluster`` of ``TF_CONFIG`` (``{"worker": ["host:port", ...], ...}``), or None
    when the variable is unset or names no cluster; malformed JSON is a UserInputError."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserInputError(f"TF_CONFIG is not valid JSON ({err})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    return cluster if isinstance(cluster, dict) and any(cluster.values()) else None


def make_strategy(name="auto"):
    """The tf.distribute strategy ``name`` (one of STRATEGIES; see the module docstring).

    Create it before any other TensorFlow work of the process (MultiWorkerMirroredStrategy
    configures the runtime's collective ops)."""
    if name not in STRATEGIES:
        raise UserInputError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    if name == "auto":
        if cluster_from_env():
            name = "multiworker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def worker_index(strategy) -> tuple:
    """``(task index, number of workers)`` of this process (``(0, 1)`` on one worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return 0, 1
    spec = resolver.cluster_spec().as_dict()
    n = sum(len(tasks) for kind, tasks in spec.items() if kind in ("chief", "worker"))
    offset = len(spec.get("chief", [])) if resolver.task_type == "worker" else 0
    return offset + int(resolver.task_id or 0), max(n, 1)


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: the ``chief`` task, else worker 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    return (resolver.task_type == "worker" and int(resolver.task_id or 0) == 0
            and "chief" not in resolver.cluster_spec().as_dict())


def barrier(strategy) -> None:
    """Returns once every worker of the strategy has called it (an all-reduce); a no-op on
    one worker."""
    if worker_index(strategy)[1] > 1:
        strategy.reduce(tf.distribute.ReduceOp.SUM,
                        strategy.run(lambda: tf.ones([])), axis=None)


def replica_slice(element, replica, replicas):
    """Replica ``replica``'s rows of a global batch ``element`` (a nest of tensors with the
    batch first): ``[k n / R, (k + 1) n / R)``; may be empty when ``n < R``."""
    n = tf.shape(tf.nest.flatten(element)[0], out_type=tf.int64)[0]
    start = replica * n // replicas
    stop = (replica + 1) * n // replicas
    return tf.nest.map_structure(lambda t: t[start:stop], element)


def distribute(dataset, strategy=None):
    """``dataset`` (global batches) as the strategy's per-replica batches; unchanged on one
    replica.

    Every worker builds the same global batches; worker ``w`` keeps, of each, the slices of
    its own replicas (replica ids ``w * R_local ... (w + 1) * R_local - 1``), so every replica
    runs the same number of steps."""
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return dataset

    def per_worker(context):
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local
        return _replica_slices(dataset, first, local, replicas)

    return strategy.distribute_datasets_from_function(per_worker)


def worker_batch_size(batch_size, worker, workers) -> int:
    """Worker ``worker``'s rows of a global batch of ``batch_size`` rows split over
    ``workers`` workers: ``[w n / W, (w + 1) n / W)``, as :func:`replica_slice` (they sum to
    ``batch_size``)."""
    return (worker + 1) * batch_size // workers - worker * batch_size // workers


def distribute_worker_batches(make_dataset, strategy=None):
    """Per-worker datasets as the strategy's per-replica batches: each worker reads its own.

    ``make_dataset(worker, workers)`` returns worker ``worker``'s batches (its share of
    each global batch: :func:`worker_batch_size` rows; every worker must give the same
    number of batches); each batch is split across the worker's local replicas as
    :func:`replica_slice` splits a global batch. Unlike :func:`distribute`, no worker reads
    the others' rows. On one replica: ``make_dataset(0, 1)``."""
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return make_dataset(0, 1)

    def per_worker(context):
        local = replicas // context.num_input_pipelines
        dataset = make_dataset(context.input_pipeline_id, context.num_input_pipelines)
        return _replica_slices(dataset, 0, local, local)

    return strategy.distribute_datasets_from_function(per_worker)


def _replica_slices(dataset, first, local, replicas):
    """Each batch of ``dataset`` as ``local`` elements: its replica slices ``first .. first +
    local - 1`` of ``replicas``, without tf.distribute's auto-sharding."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF

    def slices(*element):
        element = element[0] if len(element) == 1 else element
        return tf.data.Dataset.range(first, first + local).map(
            lambda k: replica_slice(element, k, replicas))

    return dataset.flat_map(slices).with_options(options)
