"""Epoch output of every ``fit``: labelled with the model it trains.

On a terminal, Keras' progress bars under a ``[label]`` heading; with ``--quiet`` (or
when standard output is not a terminal: a log file, CI) one line per epoch::

    [teacher] epoch 3/30: loss 1.2345 - val_loss 1.3012 (4.1 s)

The label names the model: ``teacher`` / ``student`` (PITuning's population stage),
``pretrain`` or the UAF mode (``soft``, ``finetune-all``, ...).
"""

from __future__ import annotations

import os
import sys
import time

from pitune_tf.common.keras import keras


def progress_bars(quiet: bool = False) -> bool:
    """Whether to draw progress bars: not ``quiet`` (nor ``PITUNE_QUIET`` set by a
    command's ``--quiet``) and standard output is a terminal."""
    if quiet or os.environ.get("PITUNE_QUIET", "") not in ("", "0"):
        return False
    return sys.stdout.isatty()


class EpochLog(keras.callbacks.Callback):
    """Prints one line per finished epoch: ``[label] epoch e/E: name value - ... (s)``.

    Args:
        label: str. The model being trained (``teacher``, ``student``, a UAF mode).
        epochs: int. The fit's most epochs.
    """

    def __init__(self, label, epochs):
        super().__init__()
        self.label = label
        self.epochs = epochs
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        values = " - ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items())
        seconds = time.perf_counter() - (self._start or time.perf_counter())
        print(f"[{self.label}] epoch {epoch + 1}/{self.epochs}: {values} ({seconds:.1f} s)",
              flush=True)


def fit_output(label, epochs, quiet=False):
    """``(verbose, callbacks)`` for ``model.fit``: Keras bars under a ``[label]`` heading
    (printed here) when :func:`progress_bars`, else no Keras output and an :class:`EpochLog`."""
    if progress_bars(quiet):
        print(f"[{label}] training, at most {epochs} epochs", flush=True)
        return 1, []
    return 0, [EpochLog(label, epochs)]
