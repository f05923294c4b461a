"""Layer normalization from elementary ops (TFLite-trainable)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf


@keras.saving.register_keras_serializable(package="pitune")
class LayerNorm(keras.layers.Layer):
    """Layer normalization over the last axis written with mean / rsqrt.

    Keras' ``LayerNormalization`` may lower to ``FusedBatchNormV3``, whose gradient TFLite has
    no builtin op for; this one uses Mean, Sub, Mul, Rsqrt only.

    Args:
        epsilon: float. Added to the variance.
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(width,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(width,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        mean = tf.reduce_mean(inputs, axis=-1, keepdims=True)
        centered = inputs - mean
        variance = tf.reduce_mean(centered * centered, axis=-1, keepdims=True)
        return centered * tf.math.rsqrt(variance + self.epsilon) * self.gamma + self.beta

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config
