"""The one place the project imports Keras from: the Keras 2 API of ``tf-keras``.

Use ``from pitune_tf.common.keras import keras, tf``.
"""

# isort: off
from pitune_tf.common import environment  # noqa: F401  (must run before tensorflow is imported)

import tensorflow as tf
import tf_keras as keras
# isort: on

__all__ = ["keras", "tf"]


def deserialize_nested(config: dict, *keys: str) -> dict:
    """``config`` (a layer's ``get_config``) with the nested layers under ``keys``, saved as
    ``keras.layers.serialize`` dicts, rebuilt: what a ``from_config`` of a layer that wraps
    other layers does first."""
    config = dict(config)
    for key in keys:
        if isinstance(config.get(key), dict):
            config[key] = keras.layers.deserialize(config[key])
    return config
