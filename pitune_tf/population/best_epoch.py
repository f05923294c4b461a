"""Early stopping on a validation loss with the best epoch's weights kept, checkpointed so that
a resumed population run stops, and restores, exactly where an uninterrupted one would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pitune_tf.common.atomic import write_json
from pitune_tf.common.fault import fault_point
from pitune_tf.common.keras import keras, tf


class BestEpoch(keras.callbacks.Callback):
    """Keeps the weights of ``network`` at its best epoch by ``monitor`` (lower is better)
    and stops the fit after ``patience`` epochs without improvement (0: never stops early).

    The best weights live in ``directory/best-<epoch>`` and the state (best epoch and value,
    whether the phase stopped) in ``directory/best.json``, written after the weights, so an
    interrupted phase resumes with the same state. Put it before the epoch checkpoint in the
    callback list. :meth:`restore` puts the best weights back into ``network``.

    Args:
        network: keras.Model. The model whose weights are kept (the teacher, the student).
        monitor: str. A validation log name, e.g. ``"val_intent_loss"``.
        patience: int. Epochs without a lower ``monitor`` before stopping; 0 = never.
        directory: Path. The phase's checkpoint folder.
    """

    def __init__(self, network, monitor, patience, directory):
        super().__init__()
        self.network = network
        self.monitor = monitor
        self.patience = int(patience)
        self.directory = Path(directory)
        self.state_path = self.directory / "best.json"
        self.state = (json.loads(self.state_path.read_text()) if self.state_path.is_file()
                      else {"epoch": 0, "value": None, "stopped": False})

    @property
    def stopped(self) -> bool:
        return bool(self.state["stopped"])

    def _weights_prefix(self, epoch) -> str:
        return str(self.directory / f"best-{epoch}" / "weights")

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value, done = float(value), epoch + 1
        previous = self.state["epoch"]
        if self.state["value"] is None or value < self.state["value"]:
            tf.train.Checkpoint(network=self.network).write(self._weights_prefix(done))
            fault_point(f"{self.directory.name}_best:{done}")
            self.state.update(epoch=done, value=value)
        elif self.patience and done - previous >= self.patience:
            self.state["stopped"] = True
            self.model.stop_training = True
        write_json(self.state_path, self.state)
        if self.state["epoch"] != previous and previous:  # the older best is no longer needed
            shutil.rmtree(self.directory / f"best-{previous}", ignore_errors=True)

    def restore(self) -> int:
        """Loads the best epoch's weights into ``network``; returns that epoch (0: none kept,
        the weights stay those of the last epoch)."""
        if self.state["epoch"]:
            tf.train.Checkpoint(network=self.network).read(
                self._weights_prefix(self.state["epoch"])).expect_partial()
        return int(self.state["epoch"])
