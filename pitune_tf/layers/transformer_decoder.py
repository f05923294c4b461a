"""The student's sequence model: a small causal transformer decoder (Sec. 3.2.5)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf
from pitune_tf.layers.layer_norm import LayerNorm
from pitune_tf.layers.transformer_decoder_block import TransformerDecoderBlock


@keras.saving.register_keras_serializable(package="pitune")
class TransformerDecoder(keras.layers.Layer):
    """Learned position embedding, ``num_layers`` decoder blocks, final layer norm (GPT2 layout).

    The student's H_t (PITuning Eq. 2 with GPT2 replaced by this stack). Static length: the position
    table has ``sequence_length`` rows and is added whole (no slicing).

    Args:
        num_layers: int. Number of blocks (paper: 4).
        width: int. Model width D (paper: 768).
        num_heads: int. Attention heads.
        sequence_length: int. L, the history length.
        intermediate_dim: int or None. Feed-forward width (None: 4 D).
        dropout: float.

    Call: ``(inputs [batch, L, D], mask [batch, L])`` -> ``[batch, L, D]``.
    """

    def __init__(
        self,
        num_layers,
        width,
        num_heads,
        sequence_length,
        intermediate_dim=None,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_layers = num_layers
        self.width = width
        self.num_heads = num_heads
        self.sequence_length = sequence_length
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.blocks = [
            TransformerDecoderBlock(
                width, num_heads, intermediate_dim, dropout=dropout, name=f"block_{i}"
            )
            for i in range(num_layers)
        ]
        self.ln_f = LayerNorm(name="ln_f")

    def build(self, input_shape):
        self.position_embedding = self.add_weight(
            name="position_embedding",
            shape=(self.sequence_length, self.width),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
        )
        for block in self.blocks:
            block.build([None, self.sequence_length, self.width])
        self.ln_f.build([None, self.sequence_length, self.width])
        super().build(input_shape)

    def call(self, inputs, mask, training=None):
        x = inputs + tf.expand_dims(self.position_embedding, 0)  # [batch, L, D]
        for block in self.blocks:
            x = block(x, mask, training=training)
        return self.ln_f(x)

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in (
            "num_layers", "width", "num_heads", "sequence_length", "intermediate_dim",
            "dropout")})
        return config
