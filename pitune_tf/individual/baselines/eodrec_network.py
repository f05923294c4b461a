"""EODRec's on-device session model: compositional-code event embeddings and a self-attentive
session encoder."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf
from pitune_tf.layers.compositional_embedding import CompositionalEmbedding
from pitune_tf.layers.transformer_decoder_block import TransformerDecoderBlock


@keras.saving.register_keras_serializable(package="pitune")
class EODRecNetwork(keras.Model):
    """Events -> :class:`~pitune_tf.layers.CompositionalEmbedding` (each event id the sum of
    ``num_codebooks`` codebook vectors, EODRec's compressed item table) plus a learned
    position embedding -> one causal self-attention block over the window's real events
    (padding masked) -> the newest position (L - 1, windows are left-padded) -> intent
    logits. Session-based: it reads the event ids only, not their time or place.

    Args:
        n_events: int. N_E, event ids (reserved ids included).
        n_intents: int. N_I, logits.
        width: int. Embedding and encoder width (2 attention heads).
        sequence_length: int. L, the window length.
        num_codebooks: int. M of the compositional code.
        codebook_size: int. K of the compositional code.
        seed: int. Seed of the codes and the initializers.

    Call: features dict (``event`` int32 ``[batch, L]``, ``mask`` float32 ``[batch, L]``;
    other keys ignored) -> logits ``[batch, n_intents]``.
    """

    def __init__(self, n_events, n_intents, sequence_length, width=32, num_codebooks=4,
                 codebook_size=16, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.n_events = int(n_events)
        self.n_intents = int(n_intents)
        self.sequence_length = int(sequence_length)
        self.width = int(width)
        self.num_codebooks = int(num_codebooks)
        self.codebook_size = int(codebook_size)
        self.seed = int(seed)
        self.embedding = CompositionalEmbedding(n_events, width, num_codebooks, codebook_size,
                                                seed=seed, name="event_codes")
        self.positions = keras.layers.Embedding(sequence_length, width, name="positions")
        self.encoder = TransformerDecoderBlock(width, 2, name="session_encoder")
        self.head = keras.layers.Dense(n_intents, name="intent_logits")

    def call(self, inputs, training=None):
        mask = tf.cast(inputs["mask"], tf.float32)  # [batch, L]
        x = self.embedding(inputs["event"]) + self.positions(tf.range(self.sequence_length))[None]
        x = x * mask[:, :, None]  # [batch, L, D], padding zeroed
        h = self.encoder(x, mask, training=training)  # [batch, L, D]
        return self.head(h[:, -1])  # [batch, N_I] from the newest event

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "n_events": self.n_events,
                "n_intents": self.n_intents, "sequence_length": self.sequence_length,
                "width": self.width,
                "num_codebooks": self.num_codebooks, "codebook_size": self.codebook_size,
                "seed": self.seed}
