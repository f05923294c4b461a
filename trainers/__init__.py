"""Training entry points: ``python -m trainers.population``, ``trainers.individual``, ``trainers.uaf``."""

from pitune_tf.common import environment  # noqa: F401  (Keras 2 before tensorflow)
