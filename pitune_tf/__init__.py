"""PITuning in TensorFlow/Keras: population-to-individual tuning for on-device intent prediction."""

from pitune_tf.common import _env  # noqa: F401

__version__ = "0.1.0"
