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
        **kwargs,
    ):
        super().__init__(**kwargs)
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        self.width = width
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim or 4 * width
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.causal = bool(causal)
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
        super().build(input_shape)

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
            allowed = tf.constant(np.tril(np.ones((1, 1, length, length), np.float32))) * allowed
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

    def get_config(self):
        config = super().get_config()
        config.update(
            width=self.width,
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            causal=self.causal,
        )
        return config
