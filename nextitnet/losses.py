"""Objectives of NextItNet pretraining and UAF fine-tuning (networks live elsewhere).

All losses are means over the real (weighted) examples and are written with builtin ops.
"""

from __future__ import annotations

from pitune_tf.common.keras import tf


def masked_next_item_loss(targets, logits, pad_id=0):
    """Autoregressive pretraining loss (UAF Eq. 4-5), averaged over real positions.

    ``-log p(x_i | x_{1:i-1})`` at every position whose target is not padding; positions
    whose target is ``pad_id`` contribute nothing (the official code does not mask them).

    Args:
        targets: [batch, L] int, the next item x_{i} at each position.
        logits: [batch, L, V] UAF Eq. 3 scores.
        pad_id: int. The padding id.
    Returns:
        scalar mean cross-entropy over the non-padding targets (0 when there are none).
    """
    targets = tf.cast(targets, tf.int32)
    logits = tf.convert_to_tensor(logits)
    weights = tf.cast(tf.not_equal(targets, pad_id), logits.dtype)  # [batch, L]
    log_z = tf.reduce_logsumexp(logits, axis=-1)  # [batch, L]
    picked = tf.reduce_sum(logits * tf.one_hot(targets, tf.shape(logits)[-1], dtype=logits.dtype), -1)
    nll = (log_z - picked) * weights  # [batch, L]
    return tf.math.divide_no_nan(tf.reduce_sum(nll), tf.reduce_sum(weights))


def bpr_loss(positive_scores, negative_scores):
    """Pairwise BPR (UAF Eq. 8): mean of ``-log sigmoid(o_{y+} - o_{y-})``. Inputs: [batch]."""
    return tf.reduce_mean(tf.nn.softplus(-(positive_scores - negative_scores)))


def bce_loss(positive_scores, negative_scores):
    """Binary cross-entropy of the official code: ``-log sigmoid(o+) - log(1 - sigmoid(o-))``,
    averaged over the batch. Inputs: [batch]."""
    return tf.reduce_mean(tf.nn.softplus(-positive_scores) + tf.nn.softplus(negative_scores))


def classification_loss(labels, logits):
    """Softmax cross-entropy for profile prediction (5.4). labels [batch] int, logits [batch, C]."""
    labels = tf.cast(labels, tf.int32)
    logits = tf.convert_to_tensor(logits, tf.float32)
    log_z = tf.reduce_logsumexp(logits, axis=-1)
    picked = tf.reduce_sum(logits * tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype), -1)
    return tf.reduce_mean(log_z - picked)


REWARD_FORMS = ("paper", "authors")


def policy_reward(correct, actions, gamma=1.0, form="paper"):
    """The reward of a fine-tuning policy A, with ``share = sum_l 1(A_l) / N`` (the share of
    fine-tuned blocks):

    - ``paper`` (UAF Eq. 13): ``1 - share^2`` if the recommendation is correct, else ``-gamma``;
    - ``authors`` (the authors' ``policy_rl_rec.py``): ``1 - gamma * (1 - share)^2`` if
      correct, else ``-gamma`` (their "usage" is ``sum(action) / N`` of the same 0/1 actions
      that gate the blocks, so this form rewards fine-tuning MORE blocks, the opposite of
      Eq. 13's incentive).

    Args:
        correct: [batch] bool.
        actions: [batch, N] float 0/1 (1 = fine-tune the block).
        gamma: float. Penalty for a wrong recommendation (1 in the paper).
        form: str. "paper" or "authors".
    Returns:
        [batch] float rewards.
    """
    if form not in REWARD_FORMS:
        raise ValueError(f"reward form must be one of {REWARD_FORMS}, got {form!r}")
    share = tf.reduce_mean(tf.cast(actions, tf.float32), axis=-1)  # [batch]
    hit = 1.0 - tf.square(share) if form == "paper" else 1.0 - float(gamma) * tf.square(1.0 - share)
    return tf.where(correct, hit, -float(gamma) * tf.ones_like(share))


def self_critical_loss(logits, sampled_actions, sampled_reward, greedy_reward):
    """SCST / REINFORCE loss (UAF Eq. 14), batch mean.

    ``L_RL = -sum_l log p(A^s_l) (R(A^s) - R(A_hat))`` with the greedy action's reward as
    the baseline; the rewards are constants (no gradient).

    Args:
        logits: [batch, N, 2] policy logits (index 1 = fine-tune).
        sampled_actions: [batch, N] float 0/1, A^s.
        sampled_reward: [batch] R(A^s).
        greedy_reward: [batch] R(A_hat).
    """
    log_p = tf.nn.log_softmax(tf.convert_to_tensor(logits), axis=-1)  # [batch, N, 2]
    actions = tf.cast(sampled_actions, tf.int32)
    log_p_action = tf.reduce_sum(log_p * tf.one_hot(actions, 2, dtype=log_p.dtype), -1)  # [batch, N]
    advantage = tf.stop_gradient(tf.cast(sampled_reward - greedy_reward, log_p.dtype))  # [batch]
    return -tf.reduce_mean(tf.reduce_sum(log_p_action, axis=-1) * advantage)
