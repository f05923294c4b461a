"""The one resumable Keras ``fit`` of the project (PITuning's population phases, UAF's
pretraining and fine-tuning): per-epoch checkpoints, a resume after a crash from the last
finished epoch with the batches an uninterrupted fit would have seen, a divergence guard,
the best-epoch callback and every epoch's logs across resumes."""

from __future__ import annotations

import shutil
from pathlib import Path

from pitune_tf.common.console import status
from pitune_tf.common.divergence import DIVERGED_FILE, DivergenceGuard
from pitune_tf.common.epoch_checkpoint import EpochCheckpoint
from pitune_tf.common.epoch_history import EpochHistory
from pitune_tf.common.keras import keras, tf


def resumable_fit(model, fit_args, epochs, folder, name, guard, *, learning_rate=None,
                  variables=None, best=None, done=False, callbacks=(), history_path=None,
                  keep=False) -> tuple[int, dict]:
    """``model.fit`` over epochs ``first .. epochs - 1``, ``first`` the epochs already in
    ``folder``'s checkpoint (0 without one).

    After each epoch, in this order: the :class:`~pitune_tf.common.divergence.DivergenceGuard`
    (a NaN or infinite loss stops the fit with one error, the last finished epoch kept),
    ``callbacks``, the :class:`~pitune_tf.common.epoch_history.EpochHistory`, ``best``, the
    :class:`~pitune_tf.common.epoch_checkpoint.EpochCheckpoint` of ``model`` and its
    optimizer (``folder/ckpt-N``, ``folder/state.json``; fault points ``<name>_checkpoint:N``,
    ``<name>_epoch:N``), then ``fit_args``' callbacks. The optimizer's learning rate after a restore is
    ``learning_rate``, not the checkpoint's (a diverged fit resumes with a lower one).

    Args:
        model: a compiled keras.Model (a LossModel).
        fit_args: callable ``first -> dict``: the arguments of ``fit`` for epochs
            ``first .. epochs - 1``, made only when there is something to fit: ``x`` (the
            training batches of those epochs back to back), ``steps_per_epoch``, and any of
            ``validation_data``, ``validation_steps``, ``verbose``, ``callbacks``.
        epochs: int. The fit's most epochs.
        folder: Path. The checkpoint folder; removed when the fit ends unless ``keep``.
        name: str. Names the fault points and the checkpoint's state (``teacher``,
            ``uaf_soft``).
        guard: ``(stage, rate option, folder)`` of the DivergenceGuard.
        learning_rate: float or None. None: the optimizer's rate before the restore.
        variables: list or None. The optimizer is built on them before a restore (None: its
            variables are restored when the first step makes them).
        best: BestEpochCallback or None. Stopped (in an earlier process): nothing is fitted.
        done: bool. The fit ended in an earlier process: nothing is fitted.
        callbacks: Keras callbacks (see above).
        history_path: Path of the EpochHistory's file (default ``folder/history.json``).
        keep: bool. Keep ``folder`` (the caller removes it).

    Returns:
        ``(epochs finished, history)``: ``history`` is
        :meth:`~pitune_tf.common.epoch_history.EpochHistory.history`, resumed epochs too.
    """
    folder = Path(folder)
    history = EpochHistory(history_path or folder / "history.json")
    first = 0
    if not done:
        state_path = folder / "state.json"
        if learning_rate is None:
            learning_rate = float(keras.backend.get_value(model.optimizer.learning_rate))
        if variables is not None:
            model.optimizer.build(variables)
        checkpoint = tf.train.Checkpoint(trainer=model, optimizer=model.optimizer)
        manager = tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=1)
        if manager.latest_checkpoint and state_path.exists():
            checkpoint.restore(manager.latest_checkpoint).expect_partial()
            # the checkpoint's own number is the completed epoch count (state.json may lag
            # it when a fit stopped between the two writes)
            first = int(manager.latest_checkpoint.rsplit("-", 1)[1])
            status(f"[{guard[0]}] resuming after epoch {first}/{epochs}")
        model.optimizer.learning_rate = learning_rate
        if first < epochs and not (best is not None and best.stopped):
            args = dict(fit_args(first))
            fitted = model.fit(
                epochs=epochs, initial_epoch=first,
                callbacks=[DivergenceGuard(*guard),  # first: a diverged epoch is not kept
                           *callbacks, history, *([best] if best is not None else []),
                           EpochCheckpoint(manager, state_path, name),
                           *args.pop("callbacks", ())],
                **args)
            first += len(fitted.epoch)
            (Path(guard[2]) / DIVERGED_FILE).unlink(missing_ok=True)  # it trained through
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    logs = history.history(None if done else first)
    return (len(logs["epoch"]) if done else first), logs
