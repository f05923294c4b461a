"""Gradient reversal (Ganin and Lempitsky, ICML 2015): the identity forward, -scale times the
gradient backward (CLOVER's adversarial fairness)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf


@keras.saving.register_keras_serializable(package="pitune")
class GradientReversal(keras.layers.Layer):
    """``y = x``; ``dL/dx = -scale * dL/dy``. An adversary after this layer minimizes its
    loss while the layers before it receive the reversed gradient, i.e. maximize it (the
    min-max of an adversarial objective in one optimizer step).

    Args:
        scale: float. The reversed gradient's factor (lambda of Ganin and Lempitsky).

    Call: ``x`` (any shape) -> ``x``.

    Example:
        >>> layer = GradientReversal(scale=0.5)
        >>> layer(tf.ones([2, 3])).shape
        TensorShape([2, 3])
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        scale = self.scale

        @tf.custom_gradient
        def reverse(x):
            return tf.identity(x), lambda dy: -scale * dy

        return reverse(inputs)

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale)
        return config
