"""Per-epoch checkpoints of a resumable fit (:mod:`pitune_tf.common.resumable_fit`)."""

from __future__ import annotations

from pitune_tf.common.atomic import write_json
from pitune_tf.common.fault import fault_point
from pitune_tf.common.keras import keras


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves model + optimizer after every epoch and records the completed epoch count
    (fault points ``<phase>_checkpoint:N``, then ``<phase>_epoch:N``).

    Args:
        manager: tf.train.CheckpointManager. Saves with the completed epoch count as number.
        state_path: path of ``state.json`` (``{"phase": ..., "epoch": ...}``).
        phase: str. What trains: ``"teacher"``, ``"student"``, ``"uaf_soft"``.
    """

    def __init__(self, manager, state_path, phase):
        super().__init__()
        self.manager = manager
        self.state_path = state_path
        self.phase = phase

    def on_epoch_end(self, epoch, logs=None):
        self.manager.save(checkpoint_number=epoch + 1)
        fault_point(f"{self.phase}_checkpoint:{epoch + 1}")
        write_json(self.state_path, {"phase": self.phase, "epoch": epoch + 1})
        fault_point(f"{self.phase}_epoch:{epoch + 1}")
