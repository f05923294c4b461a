"""PITuning's population stage (Sec. 3.2, Algorithm 1 top half) as a library.

- ``population_config``: ``PopulationConfig``, ``PRESETS``, ``preset``, ``resolve``.
- ``data_preparation``: ``load_data`` (event tables), ``prepare_windows`` (vocabularies,
  windows, the event -> intent map of a baseline).
- ``population_trainer``: ``PopulationTrainer``, the teacher's task (PITuning Eq. 5).
- ``distiller``: ``Distiller``, the student's task (PITuning Eq. 6-7).
- ``training_loop``: ``fit_phase`` (shared epoch batches, checkpoints, resume) with the
  callbacks ``EpochCheckpoint`` and ``ScalarLogger``.
- ``teacher_training`` / ``distillation``: ``train_teacher``, ``distill_student``.
- ``evaluation``: ``evaluate``, ``baseline_scores``, ``predict_logits``.
- ``run_directory``: the run directory's writer and its reader ``load_run`` / ``Run``.
- ``population_stage``: ``run_population(config, out_dir, overwrite=False) -> metrics``.

Entry point: ``python -m trainers.population`` (see ``trainers/population.py``).
"""

from pitune_tf.population.data_preparation import load_data, prepare_windows
from pitune_tf.population.distillation import distill_student
from pitune_tf.population.distiller import Distiller
from pitune_tf.population.epoch_checkpoint import EpochCheckpoint
from pitune_tf.population.evaluation import baseline_scores, evaluate, predict_logits
from pitune_tf.population.population_config import (
    PRESETS,
    PopulationConfig,
    preset,
    resolve,
)
from pitune_tf.population.population_stage import run_population
from pitune_tf.population.population_trainer import PopulationTrainer
from pitune_tf.population.run_directory import Run, load_run
from pitune_tf.population.scalar_logger import ScalarLogger
from pitune_tf.population.teacher_training import train_teacher
from pitune_tf.population.training_loop import CHECKPOINTS, fit_phase

__all__ = [
    "CHECKPOINTS",
    "PRESETS",
    "Distiller",
    "EpochCheckpoint",
    "PopulationConfig",
    "PopulationTrainer",
    "Run",
    "ScalarLogger",
    "baseline_scores",
    "distill_student",
    "evaluate",
    "fit_phase",
    "load_data",
    "load_run",
    "predict_logits",
    "preset",
    "prepare_windows",
    "resolve",
    "run_population",
    "train_teacher",
]
