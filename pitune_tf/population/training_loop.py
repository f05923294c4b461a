"""The population stage's training loop: the resumable fit
(:func:`pitune_tf.common.resumable_fit.resumable_fit`) over the shared epoch batches, with
TensorBoard scalars and the phase's ``training.json`` record."""

from __future__ import annotations

import json
import math

from pitune_tf.common.atomic import write_json
from pitune_tf.common.batching import epoch_index_dataset
from pitune_tf.common.best_epoch_callback import BestEpochCallback
from pitune_tf.common.best_epoch_rule import BestEpochRule
from pitune_tf.common.console import status
from pitune_tf.common.distribution import (
    distribute,
    distribute_worker_batches,
    worker_batch_size,
    worker_index,
)
from pitune_tf.common.epoch_log import fit_output
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf
from pitune_tf.common.resumable_fit import resumable_fit
from pitune_tf.common.weight_stores import CheckpointWeights
from pitune_tf.population.scalar_logger import ScalarLogger

CHECKPOINTS = ".checkpoints"  # inside the run directory; removed when the run finishes
TRAINING_RECORD = "training.json"  # per phase: epochs run, the epoch kept, early stop
MAX_EPOCH_VAL = 4096  # validation windows scored after each epoch


def epoch_dataset(windows, batch_size, seed, first_epoch, epochs):
    """Training batches of epochs ``first_epoch .. epochs-1`` back to back.

    Epoch e's order is ``stateless_permutation(len(windows), seed, e)``, cut into batches by
    ``index_batches`` (the last one short), made when the epoch starts
    (:func:`~pitune_tf.common.batching.epoch_index_dataset`: nothing is built ahead for the
    later epochs), so a resumed run sees exactly the batches an uninterrupted run would have
    seen. Elements: ``(features dict, labels)``.
    Streamed windows (a ``WindowStream``) bring their own epochs (chunk groups in a
    seeded order, rows permuted within each group: ``WindowStream.epoch_dataset``).
    """
    if hasattr(windows, "epoch_dataset"):
        return windows.epoch_dataset(batch_size, seed, first_epoch, epochs)
    features = {k: tf.constant(v) for k, v in windows.features().items()}
    labels = tf.constant(windows.label)

    def gather(rows):  # rows: int64 [batch]
        return {k: tf.gather(v, rows) for k, v in features.items()}, tf.gather(labels, rows)

    ds = epoch_index_dataset(len(windows), batch_size, seed, first_epoch, epochs)
    return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def is_streamed(windows) -> bool:
    """Whether ``windows`` is a streamed training set (a ``WindowStream``: built chunk by
    chunk, readable by shard) rather than windows in memory."""
    return hasattr(windows, "shard_len")


def worker_steps(stream, batch_size, workers) -> int:
    """Steps per epoch when each of ``workers`` workers reads its own shard of ``stream``
    (``WindowStream.shard_chunks``) in batches of its share of the global batch
    (``worker_batch_size``): the fewest over the workers, so every worker runs the same
    steps. Computed on every worker from the chunk counts alone (no communication).

    What is dropped: a worker whose shard has more than ``steps * its batch`` rows does not
    see, in each epoch, the rows after its first ``steps`` batches in that epoch's seeded
    order (other rows each epoch); global batches then hold ``batch_size`` rows but the
    last, which may be short on the workers whose shard ends there."""
    steps = min(math.ceil(stream.shard_len(w, workers) / worker_batch_size(batch_size, w, workers))
                for w in range(workers))
    if steps == 0:
        raise UserInputError(
            f"a worker's shard of the streamed training windows is empty ({workers} workers): "
            "use fewer workers or smaller chunks (--stream-chunk-events)")
    return steps


def training_input(train, batch_size, seed, first_epoch, epochs, strategy=None):
    """``(dataset, steps per epoch)``: the training batches of epochs ``first_epoch ..
    epochs - 1`` as the strategy's per-replica batches.

    Windows in memory: every worker builds the same global batches (:func:`epoch_dataset`)
    and keeps its replicas' slices (``distribute``). A streamed training set on several
    workers: worker ``w`` of ``W`` reads only its own shard (chunks ``w mod W``, by file
    when there are enough files), in batches of its share of the global batch
    (``worker_batch_size``: the global batch is ``batch_size`` rows, as on one worker), for
    :func:`worker_steps` steps an epoch."""
    strategy = strategy or tf.distribute.get_strategy()
    workers = worker_index(strategy)[1]
    if not is_streamed(train) or workers == 1:
        batches = epoch_dataset(train, batch_size, seed, first_epoch, epochs)
        return distribute(batches, strategy), math.ceil(len(train) / batch_size)
    steps = worker_steps(train, batch_size, workers)
    worker = worker_index(strategy)[0]
    status(f"worker {worker} of {workers}: its shard of {train.shard_len(worker, workers)} "
           f"training windows, {steps} steps an epoch")

    def worker_batches(worker, count):
        return train.epoch_dataset(worker_batch_size(batch_size, worker, count), seed,
                                   first_epoch, epochs, shard_index=worker, shard_count=count,
                                   steps_per_epoch=steps)

    return distribute_worker_batches(worker_batches, strategy), steps


