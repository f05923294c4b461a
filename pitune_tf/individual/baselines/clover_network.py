"""CLOVER's recommender and its user-group adversary."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf
from pitune_tf.layers.context_embedding import ContextEmbedding
from pitune_tf.layers.gradient_reversal import GradientReversal


@keras.saving.register_keras_serializable(package="pitune")
class CloverNetwork(keras.Model):
    """A MeLU-style recommender (the base of CLOVER): the window's location, weekday, slot
    and event embeddings (:class:`~pitune_tf.layers.ContextEmbedding`), their mean over the
    real positions, an MLP giving the user representation u, and the intent logits; beside
    it the adversary: :class:`~pitune_tf.layers.GradientReversal` then an MLP predicting the
    user's group from u (trained to find the group; the reversed gradient trains u to hide
    it).

    Args:
        n_locations, n_slots, n_events, n_intents: int. Vocabulary sizes (reserved ids
            included).
        width: int. 4 x the embedding width d, and the MLPs' width.
        n_groups: int. User groups the adversary tells apart.
        adversary_scale: float. The reversal's factor.
        n_weekdays: int.

    Call: features dict -> logits ``[batch, n_intents]``; :meth:`forward` also gives
    ``group_logits [batch, n_groups]``.
    """

    def __init__(self, n_locations, n_slots, n_events, n_intents, width=32, n_groups=2,
                 adversary_scale=1.0, n_weekdays=8, **kwargs):
        super().__init__(**kwargs)
        if width % 4:
            raise ValueError(f"width must be divisible by 4, got {width}")
        self.n_locations = int(n_locations)
        self.n_slots = int(n_slots)
        self.n_events = int(n_events)
        self.n_intents = int(n_intents)
        self.width = int(width)
        self.n_groups = int(n_groups)
        self.adversary_scale = float(adversary_scale)
        self.n_weekdays = int(n_weekdays)
        self.embedding = ContextEmbedding(n_locations, n_weekdays, n_slots, n_events, width // 4,
                                          name="context_embedding")
        self.user = keras.layers.Dense(width, activation="relu", name="user_representation")
        self.head = keras.layers.Dense(n_intents, name="intent_logits")
        self.reversal = GradientReversal(adversary_scale, name="gradient_reversal")
        self.adversary_hidden = keras.layers.Dense(width, activation="relu", name="adversary_hidden")
        self.adversary = keras.layers.Dense(n_groups, name="adversary")

    def forward(self, inputs, training=None) -> dict:
        mask = tf.cast(inputs["mask"], tf.float32)[:, :, None]  # [batch, L, 1]
        x = self.embedding(inputs)  # [batch, L, width]
        pooled = tf.reduce_sum(x * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        user = self.user(pooled)  # [batch, width]: u
        group = self.adversary(self.adversary_hidden(self.reversal(user)))  # [batch, n_groups]
        return {"logits": self.head(user), "group_logits": group}

    def call(self, inputs, training=None):
        return self.forward(inputs, training=training)["logits"]

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                **{k: getattr(self, k) for k in ("n_locations", "n_slots", "n_events", "n_intents",
                                                 "width", "n_groups", "adversary_scale",
                                                 "n_weekdays")}}
