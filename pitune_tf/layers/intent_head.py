"""Intent prediction MLP (PITuning Eq. 4, Sec. 3.2.3)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf


def activate(x, activation):
    """``activation`` applied; ReLU as ``maximum(x, 0)``: TFLite has no builtin ``ReluGrad``."""
    if activation == "relu":
        return tf.maximum(x, 0.0)
    return keras.activations.get(activation)(x)


@keras.saving.register_keras_serializable(package="pitune")
class IntentHead(keras.layers.Layer):
    """m = W_2 sigma(W_1 H_w + b_1) + b_2 (PITuning Eq. 4): one logit per intent.

    With the IAT (input ``[batch, N_I, D]``, one pooled vector H_w[i] per intent), W_1, b_1
    are shared by the intents and row i of W_2 (``output_kernel`` ``[N_I, U]``) with b_2[i]
    (``output_bias``) gives intent i's logit from its own H_w[i]. Without the IAT (the
    ablation; input ``[batch, D]``, the last history position) the same W_2 is an ordinary
    dense output layer. Either way the output is ``[batch, N_I]`` logits.

    Args:
        n_intents: int. N_I.
        hidden_units: int. Width U of the hidden layer.
        activation: str. sigma (default "relu").
        dropout: float. Dropout on the hidden layer while training.
    """

    def __init__(self, n_intents, hidden_units=64, activation="relu", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.n_intents = n_intents
        self.hidden_units = hidden_units
        self.activation = activation
        self.dropout = dropout
        self.hidden = keras.layers.Dense(hidden_units, name="hidden", dtype=self.dtype_policy)
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.hidden.build([None, int(input_shape[-1])])
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(self.n_intents, self.hidden_units),
            initializer="glorot_uniform",
        )
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.n_intents,), initializer="zeros"
        )
        super().build(input_shape)

    def call(self, inputs, training=None):
        hidden = self.dropout_layer(activate(self.hidden(inputs), self.activation), training=training)
        if inputs.shape.rank == 3:  # [batch, N_I, U]: intent i uses row i of W_2
            logits = tf.reduce_sum(hidden * tf.expand_dims(self.output_kernel, 0), axis=-1)
        else:  # [batch, U]
            logits = tf.matmul(hidden, self.output_kernel, transpose_b=True)
        return logits + self.output_bias  # [batch, N_I]

    def get_config(self):
        config = super().get_config()
        config.update(
            n_intents=self.n_intents,
            hidden_units=self.hidden_units,
            activation=self.activation,
            dropout=self.dropout,
        )
        return config
