"""A small bidirectional BERT4Rec-style encoder that predicts the next intent at an appended
[MASK] position (MetaBert4Rec's base model)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf
from pitune_tf.layers.layer_norm import LayerNorm
from pitune_tf.layers.transformer_decoder_block import TransformerDecoderBlock


@keras.saving.register_keras_serializable(package="pitune")
class Bert4RecNetwork(keras.Model):
    """Sun et al., "BERT4Rec", CIKM 2019, for the next intent: the window's events followed by
    a [MASK] token (id ``n_events``; BERT4Rec's next-item prediction appends [MASK] to the
    sequence), event plus position embeddings, ``num_layers`` bidirectional self-attention
    blocks (:class:`~pitune_tf.layers.TransformerDecoderBlock` with ``causal=False``; padding
    masked), a final layer norm, and the intent logits read at the [MASK] position.

    Args:
        n_events: int. N_E, event ids (reserved ids included); [MASK] is id N_E.
        n_intents: int. N_I, logits.
        sequence_length: int. L (the encoder sees L + 1 positions).
        width: int. Model width.
        num_layers: int. Encoder blocks.
        num_heads: int. Attention heads.

    Call: features dict (``event`` int32 ``[batch, L]``, ``mask`` float32 ``[batch, L]``;
    other keys ignored) -> logits ``[batch, n_intents]``.
    """

    def __init__(self, n_events, n_intents, sequence_length, width=32, num_layers=2, num_heads=2,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_events = int(n_events)
        self.n_intents = int(n_intents)
        self.sequence_length = int(sequence_length)
        self.width = int(width)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.events = keras.layers.Embedding(self.n_events + 1, width, name="events")
        self.positions = keras.layers.Embedding(self.sequence_length + 1, width, name="positions")
        self.blocks = [TransformerDecoderBlock(width, num_heads, causal=False, name=f"block_{i}")
                       for i in range(self.num_layers)]
        self.norm = LayerNorm(name="final_norm")
        self.head = keras.layers.Dense(n_intents, name="intent_logits")

    def call(self, inputs, training=None):
        events = tf.cast(inputs["event"], tf.int32)  # [batch, L]
        ones = tf.ones_like(events[:, :1])
        events = tf.concat([events, self.n_events * ones], axis=1)  # [batch, L + 1], [MASK] last
        mask = tf.concat([tf.cast(inputs["mask"], tf.float32), tf.cast(ones, tf.float32)], axis=1)
        x = self.events(events) + self.positions(tf.range(self.sequence_length + 1))[None]
        x = x * mask[:, :, None]  # [batch, L + 1, D]
        for block in self.blocks:
            x = block(x, mask, training=training)
        return self.head(self.norm(x[:, -1]))  # [batch, N_I] at [MASK]

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "n_events": self.n_events,
                "n_intents": self.n_intents, "sequence_length": self.sequence_length,
                "width": self.width, "num_layers": self.num_layers, "num_heads": self.num_heads}
