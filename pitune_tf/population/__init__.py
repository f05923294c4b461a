"""PITuning's population stage (Sec. 3.2, Algorithm 1 top half) as a library.

- ``population_config``: ``PopulationConfig``, ``PRESETS``, ``preset``, ``resolve``.
- ``data_preparation``: ``load_data`` (event tables), ``prepare_windows`` (vocabularies,
  windows, the event -> intent map of a baseline), ``run_windows`` (a finished run's).
- ``teacher_loss``: ``PopulationTrainer``, the teacher's loss model (PITuning Eq. 5).
- ``distillation_loss``: ``Distiller``, the student's loss model (PITuning Eq. 6-7).
- ``training_loop``: ``fit_phase`` (the resumable fit of ``pitune_tf.common.resumable_fit``
  over the shared epoch batches, its callback ``EpochCheckpoint``) with ``ScalarLogger``.
- ``teacher_training`` / ``distillation``: ``train_teacher``, ``distill_student``.
- ``evaluation``: ``evaluate``, ``baseline_scores``, ``predict_logits``.
- ``run_directory``: the run directory's writer and its reader ``load_run`` / ``Run``.
- ``population_stage``: ``run_population(config, out_dir, overwrite=False) -> metrics``.

Entry point: ``python -m trainers.population`` (see ``trainers/population.py``).
"""

from pitune_tf.common.lazy import by_module, lazy_exports
from pitune_tf.population.population_config import PRESETS, PopulationConfig, preset, resolve

# The training modules load TensorFlow: imported on first use, so that the command line's
# options (``pitune_tf.population.command_line``) and ``--help`` start fast.
_EXPORTS = by_module({
    "pitune_tf.population.data_preparation": ("load_data", "prepare_windows"),
    "pitune_tf.population.distillation": ("distill_student",),
    "pitune_tf.population.distillation_loss": ("Distiller",),
    "pitune_tf.common.epoch_checkpoint": ("EpochCheckpoint",),
    "pitune_tf.population.evaluation": ("baseline_scores", "evaluate", "predict_logits"),
    "pitune_tf.population.population_stage": ("run_population",),
    "pitune_tf.population.teacher_loss": ("PopulationTrainer",),
    "pitune_tf.population.run_directory": ("Run", "load_run"),
    "pitune_tf.population.scalar_logger": ("ScalarLogger",),
    "pitune_tf.population.teacher_training": ("train_teacher",),
    "pitune_tf.population.training_loop": ("CHECKPOINTS", "fit_phase"),
})
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["PRESETS", "PopulationConfig", "preset", "resolve"]
__all__ += sorted(_EXPORTS)
