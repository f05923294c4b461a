"""Focal loss (Lin et al. 2017), the class-imbalance baseline of PITuning's Figure 8.

    FL = - (1 - q_y)^gamma * log q_y,    q = softmax(logits)

averaged over windows (weighted by ``sample_weight``); ``gamma = 0`` is cross-entropy.
Builtin ops only (one-hot mask instead of a gather / SparseSoftmaxCrossEntropyWithLogits).
"""

from __future__ import annotations

from pitune_tf.common.keras import tf
from pitune_tf.losses import log_softmax, weighted_mean


def focal_loss(labels, logits, gamma=2.0, sample_weight=None):
    """Mean focal loss.

    Args:
        labels: int [batch]. True intent ids.
        logits: float [batch, n_intents].
        gamma: float. Focusing parameter (0 = cross-entropy).
        sample_weight: float [batch] or None.
    """
    logits = tf.cast(logits, tf.float32)
    n_intents = tf.shape(logits)[-1]
    log_q = log_softmax(logits)  # [batch, n]
    one_hot = tf.one_hot(tf.cast(labels, tf.int32), n_intents, dtype=tf.float32)  # [batch, n]
    log_q_y = tf.reduce_sum(one_hot * log_q, axis=-1)  # [batch]
    per_window = -tf.pow(1.0 - tf.exp(log_q_y), gamma) * log_q_y  # [batch]
    return weighted_mean(per_window, sample_weight)
