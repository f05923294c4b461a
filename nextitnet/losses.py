"""Objectives of NextItNet pretraining and UAF fine-tuning (networks live elsewhere).

All losses are means over the real (weighted) examples and are written with builtin ops.
"""

from __future__ import annotations

from pitune_tf.common.keras import tf
from pitune_tf.common.vocabulary import PAD_ID


def masked_next_item_loss(targets, logits, pad_id=PAD_ID):
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


def _real_rows(hidden, targets, pad_id):
    """The hidden states and targets of the real (non-padding) targets, flattened:
    ([n, k], [n]) from [batch, L, k] and [batch, L]."""
    targets = tf.reshape(tf.cast(targets, tf.int32), [-1])  # [batch * L]
    hidden = tf.reshape(hidden, [-1, tf.shape(hidden)[-1]])  # [batch * L, k]
    real = tf.where(tf.not_equal(targets, pad_id))[:, 0]  # [n]
    return tf.gather(hidden, real), tf.gather(targets, real)


def full_next_item_loss(hidden, targets, kernel, bias, chunk_rows=1024, pad_id=PAD_ID, jit=False):
    """The exact loss of :func:`masked_next_item_loss` (UAF Eq. 3-5, softmax over every item)
    from the hidden states, in bounded memory and one pass.

    The logits ``hidden @ kernel + bias`` of the real positions are made ``chunk_rows`` rows at
    a time (``[chunk_rows, V]``, never ``[batch, L, V]``), and each chunk's gradients
    (``softmax - onehot`` times ``kernel^T`` and ``hidden^T``) are taken there and then, so the
    backward pass only scales them: 3 matmuls per chunk, no one-hot, no stored logits.
    Equal to the reference up to float round-off. With ``jit``, the element-wise part of a
    chunk (bias, softmax, its loss and ``softmax - onehot``, the bias gradient) is one
    XLA-compiled function: two passes over the ``[chunk_rows, V]`` logits instead of about
    eight separate ops (the matmuls stay outside, on TF's faster CPU kernels).

    Args:
        hidden: [batch, L, k] final hidden states E_l.
        targets: [batch, L] int, the next items (``pad_id`` = not scored).
        kernel: [k, V] softmax weights W; bias: [V] b (UAF Eq. 3).
        chunk_rows: int. Rows of logits made at once.
        pad_id: int. The padding id.
        jit: bool. XLA-compile the element-wise part of each chunk.
    Returns:
        scalar mean cross-entropy over the real targets (0 when there are none).
    """
    rows, row_targets = _real_rows(hidden, targets, pad_id)  # [n, k], [n]
    return _fused_softmax_ce(rows, tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias),
                             row_targets, int(chunk_rows), bool(jit))


def _softmax_ce_grad(logits, bias, targets):
    """``(sum of -log softmax(logits + bias)[target], softmax - onehot, its column sums)``
    for logits [c, V] and targets [c]: the element-wise part of one chunk."""
    logits = logits + bias  # [c, V]
    top = tf.reduce_max(logits, axis=-1, keepdims=True)  # [c, 1]
    exp = tf.exp(logits - top)
    total = tf.reduce_sum(exp, axis=-1, keepdims=True)  # [c, 1]
    picked = tf.gather(logits, targets[:, None], batch_dims=1)  # [c, 1]
    nll = tf.reduce_sum(tf.math.log(total) + top - picked)
    d_logits = exp / total - tf.one_hot(targets, tf.shape(logits)[-1], dtype=logits.dtype)  # [c, V]
    return nll, d_logits, tf.reduce_sum(d_logits, axis=0)


_softmax_ce_grad_xla = tf.function(_softmax_ce_grad, jit_compile=True)


def _fused_softmax_ce(rows, kernel, bias, row_targets, chunk_rows, jit=False):
    """Mean softmax CE of ``rows @ kernel + bias`` against ``row_targets``; gradients made in
    the forward pass, chunk by chunk (see :func:`full_next_item_loss`)."""
    elementwise = _softmax_ce_grad_xla if jit else _softmax_ce_grad

    @tf.custom_gradient
    def loss_fn(rows, kernel, bias):
        n = tf.shape(rows)[0]
        n_chunks = (n + chunk_rows - 1) // chunk_rows

        def chunk(i, total, d_kernel, d_bias, d_rows):
            h = rows[i * chunk_rows:(i + 1) * chunk_rows]  # [c, k]
            t = row_targets[i * chunk_rows:(i + 1) * chunk_rows]  # [c]
            nll, d_logits, d_bias_chunk = elementwise(tf.matmul(h, kernel), bias, t)  # d_logits [c, V]
            d_rows = d_rows.write(i, tf.matmul(d_logits, kernel, transpose_b=True))  # [c, k]
            d_kernel += tf.matmul(h, d_logits, transpose_a=True)  # [k, V]
            return i + 1, total + nll, d_kernel, d_bias + d_bias_chunk, d_rows

        _, total, d_kernel, d_bias, d_rows = tf.while_loop(
            lambda i, *_: i < n_chunks, chunk,
            [tf.constant(0), tf.zeros([], rows.dtype), tf.zeros_like(kernel), tf.zeros_like(bias),
             tf.TensorArray(rows.dtype, size=n_chunks, infer_shape=False,
                            element_shape=tf.TensorShape([None, rows.shape[-1]]))])
        d_rows = tf.cond(n > 0, lambda: tf.reshape(d_rows.concat(), tf.shape(rows)),
                         lambda: tf.zeros_like(rows))  # [n, k]
        count = tf.cast(n, rows.dtype)

        def grad(upstream):
            scale = tf.math.divide_no_nan(upstream, count)
            return d_rows * scale, d_kernel * scale, d_bias * scale

        return tf.math.divide_no_nan(total, count), grad

    return loss_fn(rows, kernel, bias)


