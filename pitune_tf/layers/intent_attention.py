"""Intention Attention Network (IAT) (PITuning Eq. 3, Sec. 3.2.3)."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.keras import keras, tf


def _prelu(x, alpha):
    return tf.maximum(x, 0.0) + alpha * tf.minimum(x, 0.0)


@keras.saving.register_keras_serializable(package="pitune")
class IntentAttention(keras.layers.Layer):
    """Intent-wise weighted pooling of the history, DIN local activation unit (PITuning Eq. 3).

    H_w[i] = sum_j a(h_j, E_i) h_j, where E_i (``intent_embedding``, the paper's learnable
    E_i in R^{N_I x 4d}) is intent i's vector, h_j the backbone output H_t at history position
    j, and a(.) the local activation unit of DIN: an MLP with PReLU activations over
    ``[E_i, h_j, E_i * h_j, E_i - h_j]`` ending in one unit, whose output is the weight w_ij.
    As in DIN the weights are not normalized (``normalize="none"``, PITuning Eq. 3 as written);
    ``normalize="mean"`` divides the weighted sum by the number of real positions (the same
    divisor for every intent of a window, so the intents' relative intensities stay; the
    sum over up to L positions otherwise starts training with very large logits), and
    ``"softmax"`` normalizes the weights over the real positions. Padding gets weight 0.

    The first MLP layer is one kernel over the 4D-wide concatenation, evaluated without
    materializing the ``[batch, N_I, L, 4D]`` concatenation: its four D-row blocks act on
    E_i, h_j, the product and the difference, so ``W [E; h; E*h; E-h] = (W_e + W_d) E
    + (W_h - W_d) h + (diag(E) W_p)^T h`` (same numbers, a quarter of the memory and only
    builtin TFLite ops: MatMul, Reshape, Transpose).

    With ``recency`` (a streaming student's; not in PITuning) a learned bias per intent and
    position from the newest, ``recency_bias [N_I, recency]``, is added to the scores of the
    last ``recency`` positions: the history H_t of a streaming backbone carries no absolute
    position, so without it the pooling could not tell the newest event from an older one.

    Args:
        n_intents: int. N_I, the number of intent ids (logit columns).
        units: tuple of int. Hidden sizes of the activation unit (DIN: 80, 40).
        normalize: str. "none" (DIN, PITuning Eq. 3; default), "mean" or "softmax".
        recency: int or None. Positions (from the newest) with a learned score bias.

    Call args:
        history: float ``[batch, L, D]`` (H_t).
        mask: float ``[batch, L]``, 1 for real events.
        return_attention: bool. Also return the weights w ``[batch, N_I, L]``.

    Returns:
        H_w ``[batch, N_I, D]`` (and w when asked).
    """

    def __init__(self, n_intents, units=(80, 40), normalize="none", recency=None, **kwargs):
        super().__init__(**kwargs)
        if normalize not in ("none", "mean", "softmax"):
            raise ValueError(f"normalize must be 'none', 'mean' or 'softmax', got {normalize!r}")
        if not units:
            raise ValueError("IntentAttention needs at least one hidden unit size")
        self.n_intents = n_intents
        self.units = tuple(int(u) for u in units)
        self.normalize = normalize
        self.recency = None if recency is None else int(recency)
        self.hidden_layers = [
            keras.layers.Dense(u, name=f"dense_{i + 1}") for i, u in enumerate(self.units[1:])
        ]
        self.output_layer = keras.layers.Dense(1, name="weight")

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.intent_embedding = self.add_weight(
            name="intent_embedding",
            shape=(self.n_intents, width),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )
        self.first_kernel = self.add_weight(
            name="first_kernel",
            shape=(4 * width, self.units[0]),
            initializer="glorot_uniform",
        )
        self.first_bias = self.add_weight(
            name="first_bias", shape=(self.units[0],), initializer="zeros"
        )
        self.alphas = [
            self.add_weight(name=f"prelu_{i}", shape=(u,), initializer="zeros")
            for i, u in enumerate(self.units)
        ]
        size = self.units[0]
        for layer in self.hidden_layers:
            layer.build([None, size])
            size = layer.units
        self.output_layer.build([None, size])
        if self.recency is not None:
            self.recency_bias = self.add_weight(
                name="recency_bias", shape=(self.n_intents, self.recency), initializer="zeros")
        super().build(input_shape)

    def biased_scores(self, scores):
        """``scores [batch, N_I, L]`` plus the recency bias on the last ``recency`` positions
        (a matmul with a constant placement, so that TFLite trains the bias)."""
        if self.recency is None:
            return scores
        length = scores.shape[-1]
        place = np.zeros((self.recency, length), np.float32)  # bias column p -> position
        place[np.arange(self.recency), length - self.recency + np.arange(self.recency)] = 1.0
        return scores + tf.expand_dims(tf.matmul(self.recency_bias, tf.constant(place)), 0)

    def attention_weights(self, history, mask):
        """w_ij of PITuning Eq. 3: ``[batch, N_I, L]``, zero at padding."""
        return self.normalize_scores(self.biased_scores(self.scores(history)), mask)

    def scores(self, history):
        """The activation unit's output a(h_j, E_i) before masking and normalization,
        ``[batch, N_I, L]``: one position's scores depend on that position alone (a streaming
        model caches them)."""
        width = history.shape[-1]
        length = history.shape[1]
        n_units = self.units[0]
        intents = self.intent_embedding  # [N_I, D]
        w_e, w_h, w_p, w_d = tf.split(self.first_kernel, 4, axis=0)  # 4 x [D, U]
        a_e = tf.matmul(intents, w_e + w_d)  # [N_I, U]
        a_h = tf.matmul(tf.reshape(history, [-1, width]), w_h - w_d)  # [batch*L, U]
        a_h = tf.reshape(a_h, [-1, length, 1, n_units])  # [batch, L, 1, U]
        per_intent = tf.expand_dims(intents, 2) * tf.expand_dims(w_p, 0)  # [N_I, D, U]
        per_intent = tf.reshape(tf.transpose(per_intent, [1, 0, 2]), [width, -1])  # [D, N_I*U]
        a_p = tf.matmul(tf.reshape(history, [-1, width]), per_intent)  # [batch*L, N_I*U]
        a_p = tf.reshape(a_p, [-1, length, self.n_intents, n_units])  # [batch, L, N_I, U]
        z = a_p + a_h + tf.reshape(a_e, [1, 1, self.n_intents, n_units]) + self.first_bias  # [batch, L, N_I, U]
        z = _prelu(z, self.alphas[0])
        for layer, alpha in zip(self.hidden_layers, self.alphas[1:]):
            z = _prelu(layer(z), alpha)  # [batch, L, N_I, U_k]
        return tf.transpose(tf.squeeze(self.output_layer(z), -1), [0, 2, 1])  # [batch, N_I, L]

    def normalize_scores(self, scores, mask):
        """w_ij from :meth:`scores` ``[batch, N_I, L]`` and the mask ``[batch, L]``."""
        mask = tf.expand_dims(tf.cast(mask, scores.dtype), 1)  # [batch, 1, L]
        if self.normalize == "softmax":
            scores = scores + (1.0 - mask) * -1e9
            return tf.nn.softmax(scores, axis=-1) * mask
        if self.normalize == "mean":
            count = tf.maximum(tf.reduce_sum(mask, axis=-1, keepdims=True), 1.0)  # [batch, 1, 1]
            return scores * mask / count
        return scores * mask

    def pool(self, scores, history, mask):
        """H_w from cached :meth:`scores` ``[batch, N_I, L']`` of the positions of ``history``
        ``[batch, L', D]`` and their mask ``[batch, L']`` (a streaming model's step)."""
        weights = self.normalize_scores(self.biased_scores(scores), mask)
        return tf.matmul(weights, history)  # [batch, N_I, D]

    def call(self, history, mask, return_attention=False):
        weights = self.attention_weights(history, mask)  # [batch, N_I, L]
        pooled = tf.matmul(weights, history)  # [batch, N_I, D]
        if return_attention:
            return pooled, weights
        return pooled

    def get_config(self):
        config = super().get_config()
        config.update(n_intents=self.n_intents, units=list(self.units), normalize=self.normalize,
                      recency=self.recency)
        return config
