"""Random event masking for the reconstruction loss (PITuning Eq. 5, Sec. 3.2.4)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf


@keras.saving.register_keras_serializable(package="pitune")
class EventMasking(keras.layers.Layer):
    """Replaces the event embedding of random history positions by a learned mask embedding.

    Sec. 3.2.4 / Figure 3b: a fraction ``rate`` of the real (non-padding) history positions is
    chosen; at those positions only the event field E_e is replaced by the learned vector E_m
    (``mask_embedding``); location, weekday and slot stay visible. The chosen positions are
    the targets of the event-reconstruction term L_M of PITuning Eq. 5.

    The choice is a stateless Bernoulli draw seeded by ``(seed, step)``, where ``step`` counts
    the training calls in a saved, non-trainable variable: a run resumed from a checkpoint
    draws the same positions as an uninterrupted one. Under a tf.distribute strategy a
    replica, given its slice of the global batch, draws the positions of the whole batch and
    keeps its rows, so any number of replicas masks the positions one device would.

    Args:
        embedding_dim: int. d, the size of the event embedding.
        rate: float. Probability that a real history position is masked (paper default 0.15).
        seed: int. Seed of the position draws.

    Call args:
        event_embeddings: float ``[batch, L, d]``.
        mask: float ``[batch, L]``, 1 for real events, 0 for padding.
        seed: optional int32 ``[2]`` stateless seed; when absent, ``(self.seed, step)`` with the
            step counter advanced by one.

    Returns:
        ``(masked_event_embeddings [batch, L, d], chosen [batch, L] float 0/1)``.
    """

    def __init__(self, embedding_dim, rate=0.15, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = embedding_dim
        self.rate = rate
        self.seed = seed

    def build(self, input_shape=None):
        self.mask_embedding = self.add_weight(
            name="mask_embedding",
            shape=(self.embedding_dim,),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )
        self.step = self.add_weight(
            name="step", shape=(), dtype=tf.int64, initializer="zeros", trainable=False
        )
        super().build(input_shape)

    def choose(self, mask, seed=None):
        """Chosen positions ``[batch, L]`` (float 0/1): real events drawn with prob ``rate``."""
        if seed is None:
            step = self.step.assign_add(1)
            seed = tf.stack([tf.constant(self.seed, tf.int64), step])
        seed = tf.cast(seed, tf.int64)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # a replica holds rows [offset, offset + rows) of the global batch: it draws the
            # whole batch's positions and keeps its rows, as one device would have drawn them
            rows = tf.shape(mask)[0]
            sizes = context.all_gather(tf.reshape(rows, [1]), axis=0)  # [replicas]
            offset = tf.reduce_sum(sizes[:context.replica_id_in_sync_group])
            draws = tf.random.stateless_uniform(
                tf.stack([tf.reduce_sum(sizes), tf.shape(mask)[1]]), seed=seed)
            draws = draws[offset:offset + rows]  # [batch, L]
        else:
            draws = tf.random.stateless_uniform(tf.shape(mask), seed=seed)
        return tf.cast(draws < self.rate, mask.dtype) * mask  # [batch, L]

    def call(self, event_embeddings, mask, seed=None):
        mask = tf.cast(mask, event_embeddings.dtype)
        chosen = self.choose(mask, seed)  # [batch, L]
        keep = (1.0 - chosen)[..., None]  # [batch, L, 1]
        mask_vector = tf.reshape(tf.cast(self.mask_embedding, event_embeddings.dtype), [1, 1, -1])
        masked = event_embeddings * keep + mask_vector * (1.0 - keep)  # [batch, L, d]
        return masked, chosen

    def get_config(self):
        config = super().get_config()
        config.update(embedding_dim=self.embedding_dim, rate=self.rate, seed=self.seed)
        return config
