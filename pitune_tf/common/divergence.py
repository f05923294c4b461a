"""Diverged training: stopped with one error, its last good checkpoint kept, and resumed
with a lower learning rate.

A loss that becomes NaN or infinite (a learning rate too high for the data) would otherwise
train on for every remaining epoch, keep a NaN "best" epoch, save NaN weights and fail in the
evaluation with a traceback. Instead:

- :class:`DivergenceGuard`, first in a fit's callbacks, raises :class:`TrainingDiverged` (a
  :class:`~pitune_tf.common.errors.UserInputError`: one ``error:`` line, exit status 2) at
  the first non-finite loss, before any later callback (best epoch, checkpoint) sees the
  diverged epoch, and leaves a marker (:data:`DIVERGED_FILE`) in the stage's folder;
- :func:`accept_new_rates`: run again on the same run directory with a lower rate, a run
  that diverged resumes from its last checkpoint with the new rate (the changed rate is the
  only difference from its saved ``config.json`` that is accepted; any other is still "a
  run with a different config"). ``config.json`` then holds the new rates, and
  :data:`RATE_CHANGES` in the run directory keeps every change in order (the old and new rate
  and where the run diverged), so the run's record never loses the rates it trained with.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from pitune_tf.common.atomic import write_json
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.json_files import read_json
from pitune_tf.common.keras import keras

logger = logging.getLogger(__name__)

DIVERGED_FILE = ".diverged.json"  # in the folder of the stage that diverged
RATE_CHANGES = "rate_changes.json"  # in the run directory: [{rates: {key: [old, new]}, diverged: [...]}]


class TrainingDiverged(UserInputError):
    """A training loss became NaN or infinite; the run keeps its last finished epoch."""


class DivergenceGuard(keras.callbacks.Callback):
    """Stops a fit with :class:`TrainingDiverged` when a loss (every log whose name holds
    ``loss``, validation losses too) is NaN or infinite: at the end of each epoch, and every
    ``check_every`` training steps (the logs are the epoch's running means, so a NaN in any
    earlier step of the epoch shows). Put it first in the callback list: no later callback
    of the diverged epoch runs, so neither its weights nor a "best epoch" are saved.

    Args:
        stage: str. What trains, for the message (``"teacher"``, ``"UAF soft"``).
        rate_option: str. The option that sets its learning rate
            (``"--teacher-learning-rate"``).
        folder: str or Path. The stage's folder: :data:`DIVERGED_FILE` is written there.
        check_every: int. Steps between two checks within an epoch.
    """

    _supports_tf_logs = True  # the logs stay tensors but every check_every-th step

    def __init__(self, stage, rate_option, folder, check_every=50):
        super().__init__()
        self.stage = stage
        self.rate_option = rate_option
        self.folder = Path(folder)
        self.check_every = int(check_every)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.check_every == 0:
            self._check(logs, f"epoch {self.epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"epoch {epoch + 1}")

    def _check(self, logs, where):
        for name, value in (logs or {}).items():
            if "loss" not in name:
                continue
            value = float(value)
            if math.isfinite(value):
                continue
            rate = float(keras.backend.get_value(self.model.optimizer.learning_rate))
            kept = (f"the run keeps epoch {self.epoch}: run the same command with a lower "
                    f"{self.rate_option} to resume from there" if self.epoch else
                    f"no epoch was finished: run the same command with a lower "
                    f"{self.rate_option}")
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json(self.folder / DIVERGED_FILE, {"stage": self.stage, "epoch": self.epoch + 1,
                                                     "loss": name, "learning_rate": rate})
            raise TrainingDiverged(
                f"{self.stage} training diverged in {where}: {name} is {value} (learning rate "
                f"{rate:g}); {kept}")


def diverged(out_dir) -> bool:
    """Whether a stage of the run in ``out_dir`` stopped on a diverged loss."""
    out_dir = Path(out_dir)
    return out_dir.is_dir() and any(out_dir.rglob(DIVERGED_FILE))


def _differences(saved, record, path=()) -> list:
    """The key paths where two JSON values differ."""
    if isinstance(saved, dict) and isinstance(record, dict):
        return [p for key in sorted(set(saved) | set(record), key=str)
                for p in _differences(saved.get(key), record.get(key), (*path, key))]
    return [] if saved == record else [path]


def accept_new_rates(out_dir, record, rate_keys) -> dict:
    """When ``out_dir`` holds a run that diverged (:func:`diverged`) and its ``config.json``
    differs from ``record`` (the new run's, as JSON) only in ``rate_keys`` (config keys,
    e.g. ``("teacher_learning_rate", "student_learning_rate")``): rewrites ``config.json``
    as ``record``, so that the run resumes from its checkpoints with the new rates, and
    removes the markers. Otherwise nothing changes (the run directory's own rules apply).

    Returns:
        ``{key: (old value, new value)}`` of the rates changed ({} when nothing changed).
    """
    out_dir = Path(out_dir)
    config_path = out_dir / "config.json"
    if not config_path.is_file() or not diverged(out_dir):
        return {}
    try:
        saved = read_json(config_path)
    except (OSError, UserInputError):
        return {}
    record = json.loads(json.dumps(record))
    changed = _differences(saved, record)
    if not changed or any(not p or p[-1] not in rate_keys for p in changed):
        return {}
    rates = {p[-1]: (_get(saved, p), _get(record, p)) for p in changed}
    markers = sorted(out_dir.rglob(DIVERGED_FILE))
    where = []
    for marker in markers:
        try:
            found = read_json(marker)
        except (OSError, UserInputError):
            found = {}
        where.append({"folder": str(marker.parent.relative_to(out_dir)),
                      **(found if isinstance(found, dict) else {})})
    history_path = out_dir / RATE_CHANGES
    try:
        history = read_json(history_path, kind=list) if history_path.is_file() else []
    except (OSError, UserInputError) as err:  # damaged: kept aside, never overwritten
        aside = history_path.with_name(f"{RATE_CHANGES}.damaged")
        history_path.replace(aside)
        logger.warning("%s (kept as %s); the rate changes start a new record", err, aside)
        history = []
    write_json(config_path, record)
    write_json(history_path, [*history, {"rates": {k: list(v) for k, v in rates.items()}, "diverged": where}])
    for marker in markers:
        marker.unlink()
    return rates


def _get(value, path):
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value
