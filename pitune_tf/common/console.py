"""What a command prints while it runs, and what ``--quiet`` leaves.

Three kinds of output:

- the result (the final table, where the outputs went): plain ``print``, always;
- status: the resolved settings, ``windows: ...``, ``[teacher] epoch 3/30: ...``,
  ``[student] keeping epoch 2 ...`` (:func:`status`) and progress bars (tqdm, Keras):
  never under ``--quiet`` (:func:`is_quiet`);
- log records (stderr, :class:`LineStartHandler`) and Python warnings: the project's INFO
  and WARNING lines and Python warnings, not under ``--quiet``; errors always.

Every status line and log record starts on a line of its own: above a tqdm bar
(``tqdm.write``), or after a newline when a Keras progress bar is mid-line
(:func:`keras_bar_open`, kept by ``pitune_tf.common.epoch_log``).

``--quiet`` is process-wide (``PITUNE_QUIET=1`` in the environment, so worker processes
inherit it): a command calls ``set_quiet(args.quiet)`` after parsing;
:func:`pitune_tf.common.cli.run_main` restores the previous state when the command returns.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

from tqdm import tqdm

QUIET_ENV = "PITUNE_QUIET"
# the project's own loggers: INFO normally, ERROR under --quiet
PROJECT_LOGGERS = ("pitune_tf", "nextitnet", "tflite", "trainers")

_keras_bar_open = False
_warning_filters = None  # the filters in force before set_quiet(True)


def is_quiet() -> bool:
    """Whether the command runs with ``--quiet`` (or ``PITUNE_QUIET`` is set)."""
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def progress_bars(quiet: bool = False) -> bool:
    """Whether to draw progress bars: not ``quiet`` (nor a command's ``--quiet``:
    ``PITUNE_QUIET``) and standard output is a terminal."""
    if quiet or is_quiet():
        return False
    return sys.stdout.isatty()


def set_quiet(quiet: bool) -> None:
    """``--quiet`` for this process and the processes it starts: no status lines, no
    progress bars, no INFO or WARNING lines of the project's loggers, no Python warnings;
    errors stay. ``set_quiet(False)`` undoes it."""
    global _warning_filters
    if quiet:
        os.environ[QUIET_ENV] = "1"
        if _warning_filters is None:
            _warning_filters = list(warnings.filters)
        warnings.simplefilter("ignore")
    else:
        os.environ.pop(QUIET_ENV, None)
        if _warning_filters is not None:
            warnings.filters[:] = _warning_filters
            _warning_filters = None
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR if quiet else logging.INFO)


def keras_bar_open(is_open: bool) -> None:
    """A Keras progress bar was drawn mid-line (True) or finished its line (False)."""
    global _keras_bar_open
    _keras_bar_open = bool(is_open)


def write_line(text: str, stream=None) -> None:
    """``text`` on a line of its own on ``stream`` (default standard output): above any tqdm
    bar, after a newline when a Keras bar is mid-line."""
    stream = sys.stdout if stream is None else stream
    if _keras_bar_open:
        stream.write("\n")
        keras_bar_open(False)
    tqdm.write(text, file=stream)
    stream.flush()


def status(text: str) -> None:
    """A status line (settings, data sizes, an epoch's losses): printed unless quiet."""
    if not is_quiet():
        write_line(text)


class LineStartHandler(logging.StreamHandler):
    """A logging handler to standard error (looked up at each record, so redirections
    apply) whose records start on a line of their own (:func:`write_line`)."""

    def __init__(self):
        super().__init__(sys.stderr)

    def emit(self, record):
        try:
            write_line(self.format(record), sys.stderr)
        except Exception:  # noqa: BLE001  (logging's own contract: report, never raise)
            self.handleError(record)
