"""A small stand-in for the student (same input dict and output) used by the TFLite tests
where the real student would make a test slow, and to test the export machinery itself."""

from __future__ import annotations

import numpy as np

from pitune_tf.keras import keras, tf

VOCAB = {"location": 6, "weekday": 8, "slot": 25, "event": 11}


class HandLayerNorm(keras.layers.Layer):
    """Layer norm from reduce ops (tf_keras' fused one needs Flex ops to train)."""

    def build(self, input_shape):
        self.gamma = self.add_weight(name="gamma", shape=input_shape[-1:], initializer="ones")
        self.beta = self.add_weight(name="beta", shape=input_shape[-1:], initializer="zeros")

    def call(self, x):
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + 1e-5) * self.gamma + self.beta


def build_standin(history=5, n_intents=7, width=8, seed=0):
    """Features dict -> logits [batch, n_intents]: embeddings, a causal attention block,
    tanh-GELU MLP, hand-written layer norm, last position by a one-hot mask."""
    keras.utils.set_random_seed(seed)
    inputs = {k: keras.Input((history,), dtype="int32", name=k) for k in VOCAB}
    inputs["mask"] = keras.Input((history,), dtype="float32", name="mask")
    embedded = [keras.layers.Embedding(v, width, name=f"{k}_embedding")(inputs[k]) for k, v in VOCAB.items()]
    h = keras.layers.Concatenate()(embedded)  # [B, L, 4w]
    h = h * inputs["mask"][:, :, None]
    a = keras.layers.MultiHeadAttention(2, width, name="attention")(h, h, use_causal_mask=True)
    h = HandLayerNorm(name="norm_1")(h + a)
    f = keras.layers.Dense(2 * width, activation=lambda x: tf.nn.gelu(x, approximate=True))(h)
    h = HandLayerNorm(name="norm_2")(h + keras.layers.Dense(4 * width)(f))
    last = tf.one_hot(history - 1, history)  # [L]
    pooled = tf.reduce_sum(h * last[None, :, None], axis=1)  # [B, 4w]
    logits = keras.layers.Dense(n_intents, name="head")(pooled)
    return keras.Model(inputs, logits, name="standin")


def standin_cross_entropy(labels, logits, sample_weight=None):
    logp = logits - tf.reduce_logsumexp(logits, axis=-1, keepdims=True)
    nll = -tf.reduce_sum(tf.one_hot(labels, tf.shape(logits)[-1]) * logp, axis=-1)
    if sample_weight is None:
        return tf.reduce_mean(nll)
    return tf.reduce_sum(nll * sample_weight) / tf.maximum(tf.reduce_sum(sample_weight), 1e-12)


def standin_unlearning_loss(logits, original_logits, retain_mask, forget_mask, lam=1.0,
                            sample_weight=None):
    p_o = tf.nn.softmax(original_logits, axis=-1)
    logp = logits - tf.reduce_logsumexp(logits, axis=-1, keepdims=True)
    retain = -tf.reduce_sum(p_o * retain_mask * logp, axis=-1)
    forget = -tf.reduce_sum(p_o * forget_mask * logp, axis=-1)
    w = tf.ones_like(retain) if sample_weight is None else sample_weight
    den = tf.maximum(tf.reduce_sum(w), 1e-12)
    retain = tf.reduce_sum(retain * w) / den
    forget = tf.minimum(tf.reduce_sum(forget * w) / den, 5.0)
    return {"loss": lam * retain - forget, "retain_loss": retain, "forget_loss": forget}


def random_features(n, history=5, seed=0):
    rng = np.random.default_rng(seed)
    features = {k: rng.integers(1, v, (n, history)).astype(np.int32) for k, v in VOCAB.items()}
    mask = np.ones((n, history), np.float32)
    for i in range(n):  # left padding
        pad = rng.integers(0, history - 1)
        mask[i, :pad] = 0.0
        for k in VOCAB:
            features[k][i, :pad] = 0
    features["mask"] = mask
    return features
