"""Causal transformer decoder block of the PITuning student (Sec. 3.2.5, Appendix A)."""

from __future__ import annotations

import math

import numpy as np

from pitune_tf.common.keras import keras, tf
from pitune_tf.layers.layer_norm import LayerNorm


def gelu_tanh(x):
    """GELU with the tanh approximation (GPT2's ``gelu_new``): builtin ops only, no Erf."""
    c = math.sqrt(2.0 / math.pi)
    return 0.5 * x * (1.0 + tf.tanh(c * (x + 0.044715 * x * x * x)))


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="pitune")
class TransformerDecoderBlock(keras.layers.Layer):
    """One pre-norm GPT2-style decoder block: x + MHA(LN(x)), then x + MLP(LN(x)).

    Built only from ops that TFLite can run *and train* as builtins: Dense (MatMul), Reshape,
    Transpose, BatchMatMul, Softmax, a hand-written layer norm, tanh-GELU. The causal mask is a
    constant lower-triangular matrix for the static length L (no ``band_part``), combined with
    the key padding mask by multiplication.

    Args:
        width: int. Model width D (divisible by ``num_heads``).
        num_heads: int. Attention heads.
        intermediate_dim: int. Feed-forward width (GPT2: 4 D).
        dropout: float. Dropout on attention output and feed-forward output while training.
        layer_norm_epsilon: float.
        causal: bool. The causal mask (True, the student); False lets every position attend
            to every real position (a bidirectional encoder block, BERT4Rec's).
        span: int or None. Local causal attention: each position attends to itself and the
            ``span`` positions before it, with a learned bias per head and distance
            (``relative_bias [num_heads, span + 1]``, zero at the start; T5-style relative
            positions) instead of the decoder's absolute positions. A position's output then
            depends on a fixed number of previous events wherever it sits in the window, so
            :meth:`step` can compute one new position from cached keys and values. None: every
            earlier position (causal) or every position.

    Call args:
        inputs: float ``[batch, L, D]`` with a static L.
        mask: float ``[batch, L]``, 1 for real positions.
    """

    def __init__(
        self,
        width,
        num_heads,
        intermediate_dim=None,
        dropout=0.0,
        layer_norm_epsilon=1e-5,
        causal=True,
        span=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if span is not None and (not causal or int(span) < 1):
            raise ValueError(f"span needs a causal block and must be >= 1, got {span}")
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        self.width = width
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim or 4 * width
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.causal = bool(causal)
        self.span = None if span is None else int(span)
        self.ln_1 = LayerNorm(layer_norm_epsilon, name="ln_1")
        self.qkv = keras.layers.Dense(3 * width, kernel_initializer=_init(), name="qkv")
        self.attention_output = keras.layers.Dense(width, kernel_initializer=_init(), name="attn_out")
        self.ln_2 = LayerNorm(layer_norm_epsilon, name="ln_2")
        self.mlp_in = keras.layers.Dense(self.intermediate_dim, kernel_initializer=_init(), name="mlp_in")
        self.mlp_out = keras.layers.Dense(width, kernel_initializer=_init(), name="mlp_out")
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, input_shape):
        self.ln_1.build([None, None, self.width])
        self.qkv.build([None, self.width])
        self.attention_output.build([None, self.width])
        self.ln_2.build([None, None, self.width])
        self.mlp_in.build([None, self.width])
        self.mlp_out.build([None, self.intermediate_dim])
        if self.span is not None:
            self.relative_bias = self.add_weight(
                name="relative_bias", shape=(self.num_heads, self.span + 1), initializer="zeros")
        super().build(input_shape)

    def _local_bias(self, length):
        """The relative bias of every (query i, key j) pair, ``[1, H, L, L]``: ``relative_bias
        [h, i - j]`` for ``0 <= i - j <= span``, 0 elsewhere (masked anyway). A matmul with a
        constant one-hot table, so its gradient is a MatMul (TFLite trains it)."""
        distance = np.arange(length)[:, None] - np.arange(length)[None, :]  # [L, L] i - j
        table = (distance.reshape(-1, 1) == np.arange(self.span + 1)[None, :]).astype(np.float32)
        bias = tf.matmul(self.relative_bias, tf.constant(table), transpose_b=True)  # [H, L*L]
        return tf.reshape(bias, [1, self.num_heads, length, length])

    def _allowed(self, length):
        """Which keys each query may attend to, ``[1, 1, L, L]`` (1: allowed)."""
        distance = np.arange(length)[:, None] - np.arange(length)[None, :]
        allowed = distance >= 0
        if self.span is not None:
            allowed &= distance <= self.span
        return allowed.astype(np.float32)[None, None]

    def _attention(self, x, mask):
        length = x.shape[1]
        head_dim = self.width // self.num_heads
        qkv = self.qkv(x)  # [batch, L, 3D]
        qkv = tf.reshape(qkv, [-1, length, 3, self.num_heads, head_dim])
        qkv = tf.transpose(qkv, [2, 0, 3, 1, 4])  # [3, batch, H, L, Dh]
        query, key, value = tf.unstack(qkv, 3, axis=0)  # [batch, H, L, Dh] each
        scores = tf.matmul(query, key, transpose_b=True) / math.sqrt(head_dim)  # [batch, H, L, L]
        allowed = tf.reshape(tf.cast(mask, scores.dtype), [-1, 1, 1, length])  # keys [batch, 1, 1, L]
        if self.causal:
            allowed = tf.constant(self._allowed(length)) * allowed
        if self.span is not None:
            scores = scores + self._local_bias(length)
        scores = scores + (1.0 - allowed) * -1e9
        probs = tf.nn.softmax(scores, axis=-1)
        context = tf.matmul(probs, value)  # [batch, H, L, Dh]
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, length, self.width])
        return self.attention_output(context)  # [batch, L, D]

    def call(self, inputs, mask, training=None):
        x = inputs
        x = x + self.dropout_layer(self._attention(self.ln_1(x), mask), training=training)
        h = self.mlp_out(gelu_tanh(self.mlp_in(self.ln_2(x))))  # [batch, L, D]
        return x + self.dropout_layer(h, training=training)

    def step(self, inputs, keys, values, key_mask):
        """One new position from the cached keys and values of the ``span`` positions before
        it (inference; needs ``span``): the same numbers as :meth:`call` gives the newest
        position of any window whose ``span`` previous positions are these.

        Args:
            inputs: float ``[batch, D]``, the new position's input.
            keys, values: float ``[batch, span, D]``, the previous positions' keys and values
                (heads side by side, oldest first).
            key_mask: float ``[batch, span]``, 1 where the previous position is a real event.

        Returns:
            ``(output [batch, D], keys, values)``: the new position's output and the caches
            for the next step (the oldest position dropped, this one appended).
        """
        if self.span is None:
            raise ValueError("step needs a block with a span")
        head_dim = self.width // self.num_heads
        query, key, value = tf.split(self.qkv(self.ln_1(inputs)), 3, axis=-1)  # [batch, D] each
        keys = tf.concat([keys, key[:, None]], axis=1)  # [batch, span + 1, D]
        values = tf.concat([values, value[:, None]], axis=1)
        allowed = tf.concat([key_mask, tf.ones_like(key_mask[:, :1])], axis=1)  # [batch, span + 1]

        def heads(x):  # [batch, n, D] -> [batch, H, n, Dh]
            return tf.transpose(tf.reshape(x, [-1, x.shape[1], self.num_heads, head_dim]),
                                [0, 2, 1, 3])

        scores = tf.matmul(heads(query[:, None]), heads(keys), transpose_b=True) / math.sqrt(
            head_dim)  # [batch, H, 1, span + 1]
        bias = tf.reverse(self.relative_bias, axis=[1])  # key k is span - k positions back
        scores = scores + bias[None, :, None, :]
        scores = scores + (1.0 - allowed[:, None, None, :]) * -1e9
        context = tf.matmul(tf.nn.softmax(scores, axis=-1), heads(values))  # [batch, H, 1, Dh]
        x = inputs + self.attention_output(tf.reshape(context, [-1, self.width]))
        x = x + self.mlp_out(gelu_tanh(self.mlp_in(self.ln_2(x))))
        return x, keys[:, 1:], values[:, 1:]

    def get_config(self):
        config = super().get_config()
        config.update(
            width=self.width,
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            causal=self.causal,
            span=self.span,
        )
        return config
