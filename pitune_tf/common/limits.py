"""The allowed range of every number a config holds, and the one check that enforces them.

A config (``PopulationConfig``, ``IndividualConfig``, ``UAFConfig``) checks each of its
numbers here when it is made, so that a value a run cannot use (a learning rate of ``inf``, a
seed of -1, a history of 10^30, an ``attention_units`` of floats) is one
:class:`~pitune_tf.common.errors.UserInputError` naming the key and the allowed range, before
a run writes anything:

>>> check_number("teacher_learning_rate", float("inf"), 0, LEARNING_RATE_MAX, low_open=True)
Traceback (most recent call last):
...
pitune_tf.common.errors.UserInputError: teacher_learning_rate must be a number in (0, 1], got inf
"""

from __future__ import annotations

import argparse
import math
import numbers
import os

from pitune_tf.common.errors import UserInputError

SEED_MAX = 2**32 - 1  # NumPy's global seed (keras.utils.set_random_seed) takes [0, 2^32 - 1]
LEARNING_RATE_MAX = 1.0  # Adam moves each weight by about the rate a step: above 1, training
#   diverges (the rates in use are 1e-4 .. 1e-2)
BATCH_SIZE_MAX = 65_536  # windows (rows) per training batch
EPOCHS_MAX = 1_000_000  # most epochs of any phase (early stopping ends most runs far sooner)
WIDTH_MAX = 16_384  # hidden widths, embedding sizes, units (GPT2-XL is 1600 wide)
LAYERS_MAX = 128  # stacked blocks (GPT2-XL has 48)
HISTORY_MAX = 1024  # events per window: the GPT2 backbone's positions (n_positions)
COUNT_MAX = 2**40  # counts of rows, windows, events, users (fits int64 with room to spare)
WORKERS_MAX = 256  # processes of one command (each loads TensorFlow and a model)


def _fmt(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _interval(low, high, low_open=False, high_open=False) -> str:
    if high is None:
        return f"> {_fmt(low)}" if low_open else f">= {_fmt(low)}"
    return (f"in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}"
            f"{')' if high_open else ']'}")


def check_number(name, value, low, high=None, *, whole=False, low_open=False,
                 high_open=False, allow_none=False) -> None:
    """``value`` a finite number (``whole``: an int; never a bool) in ``[low, high]``
    (``high`` None: no upper bound, still finite); else a UserInputError ``"<name> must be a number in [low, high], got <value>"``.

    Args:
        name: str. The config key (or the option) the message names.
        value: the value to check.
        low, high: numbers. The allowed range (``high`` None: no upper bound).
        whole: bool. Only whole numbers (ints) are allowed.
        low_open, high_open: bool. ``low`` / ``high`` itself is not allowed.
        allow_none: bool. None is allowed (a key whose None means "the default").
    """
    if value is None and allow_none:
        return
    kind = "a whole number" if whole else "a number"
    allowed = (numbers.Integral,) if whole else (numbers.Real,)
    ok = isinstance(value, allowed) and not isinstance(value, bool)
    if ok:
        try:  # an int too large for a float (10**400) is out of every range
            number = value if whole else float(value)
        except OverflowError:
            number = math.inf
        ok = ((whole or math.isfinite(number)) and (number > low if low_open else number >= low)
              and (high is None or (number < high if high_open else number <= high)))
    if not ok:
        raise UserInputError(f"{name} must be {kind} {_interval(low, high, low_open, high_open)}, "
                             f"got {_shown(value)}")


def _shown(value) -> str:
    """``repr(value)``, a long one (an int of 400 digits) cut short."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def check_numbers(name, values, low, high=None, *, whole=False, low_open=False,
                  high_open=False, length=None, min_length=1) -> None:
    """``values`` a list (or tuple) of ``length`` (else at least ``min_length``) numbers,
    each as :func:`check_number` allows; else a UserInputError naming the key, the element
    and the allowed range, e.g. ``attention_units must be a list of whole numbers in [1,
    16384], got [16.5, 8] (element 0: 16.5)``."""
    kind = "whole numbers" if whole else "numbers"
    size = f"{length} " if length is not None else ""
    where = f"a list of {size}{kind} {_interval(low, high, low_open, high_open)}"
    if not isinstance(values, (list, tuple)) or (
            len(values) != length if length is not None else len(values) < min_length):
        count = "" if length is not None or min_length < 1 else f" (at least {min_length})"
        raise UserInputError(f"{name} must be {where}{count}, got {_shown(values)}")
    for i, value in enumerate(values):
        try:
            check_number(name, value, low, high, whole=whole, low_open=low_open,
                         high_open=high_open)
        except UserInputError:
            raise UserInputError(f"{name} must be {where}, got {_shown(list(values))} "
                                 f"(element {i}: {_shown(value)})") from None


def whole_number_type(low, high=None):
    """An argparse ``type``: a whole number in ``[low, high]`` (``high`` None: no upper
    bound). Anything else is argparse's error, one ``error:`` line under
    :func:`pitune_tf.common.cli.run_main` (``argument --workers: must be a whole number in
    [1, 256], got 0``)."""
    def whole_number(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be a whole number {_interval(low, high)}, got {_shown(value)}")
        return value

    return whole_number


def check_seed(name, value) -> None:
    """A seed: a whole number in [0, 2^32 - 1] (:data:`SEED_MAX`)."""
    check_number(name, value, 0, SEED_MAX, whole=True)


def check_learning_rate(name, value) -> None:
    """A learning rate: a number in (0, 1] (:data:`LEARNING_RATE_MAX`)."""
    check_number(name, value, 0, LEARNING_RATE_MAX, low_open=True)


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _gib(nbytes) -> str:
    return f"{nbytes / 2**30:,.1f} GiB"


def check_fits_in_memory(what, nbytes, hint) -> None:
    """A UserInputError when ``nbytes`` (an estimate of what ``what`` needs) exceeds this
    machine's physical memory: the run could only fail later, after writing its directory.

    Args:
        what: str. What needs the memory, e.g. ``"the student (128 x 16384)"``.
        nbytes: int. The estimate.
        hint: str. Which settings to lower.
    """
    total = memory_bytes()
    if total is not None and nbytes > total:
        raise UserInputError(f"{what} needs about {_gib(nbytes)} to train, more than this "
                             f"machine's {_gib(total)} of memory: {hint}")


def transformer_training_bytes(layers, width, heads, history, batch_size) -> int:
    """A rough lower bound on the memory a GPT2-style decoder of ``layers`` blocks ``width``
    wide trains in: float32 weights, their gradients and Adam's two moments (12 width^2
    weights a block, 4 copies), and one batch's activations (about 16 width per position and
    heads x history^2 attention weights a block)."""
    weights = 12 * layers * width * width
    activations = batch_size * layers * (16 * history * width + heads * history * history)
    return 4 * (4 * weights + activations)
