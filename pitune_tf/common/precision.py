"""Keras mixed precision: the one place a dtype policy is set (``--precision``)."""

from __future__ import annotations

from contextlib import contextmanager

from pitune_tf.common.keras import keras
from pitune_tf.common.training_options import PRECISIONS


@contextmanager
def dtype_policy(name: str = "float32"):
    """Builds layers under the Keras dtype policy ``name`` within the block, then restores
    the previous global policy.

    Under ``mixed_bfloat16`` / ``mixed_float16`` variables stay float32 and layers compute
    in the 16-bit type; layers made with ``dtype="float32"`` (the models' output heads)
    compute in float32, so logits and losses are float32.

    Example:
        >>> with dtype_policy("mixed_bfloat16"):
        ...     teacher = build_teacher(config, sizes)
    """
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def wrap_optimizer(optimizer, precision: str):
    """``optimizer`` in a dynamic ``LossScaleOptimizer`` under ``mixed_float16`` (float16
    gradients underflow without loss scaling; :class:`LossModel` scales and unscales)."""
    if precision == "mixed_float16":
        return keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer
