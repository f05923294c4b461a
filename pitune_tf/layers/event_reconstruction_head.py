"""Event-reconstruction MLP (PITuning Eq. 5, Sec. 3.2.4)."""

from __future__ import annotations

from pitune_tf.common.keras import keras
from pitune_tf.layers.intent_head import activate


@keras.saving.register_keras_serializable(package="pitune")
class EventReconstructionHead(keras.layers.Layer):
    """MLP from the backbone output to event logits at every position (e_m of PITuning Eq. 5).

    Args:
        n_events: int. N_E, the event vocabulary size (logit columns).
        hidden_units: int. Width of the hidden layer.
        activation: str. Hidden activation.

    Call: ``[batch, L, D]`` -> ``[batch, L, N_E]`` logits.
    """

    def __init__(self, n_events, hidden_units=64, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.n_events = n_events
        self.hidden_units = hidden_units
        self.activation = activation
        self.hidden = keras.layers.Dense(hidden_units, name="hidden", dtype=self.dtype_policy)
        self.logits = keras.layers.Dense(n_events, name="logits", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.hidden.build([None, int(input_shape[-1])])
        self.logits.build([None, self.hidden_units])
        super().build(input_shape)

    def call(self, inputs):
        return self.logits(activate(self.hidden(inputs), self.activation))  # [batch, L, N_E]

    def get_config(self):
        config = super().get_config()
        config.update(
            n_events=self.n_events, hidden_units=self.hidden_units, activation=self.activation
        )
        return config
