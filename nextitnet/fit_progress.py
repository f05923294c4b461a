"""What a UAF run prints while it works, by its ``verbose`` setting:

- ``"auto"`` (or 1): on a terminal one tqdm bar per fit (pretraining, each fine-tuned mode),
  log lines above it; elsewhere (a log file, CI) as ``2``;
- ``2``: no bars, one line per epoch::

      [soft] epoch 3/30: loss 3.8438 - validation mrr@5 0.2009 (1.2 s)

- ``0``, or a command's ``--quiet`` (:func:`pitune_tf.common.console.is_quiet`): nothing.

Keras' own progress bars stay off (``fit(verbose=0)``); lines go through
:func:`pitune_tf.common.console.write_line`, so that none lands on a bar.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from pitune_tf.common.console import is_quiet, write_line
from pitune_tf.common.keras import keras


def console(verbose) -> str:
    """``"quiet"`` (``verbose`` 0, or ``--quiet``), ``"lines"`` (2, or standard output is not
    a terminal) or ``"bars"``."""
    if verbose in (0, False) or is_quiet():
        return "quiet"
    if verbose == 2 or not sys.stdout.isatty():
        return "lines"
    return "bars"


def say(text, verbose="auto") -> None:
    """Prints ``text`` on a line of its own (above a progress bar, if one is drawn), unless
    quiet (``verbose`` 0 or ``--quiet``)."""
    if console(verbose) != "quiet":
        write_line(text)


def epochs_text(n) -> str:
    """``1 epoch``, ``30 epochs``."""
    return f"{n} epoch" + ("" if n == 1 else "s")


def epoch_values(logs) -> str:
    """``loss 3.8438 - validation mrr@5 0.2009``: the training loss and the ``val_*``
    scores a :class:`nextitnet.validation_monitor.ValidationMonitor` put in ``logs``."""
    logs = logs or {}
    parts = [f"loss {float(logs['loss']):.4f}"] if "loss" in logs else []
    parts += [f"validation {k[4:]} {float(v):.4f}" for k, v in logs.items() if k.startswith("val_")]
    return " - ".join(parts)


class FitProgress(keras.callbacks.Callback):
    """A fit's progress under ``[label]``: one tqdm bar over every step of the fit (postfix:
    epoch, loss, validation score), or one line per epoch, or nothing (:func:`console`).

    Place it after the callbacks that add to the epoch's ``logs`` (the validation monitor).
    A resumed fit's bar starts at its first remaining epoch; a fit stopped early ends its
    bar where it stopped.

    Args:
        label: str. What is trained (``pretrain``, a UAF mode).
        verbose: ``"auto"``, 1, 2 or 0 (see the module docstring).
    """

    def __init__(self, label, verbose="auto"):
        super().__init__()
        self.label = label
        self.verbose = verbose
        self.bar = None
        self._start = None
        self._last = ""  # the last finished epoch's values
        self._supports_tf_logs = True  # the batch hook only counts: no per-batch conversion

    def _epochs_steps(self):
        return int(self.params.get("epochs") or 1), int(self.params.get("steps") or 1)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        if console(self.verbose) != "bars":
            return
        epochs, steps = self._epochs_steps()
        if self.bar is None:
            self.bar = tqdm(total=epochs * steps, initial=epoch * steps, desc=f"[{self.label}]",
                            unit="step", file=sys.stdout, dynamic_ncols=True, leave=True)
        self.bar.set_postfix_str(f"epoch {epoch + 1}/{epochs}"
                                 + (f"; epoch {epoch}: {self._last}" if self._last else ""))

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        epochs, _ = self._epochs_steps()
        values = self._last = epoch_values(logs)
        if self.bar is not None:
            self.bar.set_postfix_str(f"epoch {epoch + 1}/{epochs}: {values}")
        elif console(self.verbose) == "lines":
            seconds = time.perf_counter() - (self._start or time.perf_counter())
            say(f"[{self.label}] epoch {epoch + 1}/{epochs}: {values} ({seconds:.1f} s)", self.verbose)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.total = self.bar.n  # stopped early: the fit is done all the same
            self.bar.refresh()
            self.bar.close()
            self.bar = None
