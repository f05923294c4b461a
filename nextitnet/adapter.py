"""PeterRec model patch: a residual bottleneck inserted after a frozen convolution."""

from __future__ import annotations

from pitune_tf.common.keras import keras


@keras.saving.register_keras_serializable(package="pitune")
class Adapter(keras.layers.Layer):
    """PeterRec adapter (Yuan et al., SIGIR 2020): ``x + W_up(ReLU(W_down x))``.

    The up-projection starts at zero, so a freshly inserted adapter is the identity and the
    pre-trained network's outputs are unchanged until the adapter is trained.

    Args:
        channels: int. Width of the input and output (k).
        bottleneck: int. Width of the hidden layer.

    Example:
        >>> Adapter(8, 2)(tf.ones([2, 5, 8])).shape
        TensorShape([2, 5, 8])
    """

    def __init__(self, channels, bottleneck, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.bottleneck = int(bottleneck)
        self.down = keras.layers.Dense(self.bottleneck, activation="relu", name="down")
        self.up = keras.layers.Dense(self.channels, kernel_initializer="zeros", name="up")

    def build(self, input_shape):
        self.down.build(input_shape)
        self.up.build(list(input_shape[:-1]) + [self.bottleneck])
        super().build(input_shape)

    def call(self, inputs):
        return inputs + self.up(self.down(inputs))  # [batch, L, k]

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, bottleneck=self.bottleneck)
        return config
