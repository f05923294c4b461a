"""PITuning's models: the intent predictor (teacher and student), trainers, run I/O.

Importing this package registers every custom layer, so ``keras.models.load_model`` can read
``student.keras``.
"""

from pitune_tf import layers  # noqa: F401  (registers the layers)
from pitune_tf.models.distiller import Distiller
from pitune_tf.models.factory import build_student, build_teacher
from pitune_tf.models.intent_predictor import IntentPredictor
from pitune_tf.models.population_trainer import PopulationTrainer
from pitune_tf.models.run import PopulationRun, load_run

__all__ = [
    "Distiller",
    "IntentPredictor",
    "PopulationRun",
    "PopulationTrainer",
    "build_student",
    "build_teacher",
    "load_run",
]
