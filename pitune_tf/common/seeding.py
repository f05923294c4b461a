"""Seeds of a training run."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf


def seed_everything(seed) -> None:
    """Python, NumPy and TF seeds, and deterministic TF ops."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
