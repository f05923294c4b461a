"""The population run directory: writing it (``run_population``) and reading it back
(``load_run``, what the individual stage, ``tflite`` and ``bench`` open).

Layout::

    config.json  vocab.json  teacher/  student.keras  metrics.json  p_out.json
    summaries/{teacher,student}.txt  logs/{teacher,student}/ (TensorBoard)
    training.json  (per phase: epochs run, the kept epoch, the per-epoch history)
    plots/{training_curves,attention_map,intent_distribution,confusion_matrix}.png
    data/individual.parquet   (the individual users' events, when known)
    data/individual_oracle.parquet   (their user oracle, with the embedded synthetic data;
                                      format: pitune_tf.data.intent_oracle)
    .checkpoints/             (while unfinished: per-epoch checkpoints of each phase)

``metrics.json`` is written last: it marks the run finished.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np

from pitune_tf import models  # noqa: F401  (registers the layers student.keras uses)
from pitune_tf.common.atomic import atomic_path, write_json, write_text
from pitune_tf.common.console import status
from pitune_tf.common.divergence import accept_new_rates
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras
from pitune_tf.common.output_set import output_set
from pitune_tf.common.run_files import RunFiles
from pitune_tf.common.run_replacement import prepare_run_dir
from pitune_tf.data.intent_oracle import write_oracles
from pitune_tf.data.io import write_events
from pitune_tf.data.schema import Schema, merge_schema
from pitune_tf.data.vocabularies import Vocabularies
from pitune_tf.models.teacher_io import load_teacher
from pitune_tf.population.population_config import PopulationConfig
from pitune_tf.population.training_loop import CHECKPOINTS

REQUIRED = ("config.json", "vocab.json", "student.keras", "p_out.json")


# ----------------------------------------------------------------------------- reader


class Run:
    """A finished population run: ``config``, ``vocabs``, ``student``, lazy ``teacher``,
    ``p_out`` and ``p_pop`` (float arrays ``[n_intents]``), ``metrics`` (dict or None).

    Args:
        run_dir: path of the run directory.
    """

    def __init__(self, run_dir):
        self.files = RunFiles(run_dir, REQUIRED)  # the folder and its REQUIRED files
        self.run_dir = self.files.path
        config = self.files.json("config.json")
        try:
            self.config = PopulationConfig(**config)
        except TypeError as err:  # a key this version does not know
            raise UserInputError(f"{self.run_dir / 'config.json'}: not a run config ({err})") from None
        except UserInputError as err:  # a value out of its range
            raise UserInputError(f"{self.run_dir / 'config.json'}: {err}") from None
        self.vocabs = Vocabularies.load(self.run_dir)
        try:
            self.student = keras.models.load_model(self.run_dir / "student.keras", compile=False)
        except Exception as err:  # noqa: BLE001  (a truncated or foreign file: one clear line)
            raise UserInputError(f"{self.run_dir / 'student.keras'}: cannot be loaded "
                                 f"({str(err).splitlines()[0][:200]})") from None
        self._check_student_matches()
        p = self.files.json("p_out.json")
        missing = [k for k in ("intents", "p_out", "p_pop") if k not in p]
        if missing:
            raise UserInputError(f"{self.run_dir / 'p_out.json'}: lacks {', '.join(missing)}")
        self.intents = list(p["intents"])
        self.p_out = np.asarray(p["p_out"], dtype=np.float64)
        self.p_pop = np.asarray(p["p_pop"], dtype=np.float64)
        if not len(self.p_out) == len(self.p_pop) == self.vocabs.n_intents:
            raise UserInputError(f"{self.run_dir / 'p_out.json'}: {len(self.p_out)} / "
                                 f"{len(self.p_pop)} shares for {self.vocabs.n_intents} intents")
        self.metrics = self.files.json("metrics.json", default=None)

    def _check_student_matches(self):
        """``config.json`` and ``vocab.json`` must describe ``student.keras`` (a file edited
        or copied from another run would fail later inside Keras): one error naming the
        file and the value."""
        student, config, sizes = self.student, self.config, self.vocabs.sizes
        saved = {
            "config.json": [("history", config.history, getattr(student, "sequence_length", None)),
                            ("student_width", config.student_width,
                             4 * getattr(student, "embedding_dim", 0) or None)],
            "vocab.json": [(f"{name} ids", sizes.get(name), getattr(student, f"n_{name}s", None))
                           for name in ("location", "slot", "event", "intent")],
        }
        for file, values in saved.items():
            for name, value, model in values:
                if model is not None and value is not None and int(value) != int(model):
                    raise UserInputError(
                        f"{self.run_dir / file}: {name} {value} does not match the saved "
                        f"student ({model}, student.keras): the file was edited or comes from "
                        "another run")

    @cached_property
    def teacher(self):
        """The teacher IntentPredictor (loaded on first use)."""
        if not (self.run_dir / "teacher").is_dir():
            raise UserInputError(f"run directory {self.run_dir} is missing teacher/")
        return load_teacher(self.run_dir / "teacher")

    def log_schema(self, schema=None):
        """How to read a log for this run: the :class:`pitune_tf.data.schema.Schema` its
        own log was read with (``config.json``, ``data_schema``) by default.

        Args:
            schema: None (the run's), a dict of fields overriding the run's (the options a
                command line gave, :func:`pitune_tf.data.schema.merge_schema`: ``columns``
                only the names it gives), or a ``Schema`` (used as it is).
        """
        if isinstance(schema, Schema):
            return schema
        return merge_schema(self.config.data_schema, schema)

    @property
    def mapping(self):
        """The event-to-intent mapping file the run's log was read with (``config.json``,
        ``mapping``), or None."""
        return self.config.mapping

    @property
    def individual_data_path(self):
        """``data/individual.parquet`` when the run stored the individual users' events."""
        path = self.run_dir / "data" / "individual.parquet"
        return path if path.exists() else None


