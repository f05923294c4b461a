"""Adaptive unlearning loss (PITuning Eq. 11), from TFLite-builtin ops only.

    L_un = lambda * L_CE(M_r, R_i) - L_CE(M_f, F_i)                              (Eq. 11)

Paper symbols -> arguments: M (the updated model's output) -> ``logits``; the original
(frozen, distilled) model's output -> ``original_logits``; R_i, F_i -> ``retain_mask``,
``forget_mask`` (1 on the intents of the set); lambda -> ``lam``.

Reading of L_CE: "minimize the loss between the output from the updated model and the
original model on the intents to retain while maximizing [it] on the intents to forget"
(Section 3.3.1). With p0 = softmax(original_logits), q = softmax(logits), and p0|R, q|R the
same distributions renormalized over the retained intents, on each of the user's windows:

    retain_ce = - sum_{i in R} p0|R_i * log q|R_i
    forget_ce = - sum_{i in F} p0_i * max(log q_i, min_log_prob)

both averaged over the windows (weighted by ``sample_weight``). The retained term compares
the distributions *within* R: it is minimal (its gradient is zero) when the updated model
ranks and weighs the retained intents exactly as the original does, whatever mass moves off
F. (The unnormalized split -sum_R p0 log q is not an anchor: at the original model its
gradient pushes the mass of F onto R, i.e. it forgets too; we measured that it did not keep
the retained shares any closer than lambda = 0.) The forgotten term pushes the probability
of F down, weighted by how much the original model put on each forgotten intent.

Boundedness: the forgotten term is maximized, and -log q_i grows without bound as q_i -> 0.
Two guards keep unlearning from diverging: (1) ``log q_i`` is clipped from below at
``min_log_prob`` (default log(1e-3)) inside the forgotten term, so forget_ce is at most
``-min_log_prob * sum_F p0_i`` and its gradient is exactly zero once an intent's probability
is below 1e-3 (``tf.maximum`` passes no gradient to the clipped side); (2) the trainer runs a
fixed, small number of unlearning steps (``IndividualConfig.unlearn_steps``, default 10).

Only builtin ops (reduce_logsumexp, exp, maximum, multiply, add, reduce_sum, divide): no
SparseSoftmaxCrossEntropyWithLogits, so ``tflite/`` reuses this function in its on-device
``unlearn`` signature.
"""

from __future__ import annotations

import math

from pitune_tf.common.keras import tf
from pitune_tf.losses import log_softmax, weighted_mean

DEFAULT_MIN_LOG_PROB = math.log(1e-3)


_MASKED = -1e9  # logit offset that removes an intent from a softmax (exp underflows to 0)


def _masked_log_softmax(logits, mask):
    """log-softmax over the intents where ``mask`` is 1 (others get ~-1e9; an empty mask
    gives a finite result that the caller multiplies by 0)."""
    return log_softmax(logits + (1.0 - mask) * _MASKED)


def unlearning_terms(
    logits,
    original_logits,
    retain_mask,
    forget_mask,
    lam=1.0,
    min_log_prob=DEFAULT_MIN_LOG_PROB,
    sample_weight=None,
):
    """Eq. 11 with its terms: dict ``loss``, ``retain_ce``, ``forget_ce`` (scalars).

    Args:
        logits: float [batch, n_intents]. The model being unlearned.
        original_logits: float [batch, n_intents]. The frozen original model (no gradient).
        retain_mask: float [n_intents] or [batch, n_intents]. 1 on R_i.
        forget_mask: float [n_intents] or [batch, n_intents]. 1 on F_i.
        lam: float. lambda of Eq. 11 (Table 4: 1).
        min_log_prob: float. Floor on log q inside the forgotten term (see module doc).
        sample_weight: float [batch] or None. Per-window weight (0 for padding rows).
    """
    logits = tf.cast(logits, tf.float32)
    original_logits = tf.stop_gradient(tf.cast(original_logits, tf.float32))
    retain_mask = tf.cast(retain_mask, tf.float32)
    forget_mask = tf.cast(forget_mask, tf.float32)
    log_q = log_softmax(logits)  # [batch, n_intents]
    p0 = tf.exp(log_softmax(original_logits))  # [batch, n_intents]
    log_q_r = _masked_log_softmax(logits, retain_mask)  # log q|R, [batch, n_intents]
    p0_r = tf.exp(_masked_log_softmax(original_logits, retain_mask))  # p0|R
    retain_ce = -tf.reduce_sum(p0_r * retain_mask * log_q_r, axis=-1)  # [batch]
    clipped = tf.maximum(log_q, tf.cast(min_log_prob, tf.float32))  # bounded, see doc
    forget_ce = -tf.reduce_sum(p0 * forget_mask * clipped, axis=-1)  # [batch]
    retain_ce = weighted_mean(retain_ce, sample_weight)
    forget_ce = weighted_mean(forget_ce, sample_weight)
    return {"loss": lam * retain_ce - forget_ce, "retain_ce": retain_ce, "forget_ce": forget_ce}


def unlearning_loss(*args, **kwargs):
    """PITuning Eq. 11, L_un = lam * retain_ce - forget_ce (a scalar): the ``loss`` of
    :func:`unlearning_terms`, which takes the same arguments."""
    return unlearning_terms(*args, **kwargs)["loss"]
