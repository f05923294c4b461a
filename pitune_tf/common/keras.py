"""The one place the project imports Keras from: the Keras 2 API of ``tf-keras``.

Use ``from pitune_tf.common.keras import keras, tf``.
"""

# isort: off
from pitune_tf.common import environment  # noqa: F401  (must run before tensorflow is imported)

import tensorflow as tf
import tf_keras as keras
# isort: on

__all__ = ["keras", "tf"]
