"""The fit of a UAF stage (pretraining, a fine-tuned mode): the resumable fit over
:class:`~nextitnet.epoch_batches.EpochBatches`, with the stage's progress output and
validation monitor."""

from __future__ import annotations

from pathlib import Path

from nextitnet.epoch_batches import EpochBatches
from nextitnet.fit_progress import FitProgress
from pitune_tf.common.resumable_fit import resumable_fit

EPOCH_LOGS = "epoch_logs.json"  # in the stage's folder: every epoch's training logs


def fit_stage(model, arrays, batch_size, seed, epochs, stage, callbacks=(), verbose="auto",
              monitor=None) -> dict:
    """``model.fit`` for ``epochs`` epochs over :class:`EpochBatches` of ``arrays``
    (:func:`pitune_tf.common.resumable_fit.resumable_fit`).

    The fit's checkpoint is kept in ``stage/backup`` after every epoch (fault points
    ``uaf_<stage>_epoch:N``), so an interrupted fit restarts from its last finished epoch;
    the folder is removed when the fit ends. ``callbacks`` run at each epoch's end after the
    divergence guard, then the ``monitor`` (``ValidationMonitor``), then the checkpoint.
    The model's compiled learning rate, not the checkpoint's, is used after a restore. With
    a ``monitor`` that is already ``done`` (finished or stopped early in an earlier
    process), nothing is fitted. Output (:class:`nextitnet.fit_progress.FitProgress`,
    labelled with the stage folder's name: ``pretrain`` or the mode): ``verbose`` "auto" one
    progress bar on a terminal, 2 one line per epoch, 0 nothing; Keras' own output stays off.

    Returns:
        ``{name: [epoch-mean training value per epoch]}`` of every epoch, resumed ones
        included (kept in ``stage/epoch_logs.json``).
    """
    stage = Path(stage)
    name = stage.name
    batches = EpochBatches(arrays, batch_size, seed)
    _, history = resumable_fit(
        model,
        lambda first: {"x": batches.dataset(first), "steps_per_epoch": batches.steps_per_epoch,
                       "verbose": 0, "callbacks": [FitProgress(name, verbose)]},
        epochs, stage / "backup", f"uaf_{name}", (f"UAF {name}", "--learning-rate", stage),
        best=monitor, done=monitor is not None and monitor.done, callbacks=callbacks,
        history_path=stage / EPOCH_LOGS)
    if monitor is not None and not monitor.state.get("finished"):
        monitor.finish()
    history.pop("epoch")
    return history
