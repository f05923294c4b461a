"""Every epoch's logs of a resumable fit, kept across a resume (what the curves plot)."""

from __future__ import annotations

import json
from pathlib import Path

from pitune_tf.common.atomic import write_json
from pitune_tf.common.keras import keras


class EpochHistory(keras.callbacks.Callback):
    """Records each epoch's logs (training and validation epoch means) in ``path``, keyed by
    the epoch number (1-based), so a resumed phase's history also holds the epochs run before
    the interruption (Keras' ``History`` only knows the current ``fit``). An epoch run again
    after an interruption replaces its entry. Put it before the epoch checkpoint.

    Args:
        path: path of the JSON file (``{"1": {"loss": ..., "val_loss": ...}, ...}``).
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self.epochs = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[str(epoch + 1)] = {k: float(v) for k, v in (logs or {}).items()}
        write_json(self.path, self.epochs)

    def history(self, last_epoch=None) -> dict:
        """``{"epoch": [1, 2, ...], name: [value per epoch]}`` of epochs 1..``last_epoch``
        (None: every epoch recorded; None where an epoch lacks a name)."""
        epochs = sorted(int(e) for e in self.epochs
                        if last_epoch is None or int(e) <= last_epoch)
        names = list(dict.fromkeys(k for e in epochs for k in self.epochs[str(e)]))
        return {"epoch": epochs,
                **{n: [self.epochs[str(e)].get(n) for e in epochs] for n in names}}
