"""What the pretraining and fine-tuning stages share: seeding and a resumable ``fit`` over
epoch batches."""

from __future__ import annotations

import shutil
from pathlib import Path

from nextitnet.epoch_batches import EpochBatches
from nextitnet.fit_progress import FitProgress
from pitune_tf.common.divergence import DIVERGED_FILE, DivergenceGuard
from pitune_tf.common.fault import fault_point
from pitune_tf.common.keras import keras, tf


def seed_everything(seed) -> None:
    """Python, NumPy and TF seeds, and deterministic TF ops."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit_resumable(model, arrays, batch_size, seed, epochs, stage, callbacks=(), verbose="auto",
                  monitor=None):
    """``model.fit`` for ``epochs`` epochs over :class:`EpochBatches` of ``arrays``.

    Keras ``BackupAndRestore`` keeps the fit's state in ``stage/backup`` after every epoch,
    so an interrupted fit restarts from its last finished epoch with the batches an
    uninterrupted one would have seen; the folder is removed when the fit completes.
    ``callbacks`` run before the backup at each epoch's end, after a
    :class:`~pitune_tf.common.divergence.DivergenceGuard` (a NaN or infinite loss stops the
    fit with one error, the backup of the last finished epoch kept; the model's compiled
    learning rate, not the backup's, is used from there). With a ``monitor``
    (``ValidationMonitor``, run after ``callbacks``) that is already ``done`` (finished or
    stopped early in an earlier process), nothing is fitted and None is returned; otherwise
    the History. Output (:class:`nextitnet.fit_progress.FitProgress`, labelled with the stage
    folder's name: ``pretrain`` or the mode): ``verbose`` "auto" one progress bar on a
    terminal, 2 one line per epoch, 0 nothing; Keras' own output stays off.
    """
    backup = Path(stage) / "backup"
    if monitor is not None:
        if monitor.done:
            shutil.rmtree(backup, ignore_errors=True)
            return None
        callbacks = [*callbacks, monitor]
    batches = EpochBatches(arrays, batch_size, seed)
    name = Path(stage).name
    rate = float(keras.backend.get_value(model.optimizer.learning_rate))  # the config's

    def set_rate(logs=None):  # after BackupAndRestore put the backup's rate back
        model.optimizer.learning_rate = rate

    history = model.fit(
        batches.dataset(), epochs=epochs, steps_per_epoch=batches.steps_per_epoch, verbose=0,
        callbacks=[batches,
                   # first: a diverged epoch reaches neither the monitor nor the backup
                   DivergenceGuard(f"UAF {name}", "--learning-rate", stage),
                   *callbacks, FitProgress(name, verbose),
                   keras.callbacks.BackupAndRestore(str(backup)),
                   keras.callbacks.LambdaCallback(on_train_begin=set_rate),
                   keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: fault_point(
                       f"uaf_{name}_epoch:{epoch + 1}"))],
    )
    shutil.rmtree(backup, ignore_errors=True)  # BackupAndRestore leaves it empty
    (Path(stage) / DIVERGED_FILE).unlink(missing_ok=True)  # it trained through
    return history
