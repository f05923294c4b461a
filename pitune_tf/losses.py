"""Loss functions of PITuning's population stage, written from TFLite-builtin ops.

``sparse_cross_entropy`` avoids ``SparseSoftmaxCrossEntropyWithLogits`` (a Flex op in TFLite):
log-softmax through ``reduce_logsumexp`` and a one-hot mask.
"""

from __future__ import annotations

from pitune_tf.common.keras import tf


def log_softmax(logits):
    """``logits - logsumexp(logits)`` over the last axis."""
    return logits - tf.reduce_logsumexp(logits, axis=-1, keepdims=True)


def weighted_mean(values, sample_weight=None):
    """``mean(values)``, or ``sum(w * values) / max(sum(w), 1e-9)`` with ``sample_weight``.

    On several replicas of a tf.distribute strategy (each holding a slice of the global
    batch, whose losses ``LossModel`` weighs by the replica's share of the rows), the weighted
    mean is taken over the global batch: this replica's ``sum(w * values)`` over all
    replicas' ``sum(w)``, scaled by the inverse of its share, so the weighted replicas add up
    to the global batch's weighted mean (e.g. the reconstruction loss over the masked
    positions of PITuning Eq. 5)."""
    if sample_weight is None:
        return tf.reduce_mean(values)
    weight = tf.cast(sample_weight, values.dtype)
    total, count = tf.reduce_sum(weight * values), tf.reduce_sum(weight)
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return total / tf.maximum(count, 1e-9)
    size = tf.cast(tf.size(values), values.dtype)
    count, all_sizes = context.all_reduce(tf.distribute.ReduceOp.SUM, [count, size])
    return total / tf.maximum(count, 1e-9) * tf.math.divide_no_nan(all_sizes, size)


def sparse_cross_entropy(labels, logits, sample_weight=None):
    """Mean cross-entropy of integer ``labels [n]`` under ``logits [n, C]``.

    With ``sample_weight [n]`` the mean is ``sum(w * nll) / max(sum(w), 1e-9)``: samples of
    weight 0 (padding, unmasked positions) do not count, and an all-zero weight gives 0.
    """
    logits = tf.convert_to_tensor(logits)
    n_classes = logits.shape[-1]
    one_hot = tf.one_hot(tf.cast(labels, tf.int32), n_classes, dtype=logits.dtype)
    nll = -tf.reduce_sum(one_hot * log_softmax(logits), axis=-1)  # [n]
    return weighted_mean(nll, sample_weight)


def kl_divergence(teacher_logits, student_logits, temperature=1.0):
    """Mean over samples of KL(softmax(M_t / eps) || softmax(M_s / eps)) (L_soft, PITuning Eq. 6).
    """
    teacher_log_p = log_softmax(teacher_logits / temperature)
    student_log_p = log_softmax(student_logits / temperature)
    kl = tf.reduce_sum(tf.exp(teacher_log_p) * (teacher_log_p - student_log_p), axis=-1)
    return tf.reduce_mean(kl)


def distillation_loss(labels, student_logits, teacher_logits, alpha=0.5, temperature=1.0):
    """L_D of PITuning Eqs. 6-7 with each term by name.

    ``soft_loss = KL(softmax(M_t/eps) || softmax(M_s/eps)) * eps^2`` (the eps^2 keeps the
    soft gradients' scale independent of the temperature, Hinton et al.),
    ``hard_loss = CE(M_s, L)``, ``loss = alpha * soft_loss + (1 - alpha) * hard_loss``.

    Args:
        labels: int ``[batch]``, L (true intent ids).
        student_logits: float ``[batch, N_I]``, M_s.
        teacher_logits: float ``[batch, N_I]``, M_t.
        alpha: float. alpha (paper: 0.5).
        temperature: float. eps (paper: 1).

    Returns:
        dict with ``loss``, ``soft_loss``, ``hard_loss`` (scalars).
    """
    soft = kl_divergence(teacher_logits, student_logits, temperature) * temperature**2
    hard = sparse_cross_entropy(labels, student_logits)
    return {"loss": alpha * soft + (1.0 - alpha) * hard, "soft_loss": soft, "hard_loss": hard}
