"""A learned mixture with "repeat the newest event's intent" (a copy term)."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.keras import keras, tf


@keras.saving.register_keras_serializable(package="pitune")
class RepeatMixture(keras.layers.Layer):
    """``P(i) = rho_c [i = c] + (1 - rho_c) softmax(z)_i`` with ``c = c(e_L)``; returns
    ``log P`` [batch, N_I] as the model's logits.

    ``z`` are the network's logits, ``c`` maps each event id to its catalogue intent (the
    event's most frequent intent in the population data), ``e_L`` is the newest event of the
    window (position L-1: windows are left-padded) and ``rho_c = sigmoid(a_c) m_L`` the learned
    probability of repeating intent c (0 on an all-padding window). ``a`` [N_I] starts at
    ``initial_logit`` (the population stage gives :func:`repeat_logits` of its training
    windows, the logit of P(y = c | c(e_L) = c)), so the model starts with the repeat
    statistics it would otherwise have to discover in a few small-learning-rate epochs.

    Not in PITuning. On logs where consecutive events share an intent (the "intent of the last
    event" heuristic reaches 0.92 Prec_w on the Tsinghua sample) the paper's network, which
    must rediscover the copy through its embeddings, backbone and IAT, loses to the heuristic;
    an additive logit cannot express "repeat with probability rho whatever the context
    prefers", a mixture can (RepeatNet's repeat/explore split; the synthetic generator's own
    ``repeat_prob`` term). ``--no-repeat-term`` removes it.

    Args:
        event_intent: sequence of int [N_E]. Catalogue intent id of each event id.
        n_intents: int. N_I, the number of logits.
        initial_logit: sequence of float [N_I] or None. The starting ``a`` (None: -4, a
            repeat probability of 0.018).

    Example:
        >>> layer = RepeatMixture([0, 2, 1], n_intents=3)
        >>> layer(tf.zeros([1, 3]), tf.constant([[1, 2]]), tf.constant([[1.0, 1.0]])).shape
        TensorShape([1, 3])
    """

    def __init__(self, event_intent, n_intents, initial_logit=None, **kwargs):
        super().__init__(**kwargs)
        self.event_intent = [int(i) for i in event_intent]
        self.n_intents = int(n_intents)
        self.initial_logit = None if initial_logit is None else [float(w) for w in initial_logit]
        if self.initial_logit is not None and len(self.initial_logit) != self.n_intents:
            raise ValueError(f"initial_logit needs {self.n_intents} values, got {len(self.initial_logit)}")
        if self.event_intent and not 0 <= min(self.event_intent) <= max(self.event_intent) < self.n_intents:
            raise ValueError(f"event_intent ids must be in [0, {self.n_intents})")
        table = np.zeros((len(self.event_intent), self.n_intents), np.float32)
        table[np.arange(len(self.event_intent)), self.event_intent] = 1.0
        self._table = table  # [N_E, N_I] one-hot of each event's intent (a constant)

    def build(self, input_shape):
        start = [-4.0] * self.n_intents if self.initial_logit is None else self.initial_logit
        self.repeat_logit = self.add_weight(
            name="repeat_logit", shape=(self.n_intents,),
            initializer=keras.initializers.Constant(start), trainable=True)
        super().build(input_shape)

    def call(self, logits, events, mask):
        # No slicing of a tensor that carries a gradient: StridedSliceGrad is not a TFLite
        # builtin op, and the phone's train / unlearn signatures differentiate this layer.
        newest = tf.gather(self._table, events[:, -1])  # [batch, N_I] one-hot of c(e_L)
        rho = tf.reduce_sum(newest * tf.sigmoid(self.repeat_logit), axis=-1, keepdims=True)
        rho = rho * tf.cast(mask[:, -1:], rho.dtype)  # [batch, 1]
        probs = rho * newest + (1.0 - rho) * tf.nn.softmax(logits, axis=-1)  # [batch, N_I]
        return tf.math.log(tf.maximum(probs, 1e-9))

    def get_config(self):
        config = super().get_config()
        config.update(event_intent=list(self.event_intent), n_intents=self.n_intents,
                      initial_logit=self.initial_logit)
        return config


def repeat_logits(labels, last_intents, n_intents, pseudo_count=1.0):
    """The starting ``a`` of :class:`RepeatMixture`: per intent c, the logit of
    P(y = c | c(e_L) = c) on training windows, smoothed toward 0.5 by ``pseudo_count``
    windows and clipped to [-4, 4]; -4 for an intent never seen as the newest event's.

    Args:
        labels: int array [n]. The windows' next intents.
        last_intents: int array [n]. The catalogue intent of each window's newest event.
        n_intents: int. N_I.
        pseudo_count: float. Windows of smoothing.
    Returns:
        float array [N_I].
    """
    labels = np.asarray(labels, np.int64)
    last_intents = np.asarray(last_intents, np.int64)
    after = np.bincount(last_intents, minlength=n_intents).astype(np.float64)  # windows with c(e_L) = c
    repeats = np.bincount(last_intents[labels == last_intents], minlength=n_intents).astype(np.float64)
    p = (repeats + 0.5 * pseudo_count) / (after + pseudo_count)
    logit = np.clip(np.log(p) - np.log1p(-p), -4.0, 4.0)
    return np.where(after > 0, logit, -4.0)
