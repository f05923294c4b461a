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

    With ``span`` (not in PITuning) the stack streams: no absolute positions, and every block
    attends to the ``span`` positions before each position with a relative bias
    (:class:`TransformerDecoderBlock`'s ``span``). A position's output then depends on the
    :attr:`receptive_field` = ``num_layers * span`` events before it and on nothing else, so
    :meth:`step` computes one new position from per-block caches of keys and values, exactly
    as the whole window would (for a position with all its receptive field in the window).

    Args:
        num_layers: int. Number of blocks (paper: 4).
        width: int. Model width D (paper: 768).
        num_heads: int. Attention heads.
        sequence_length: int. L, the history length.
        intermediate_dim: int or None. Feed-forward width (None: 4 D).
        dropout: float.
        span: int or None. Local attention span of every block (None: the whole window, with
            the absolute position table).

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
        span=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if span is not None and not (1 <= int(span) and num_layers * int(span) < sequence_length):
            raise ValueError(f"span must be >= 1 with num_layers * span < sequence_length "
                             f"({num_layers} * {span} vs {sequence_length})")
        self.num_layers = num_layers
        self.width = width
        self.num_heads = num_heads
        self.sequence_length = sequence_length
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.span = None if span is None else int(span)
        self.blocks = [
            TransformerDecoderBlock(
                width, num_heads, intermediate_dim, dropout=dropout, span=self.span,
                name=f"block_{i}"
            )
            for i in range(num_layers)
        ]
        self.ln_f = LayerNorm(name="ln_f")

    @property
    def receptive_field(self) -> int | None:
        """How many earlier events a position's output depends on (None: the whole window)."""
        return None if self.span is None else self.num_layers * self.span

    def build(self, input_shape):
        if self.span is None:
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
        x = inputs  # [batch, L, D]
        if self.span is None:
            x = x + tf.expand_dims(self.position_embedding, 0)
        for block in self.blocks:
            x = block(x, mask, training=training)
        return self.ln_f(x)

    def step(self, inputs, keys, values, key_mask):
        """One new position (inference; needs ``span``).

        Args:
            inputs: float ``[batch, D]``, the new event's embedding.
            keys, values: float ``[batch, num_layers, span, D]``, every block's cache.
            key_mask: float ``[batch, span]``, 1 where the previous event is real.

        Returns:
            ``(output [batch, D], keys, values)`` with the caches moved on by one event.
        """
        x, new_keys, new_values = inputs, [], []
        for i, block in enumerate(self.blocks):
            x, k, v = block.step(x, keys[:, i], values[:, i], key_mask)
            new_keys.append(k)
            new_values.append(v)
        return self.ln_f(x), tf.stack(new_keys, axis=1), tf.stack(new_values, axis=1)

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in (
            "num_layers", "width", "num_heads", "sequence_length", "intermediate_dim",
            "dropout", "span")})
        return config
