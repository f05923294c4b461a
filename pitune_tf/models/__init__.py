"""PITuning's networks: the intent predictor (teacher and student), its backbones, the
teacher's save format.

Importing this package registers every custom layer, so ``keras.models.load_model`` can read
``student.keras``. The population stage's trainers and run directory are in
``pitune_tf.population``.
"""

from pitune_tf import layers  # noqa: F401  (registers the layers)
from pitune_tf.models.factory import build_student, build_teacher
from pitune_tf.models.intent_predictor import IntentPredictor

__all__ = [
    "IntentPredictor",
    "build_student",
    "build_teacher",
]