def eval_dataset(windows, batch_size):
    """``windows`` in order, in batches of ``batch_size`` (validation, prediction)."""
    return windows.to_dataset(batch_size, shuffle=False)


def make_optimizer(learning_rate, clipnorm):
    """Adam, with gradient norm clipping when ``clipnorm`` is not 0."""
    kwargs = {"clipnorm": clipnorm} if clipnorm else {}
    return keras.optimizers.Adam(learning_rate, **kwargs)


def best_epoch_callback(network, monitor, patience, directory) -> BestEpochCallback:
    """Early stopping of a phase on the validation loss ``monitor`` (lower is better), the
    best epoch's weights of ``network`` kept in ``directory/best-<epoch>`` and the state in
    ``directory/best.json`` (fault points ``<phase>_best:N``, ``<phase>_scored:N``: the
    folder is named after the phase). Put it before the epoch checkpoint.

    A ``best.json`` written before the rule was shared (``{"epoch", "value", "stopped"}``)
    is read in the rule's form, so a run interrupted then resumes."""
    state_path = directory / "best.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if "stopped" in state:  # a stop happens exactly `patience` epochs after the best one
        write_json(state_path, {
            "best": {"epoch": state["epoch"], "value": state["value"]} if state["epoch"] else None,
            "stopped_epoch": state["epoch"] + patience if state["stopped"] else None})
    return BestEpochCallback(CheckpointWeights(network, directory), BestEpochRule(patience),
                             state_path, directory.name, monitor=monitor)


def fit_phase(trainer, variables, config, phase, epochs, train, val, out_dir, network=None,
              monitor=None) -> dict:
    """``trainer.fit`` with TensorBoard logs, per-epoch checkpoints (resume) and early
    stopping on ``monitor`` with the best epoch's weights of ``network`` restored.

    Args:
        trainer: a compiled LossModel (PopulationTrainer or Distiller).
        variables: the variables its optimizer updates (built before a restore).
        config: PopulationConfig (``batch_size``, ``seed``, ``patience``).
        phase: str. ``"teacher"`` or ``"student"``: names the checkpoint and log folders.
        epochs: int. The phase's most epochs.
        train, val: Windows.
        out_dir: Path of the run directory.
        network: keras.Model or None. The model whose best weights are kept.
        monitor: str or None. The validation loss that picks the best epoch (needs ``val``).

    Returns:
        ``{"epochs": epochs run in all, "best_epoch": the epoch whose weights are kept,
        "stopped_early": bool, "monitor": str, "history": {"epoch": [1, ...], log name:
        [epoch mean per epoch]}}`` (also in ``training.json`` under ``phase``; the history
        holds the epochs run before a resume too).
    """
    ckpt_dir = out_dir / CHECKPOINTS / phase
    best = (best_epoch_callback(network, monitor, config.patience, ckpt_dir)
            if network is not None and monitor and len(val) else None)

    def fit_args(first_epoch):
        verbose, epoch_log = fit_output(phase, epochs)
        subset = val.subsample(MAX_EPOCH_VAL, config.seed)  # per epoch (metrics.json: all)
        # global batches of config.batch_size, split across the replicas under a strategy
        batches, steps = training_input(train, config.batch_size, config.seed, first_epoch,
                                        epochs)
        return {"x": batches, "steps_per_epoch": steps, "verbose": verbose,
                "validation_data": (distribute(eval_dataset(subset, 4 * config.batch_size))
                                    if len(subset) else None),
                "validation_steps": math.ceil(len(subset) / (4 * config.batch_size)) or None,
                "callbacks": [ScalarLogger(out_dir / "logs" / phase), *epoch_log]}

    epochs_run, history = resumable_fit(
        trainer, fit_args, epochs, ckpt_dir, phase, (phase, f"--{phase}-learning-rate", ckpt_dir),
        learning_rate=getattr(config, f"{phase}_learning_rate"), variables=variables, best=best,
        keep=True)
    best_epoch = best.restore() if best is not None else 0
    if best_epoch:
        status(f"[{phase}] keeping epoch {best_epoch} of {epochs_run} ({monitor} "
               f"{best.rule.best_value:.4f})")
    summary = {"epochs": epochs_run, "best_epoch": best_epoch or epochs_run,
               "stopped_early": bool(best is not None and best.stopped), "monitor": monitor,
               "history": history}
    record = out_dir / TRAINING_RECORD
    write_json(record, {**(json.loads(record.read_text()) if record.is_file() else {}),
                        phase: summary})
    return summary