def load_run(run_dir) -> Run:
    """Opens a population run directory; a missing file raises UserInputError naming it."""
    return Run(run_dir)


# ----------------------------------------------------------------------------- writer


RATE_KEYS = ("teacher_learning_rate", "student_learning_rate")  # what a diverged run may change
# what a run holds before its first epoch ends (nothing to resume: another config may replace it)
STARTED_FILES = {"config.json", "vocab.json", "logs", "training.json", ".checkpoints"}


def resumable(out_dir) -> bool:
    """Whether ``out_dir`` holds training to resume: a trained teacher or an epoch's
    checkpoint."""
    out_dir = Path(out_dir)
    return (out_dir / "teacher").is_dir() or any((out_dir / CHECKPOINTS).glob("*/checkpoint"))


def prepare_out_dir(config, out_dir, overwrite):
    """Creates ``out_dir`` and writes ``config.json``; a finished run is only replaced with
    ``overwrite``, an unfinished one is resumed only with the same config
    (:func:`pitune_tf.common.run_replacement.prepare_run_dir`: a replaced run is moved aside,
    its path returned for :func:`~pitune_tf.common.run_replacement.finish_replacement`).

    Two exceptions: a run that diverged resumes with other learning rates
    (:func:`pitune_tf.common.divergence.accept_new_rates`), and an unfinished run with
    nothing to resume (stopped before its first epoch ended) is replaced by a run of
    another config."""
    out_dir = Path(out_dir)
    record = config.to_dict()
    for key, (old, new) in accept_new_rates(out_dir, record, RATE_KEYS).items():
        status(f"the run in {out_dir} diverged: resuming it with {key} {new:g} (was {old:g})")
    nothing_to_resume = ((out_dir / "config.json").is_file() and not resumable(out_dir)
                         and {p.name for p in out_dir.iterdir()} <= STARTED_FILES)
    return prepare_run_dir(out_dir, record, overwrite or nothing_to_resume,
                           defaults=type(config)().to_dict())


def model_summary(model) -> str:
    """``model.summary()`` with nested layers, as text."""
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line), expand_nested=True)
    return "\n".join(lines) + "\n"


def save_student(student, path):
    """``student.keras`` written atomically (Keras needs the ``.keras`` suffix)."""
    with atomic_path(path) as tmp:
        staged = Path(f"{tmp}.keras")
        try:
            student.save(staged)
            os.replace(staged, tmp)
        finally:
            if staged.exists():
                staged.unlink()


def write_outputs(out_dir, vocabs, teacher, student, p_out, p_pop, individual, metrics,
                  individual_oracle=None):
    """Everything after training, ``metrics.json`` (which marks the run finished) included,
    in one step: the files and the end of the checkpoints replace the unfinished run as one
    set (:func:`pitune_tf.common.output_set.output_set`), so a run directory is unfinished
    (no ``student.keras``, no ``metrics.json``) or finished, never between.
    ``individual_oracle`` (the individual users' oracle tables by kind, ``""`` and
    ``"context"`` of ``pitune_tf.data.intent_oracle``, or None) is written beside
    ``data/individual.parquet``.

    (``config.json`` and ``vocab.json`` are written before training, ``teacher/`` when the
    teacher phase ends.)
    """
    final = ("student.keras", "p_out.json", "summaries", "data", "metrics.json", CHECKPOINTS)
    with output_set(out_dir, final) as new:
        save_student(student, new / "student.keras")
        write_json(new / "p_out.json", {"intents": vocabs.intent.tokens,
                                        "p_out": p_out.tolist(), "p_pop": p_pop.tolist()})
        write_text(new / "summaries" / "teacher.txt", model_summary(teacher))
        write_text(new / "summaries" / "student.txt", model_summary(student))
        if individual is not None:
            (new / "data").mkdir(exist_ok=True)
            write_events(individual, new / "data" / "individual.parquet")
            write_oracles(individual_oracle or {}, new / "data" / "individual.parquet")
        write_json(new / "metrics.json", metrics)