def sampled_next_item_loss(hidden, targets, kernel, bias, n_sampled, sampler="log_uniform",
                           first_item=1, pad_id=PAD_ID, seed=None):
    """Sampled-softmax estimate of the next-item loss (UAF Eq. 5) in bounded memory.

    One set of ``n_sampled`` distinct negatives, drawn from the ids ``first_item .. V - 1``
    (never padding) and shared by every position of the batch, is scored against each real
    position beside its target: ``[n, 1 + n_sampled]`` logits from the gathered columns of
    ``kernel``; the full ``[batch, L, V]`` scores are never made. Each logit has
    ``log Q(item)`` (the sampler's expected count) subtracted (logQ correction, Jean et al.,
    2015, as ``tf.nn.sampled_softmax_loss``), and a negative equal to the row's target is
    removed (an accidental hit). ``log_uniform`` (Zipfian) fits ids ordered most frequent
    first, as the source vocabulary is; ``uniform`` otherwise. When the sample is every item,
    this is the softmax over ids ``first_item .. V - 1``.

    Args:
        hidden: [batch, L, k]; targets: [batch, L] int (``pad_id`` = not scored).
        kernel: [k, V] softmax weights; bias: [V].
        n_sampled: int. Negatives per batch (at most ``V - first_item``).
        sampler: str. ``log_uniform`` or ``uniform``.
        first_item: int. The smallest id a negative may have (1: all but padding).
        pad_id: int. The padding id. seed: int or None, the sampler's op seed.
    Returns:
        scalar mean sampled cross-entropy over the real targets (0 when there are none).
    """
    rows, row_targets = _real_rows(hidden, targets, pad_id)  # [n, k], [n]
    kernel = tf.convert_to_tensor(kernel)
    n_classes = int(kernel.shape[-1]) - int(first_item)
    samplers = {"log_uniform": tf.random.log_uniform_candidate_sampler,
                "uniform": tf.random.uniform_candidate_sampler}
    if sampler not in samplers:
        raise ValueError(f"sampler must be one of {sorted(samplers)}, got {sampler!r}")
    if not 0 < n_sampled <= n_classes:
        raise ValueError(f"n_sampled must be in 1 .. {n_classes}, got {n_sampled}")
    sampled, true_expected, sampled_expected = samplers[sampler](
        true_classes=tf.cast(row_targets - first_item, tf.int64)[:, None], num_true=1,
        num_sampled=int(n_sampled), unique=True, range_max=n_classes, seed=seed)
    sampled = tf.cast(sampled, tf.int32) + first_item  # [S]
    true_logits = (tf.reduce_sum(rows * tf.transpose(tf.gather(kernel, row_targets, axis=1)), -1)
                   + tf.gather(bias, row_targets) - tf.math.log(true_expected[:, 0]))  # [n]
    sampled_logits = (tf.matmul(rows, tf.gather(kernel, sampled, axis=1)) + tf.gather(bias, sampled)
                      - tf.math.log(sampled_expected))  # [n, S]
    hit = tf.equal(row_targets[:, None], sampled[None, :])  # [n, S]
    sampled_logits = tf.where(hit, tf.cast(rows.dtype.min, rows.dtype), sampled_logits)
    logits = tf.concat([true_logits[:, None], sampled_logits], axis=1)  # [n, 1 + S]
    nll = -tf.nn.log_softmax(logits)[:, 0]  # [n]
    return tf.math.divide_no_nan(tf.reduce_sum(nll), tf.cast(tf.size(nll), nll.dtype))


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


def policy_entropy(logits):
    """Mean entropy of the per-block (freeze, fine-tune) distributions ``p(pi)``: logits
    [batch, N, 2] -> scalar, ``-sum_i p_i log p_i`` averaged over rows and blocks (at most
    ``log 2``). Not in UAF: BlockDrop's entropy bonus (Wu et al., 2018), which UAF-RL's
    reward and SCST loss follow, keeping the policy from collapsing onto one action."""
    log_p = tf.nn.log_softmax(tf.convert_to_tensor(logits), axis=-1)  # [batch, N, 2]
    return -tf.reduce_mean(tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1))
