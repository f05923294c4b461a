"""Reading a population run directory (what ``trainers.population`` wrote)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

from pitune_tf.common.errors import UserInputError

REQUIRED = ("config.json", "vocab.json", "student.keras", "p_out.json")


class PopulationRun:
    """A finished population run: ``config``, ``vocabs``, ``student``, lazy ``teacher``,
    ``p_out`` and ``p_pop`` (float arrays ``[n_intents]``), ``metrics`` (dict or None).

    Args:
        run_dir: path of the run directory.
    """

    def __init__(self, run_dir):
        from pitune_tf.common.keras import keras
        from pitune_tf.config import PopulationConfig
        from pitune_tf.data import Vocabularies

        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise UserInputError(f"run directory not found: {self.run_dir}")
        for name in REQUIRED:
            if not (self.run_dir / name).exists():
                raise UserInputError(f"run directory {self.run_dir} is missing {name}")
        self.config = PopulationConfig(**json.loads((self.run_dir / "config.json").read_text()))
        self.vocabs = Vocabularies.load(self.run_dir)
        self.student = keras.models.load_model(self.run_dir / "student.keras", compile=False)
        p = json.loads((self.run_dir / "p_out.json").read_text())
        self.intents = list(p["intents"])
        self.p_out = np.asarray(p["p_out"], dtype=np.float64)
        self.p_pop = np.asarray(p["p_pop"], dtype=np.float64)
        metrics_path = self.run_dir / "metrics.json"
        self.metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None

    @cached_property
    def teacher(self):
        """The teacher IntentPredictor (loaded on first use)."""
        from pitune_tf.models.teacher_io import load_teacher

        if not (self.run_dir / "teacher").is_dir():
            raise UserInputError(f"run directory {self.run_dir} is missing teacher/")
        return load_teacher(self.run_dir / "teacher")

    @property
    def individual_data_path(self):
        """``data/individual.parquet`` when the run stored the individual users' events."""
        path = self.run_dir / "data" / "individual.parquet"
        return path if path.exists() else None


def load_run(run_dir) -> PopulationRun:
    """Opens a population run directory; a missing file raises UserInputError naming it."""
    return PopulationRun(run_dir)
