"""From policy logits to the per-block gate I_l(E^u) of UAF Eq. 6.

Every function takes logits ``[batch, N, 2]`` (index 0 = freeze, 1 = fine-tune) from
``PolicyNetwork`` and returns gates ``[batch, N]`` in [0, 1].
"""

from __future__ import annotations

from pitune_tf.common.keras import tf


def gumbel_softmax_gates(logits, temperature=10.0, noise=None, rng=None):
    """UAF-Hard (UAF Eq. 9-10): straight-through Gumbel-softmax.

    Forward: ``z = one_hot(argmax(g + log pi))`` (UAF Eq. 9), exactly 0/1. Backward: gradients of
    the relaxation ``alpha = softmax((log pi + g) / tau)`` (UAF Eq. 10).

    Args:
        logits: [batch, N, 2] policy logits; ``log pi = log_softmax(logits)``.
        temperature: float. tau (10 in the paper).
        noise: optional [batch, N, 2] Gumbel(0, 1) samples g (for tests); drawn when None.
        rng: optional ``tf.random.Generator`` for the noise.
    Returns:
        (gates [batch, N] one-hot "fine-tune" component, alpha [batch, N, 2]).
    """
    log_pi = tf.nn.log_softmax(logits, axis=-1)  # [batch, N, 2]
    if noise is None:
        shape = tf.shape(logits)
        u = rng.uniform(shape, minval=1e-10, maxval=1.0) if rng is not None else tf.random.uniform(
            shape, minval=1e-10, maxval=1.0
        )
        noise = -tf.math.log(-tf.math.log(u))  # g = -log(-log u)
    alpha = tf.nn.softmax((log_pi + noise) / temperature, axis=-1)  # UAF Eq. 10, [batch, N, 2]
    z = tf.one_hot(tf.argmax(log_pi + noise, axis=-1), 2, dtype=alpha.dtype)  # UAF Eq. 9
    straight_through = alpha + tf.stop_gradient(z - alpha)  # forward z, backward d alpha
    return straight_through[..., 1], alpha


def soft_gates(logits):
    """UAF-Soft (UAF Eq. 12): ``I_l = sigmoid(v_l)`` with ``v_l`` = fine-tune minus freeze logit."""
    return tf.sigmoid(logits[..., 1] - logits[..., 0])  # [batch, N]


def greedy_actions(logits):
    """Inference for hard and RL: ``argmax_i p(pi_i)`` as float 0/1 [batch, N]."""
    return tf.cast(logits[..., 1] > logits[..., 0], logits.dtype)


def sample_actions(logits, rng=None):
    """UAF-RL exploration: ``A^s_l ~ p(pi)`` per block, float 0/1 [batch, N]."""
    p_tune = tf.sigmoid(logits[..., 1] - logits[..., 0])  # [batch, N]
    shape = tf.shape(p_tune)
    u = rng.uniform(shape) if rng is not None else tf.random.uniform(shape)
    return tf.cast(u < p_tune, logits.dtype)


def hashed_bernoulli_gates(items, n_blocks, seed=0):
    """UAF-Random (5.2.1): Bernoulli(0.5) gates fixed by the seed and the user's sequence.

    The same sequence gets the same gates in training and at inference (the paper keeps
    the random seed fixed for both). items: [batch, L] int. Returns float 0/1 [batch, N].
    """
    text = tf.strings.reduce_join(tf.strings.as_string(items), axis=1, separator=",")  # [batch]
    gates = [
        tf.strings.to_hash_bucket_fast(tf.strings.join([f"{seed}|{block}|", text]), 2)
        for block in range(n_blocks)
    ]
    return tf.cast(tf.stack(gates, axis=1), tf.float32)  # [batch, N]
