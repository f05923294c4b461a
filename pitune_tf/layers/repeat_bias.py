"""A learned logit for the intent of the window's newest event (a copy term)."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.keras import keras, tf


@keras.saving.register_keras_serializable(package="pitune")
class RepeatBias(keras.layers.Layer):
    """``logits_i += w_i * [i = c(e_L)] * m_L``: a learned bonus for repeating the intent of
    the newest event.

    ``c`` maps each event id to its catalogue intent (the event's most frequent intent in the
    population data), ``e_L`` is the newest event of the window (position L-1: windows are
    left-padded), ``m_L`` its mask and ``w`` [N_I] is learned, starting at ``initial_weight``
    (the population stage gives :func:`repeat_log_odds` of its training windows, so the
    model starts with the repeat statistics it would otherwise have to discover in a few
    small-learning-rate epochs) or 0 (the model starts as without the term). Not in PITuning: on logs where consecutive events share an intent
    (the "intent of the last event" heuristic reaches 0.92 Prec_w on the Tsinghua sample) a
    network that must rediscover the copy through its embeddings, backbone and IAT loses to
    the heuristic; this term gives it the copy directly. ``--no-repeat-term`` removes it.

    Args:
        event_intent: sequence of int [N_E]. Catalogue intent id of each event id.
        n_intents: int. N_I, the number of logits.
        initial_weight: sequence of float [N_I] or None (zeros). The starting ``w``.

    Example:
        >>> layer = RepeatBias([0, 2, 1], n_intents=3)
        >>> layer(tf.constant([[1, 2]]), tf.constant([[1.0, 1.0]])).shape
        TensorShape([1, 3])
    """

    def __init__(self, event_intent, n_intents, initial_weight=None, **kwargs):
        super().__init__(**kwargs)
        self.event_intent = [int(i) for i in event_intent]
        self.n_intents = int(n_intents)
        self.initial_weight = None if initial_weight is None else [float(w) for w in initial_weight]
        if self.initial_weight is not None and len(self.initial_weight) != self.n_intents:
            raise ValueError(f"initial_weight needs {self.n_intents} values, got {len(self.initial_weight)}")
        if self.event_intent and not 0 <= min(self.event_intent) <= max(self.event_intent) < self.n_intents:
            raise ValueError(f"event_intent ids must be in [0, {self.n_intents})")
        table = np.zeros((len(self.event_intent), self.n_intents), np.float32)
        table[np.arange(len(self.event_intent)), self.event_intent] = 1.0
        self._table = table  # [N_E, N_I] one-hot of each event's intent (a constant)

    def build(self, input_shape):
        initializer = ("zeros" if self.initial_weight is None
                       else keras.initializers.Constant(self.initial_weight))
        self.repeat_weight = self.add_weight(
            name="repeat_weight", shape=(self.n_intents,), initializer=initializer, trainable=True)
        super().build(input_shape)

    def call(self, events, mask):
        newest = tf.gather(self._table, events[:, -1])  # [batch, N_I] one-hot of c(e_L)
        return newest * self.repeat_weight[None, :] * tf.cast(mask[:, -1:], newest.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(event_intent=list(self.event_intent), n_intents=self.n_intents,
                      initial_weight=self.initial_weight)
        return config


def repeat_log_odds(labels, last_intents, n_intents, pseudo_count=1.0):
    """The starting ``w`` of :class:`RepeatBias`: per intent i, ``max(0, log P(y = i | c(e_L)
    = i) - log P(y = i))`` on training windows (counts smoothed by ``pseudo_count``); 0 for an
    intent never seen as the newest event's.

    Args:
        labels: int array [n]. The windows' next intents.
        last_intents: int array [n]. The catalogue intent of each window's newest event.
        n_intents: int. N_I.
        pseudo_count: float. Additive smoothing of both frequencies.
    Returns:
        float array [N_I].
    """
    labels = np.asarray(labels, np.int64)
    last_intents = np.asarray(last_intents, np.int64)
    prior = (np.bincount(labels, minlength=n_intents) + pseudo_count) / (len(labels) + n_intents * pseudo_count)
    after = np.bincount(last_intents, minlength=n_intents).astype(np.float64)  # windows with c(e_L) = i
    repeats = np.bincount(last_intents[labels == last_intents], minlength=n_intents)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_repeat = (repeats + pseudo_count * prior) / (after + pseudo_count)
        return np.where(after > 0, np.maximum(0.0, np.log(p_repeat) - np.log(prior)), 0.0)
