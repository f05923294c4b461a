"""Context embedding of PITuning (Sec. 3.2.1)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="pitune")
class ContextEmbedding(keras.layers.Layer):
    """Four embeddings (location, weekday, time slot, event) concatenated (PITuning Eq. 2 input).

    Sec. 3.2.1's E_l, E_w, E_t, E_e are the tables ``location_embedding``, ``weekday_embedding``,
    ``slot_embedding`` and ``event_embedding``, each of size d = ``embedding_dim``; the output
    ``concat(E_l, E_w, E_t, E_e)`` has width 4d, in that order.

    Args:
        n_locations: int. Location vocabulary size (including the reserved ids).
        n_weekdays: int. Weekday vocabulary size (8: pad + Mon..Sun).
        n_slots: int. Time-slot vocabulary size (n_slots + 1 with the pad id).
        n_events: int. Event vocabulary size (including the reserved ids).
        embedding_dim: int. d, the size of each of the four embeddings.

    Example:
    >>> layer = ContextEmbedding(5, 8, 25, 9, embedding_dim=4)
    >>> ids = tf.ones([2, 3], tf.int32)
    >>> layer({"location": ids, "weekday": ids, "slot": ids, "event": ids}).shape
    TensorShape([2, 3, 16])
    """

    def __init__(self, n_locations, n_weekdays, n_slots, n_events, embedding_dim, **kwargs):
        super().__init__(**kwargs)
        self.n_locations = n_locations
        self.n_weekdays = n_weekdays
        self.n_slots = n_slots
        self.n_events = n_events
        self.embedding_dim = embedding_dim
        self.location_embedding = keras.layers.Embedding(
            n_locations, embedding_dim, embeddings_initializer=_init(), name="location_embedding"
        )
        self.weekday_embedding = keras.layers.Embedding(
            n_weekdays, embedding_dim, embeddings_initializer=_init(), name="weekday_embedding"
        )
        self.slot_embedding = keras.layers.Embedding(
            n_slots, embedding_dim, embeddings_initializer=_init(), name="slot_embedding"
        )
        self.event_embedding = keras.layers.Embedding(
            n_events, embedding_dim, embeddings_initializer=_init(), name="event_embedding"
        )

    def build(self, input_shape=None):
        for layer in (
            self.location_embedding,
            self.weekday_embedding,
            self.slot_embedding,
            self.event_embedding,
        ):
            layer.build([None, None])
        super().build(input_shape)

    def embed_events(self, event_ids):
        """E_e for event ids ``[batch, L]`` -> ``[batch, L, d]`` (what EventMasking edits)."""
        return self.event_embedding(event_ids)

    def call(self, inputs, event_embeddings=None):
        location = self.location_embedding(inputs["location"])  # [batch, L, d]
        weekday = self.weekday_embedding(inputs["weekday"])  # [batch, L, d]
        slot = self.slot_embedding(inputs["slot"])  # [batch, L, d]
        if event_embeddings is None:
            event_embeddings = self.event_embedding(inputs["event"])  # [batch, L, d]
        return tf.concat([location, weekday, slot, event_embeddings], axis=-1)  # [batch, L, 4d]

    def get_config(self):
        config = super().get_config()
        config.update(
            n_locations=self.n_locations,
            n_weekdays=self.n_weekdays,
            n_slots=self.n_slots,
            n_events=self.n_events,
            embedding_dim=self.embedding_dim,
        )
        return config
