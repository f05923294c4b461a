"""Epoch output of every ``fit``: labelled with the model it trains.

On a terminal, Keras' progress bars under a ``[label]`` heading; when standard output is
not a terminal (a log file, CI), or with ``quiet``, one line per epoch::

    [teacher] epoch 3/30: loss 1.2345 - val_loss 1.3012 (4.1 s)

Under a command's ``--quiet`` (:func:`pitune_tf.common.console.is_quiet`) neither.

The label names the model: ``teacher`` / ``student`` (PITuning's population stage). UAF's
fits (``pretrain``, each mode) draw one tqdm bar per fit instead:
:class:`nextitnet.fit_progress.FitProgress`.

Long steps that are not Keras fits (:class:`StepProgress`: the TFLite files of
``tflite.convert``, QAT epochs) follow the same rule: a tqdm bar on a terminal, else one
line per step::

    [convert] student_int8.tflite (2/3) ...
    [qat] epoch 1/2: loss 0.4321 (3.2 s)
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from pitune_tf.common.console import is_quiet, keras_bar_open, progress_bars, status
from pitune_tf.common.keras import keras


class EpochLog(keras.callbacks.Callback):
    """Prints one line per finished epoch: ``[label] epoch e/E: name value - ... (s)``.

    Args:
        label: str. The model being trained (``teacher``, ``student``).
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
        status(f"[{self.label}] epoch {epoch + 1}/{self.epochs}: {values} ({seconds:.1f} s)")


class LineProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, telling :mod:`pitune_tf.common.console` while it is mid-line (a
    log record then starts on a new line instead of continuing the bar)."""

    def __init__(self):
        super().__init__(count_mode="steps")

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        keras_bar_open(True)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)  # ends the bar's line
        keras_bar_open(False)


def fit_output(label, epochs, quiet=False):
    """``(verbose, callbacks)`` for ``model.fit``: Keras bars under a ``[label]`` heading
    (printed here) when :func:`progress_bars`, else no Keras output and an :class:`EpochLog`
    (which prints nothing under a command's ``--quiet``)."""
    if progress_bars(quiet):
        status(f"[{label}] training, at most {epochs} epoch{'s' if epochs != 1 else ''}")
        return 1, [LineProgbar()]
    return 0, ([] if is_quiet() else [EpochLog(label, epochs)])


class StepProgress:
    """Progress of ``total`` long steps under a ``[label]``: a tqdm bar when
    :func:`progress_bars` (a terminal, not ``quiet``), else one line per step.

    Args:
        label: str. What runs (``convert``, ``qat``).
        total: int. The number of steps.
        quiet: bool. The command's ``--quiet``: lines, no bar.
    """

    def __init__(self, label, total, quiet=False):
        self.label = label
        self.total = int(total)
        self.index = 0
        self.bar = (tqdm(total=self.total, desc=f"[{label}]", file=sys.stdout, leave=True)
                    if progress_bars(quiet) else None)

    def begin(self, name):
        """A step starts: ``[label] name (i/total) ...`` (on a bar: its postfix)."""
        self.index += 1
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        else:
            status(f"[{self.label}] {name} ({self.index}/{self.total}) ...")

    def end(self, text=None):
        """A step ended; ``text`` (e.g. ``epoch 1/2: loss 0.43 (3.2 s)``) is printed as
        ``[label] text`` (on a bar: its postfix)."""
        if self.bar is not None:
            self.bar.update(1)
            if text:
                self.bar.set_postfix_str(text)
            if self.bar.n >= self.total:
                self.bar.close()
        elif text:
            status(f"[{self.label}] {text}")
