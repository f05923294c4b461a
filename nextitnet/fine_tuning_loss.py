"""The fine-tuning loss model of every mode (a :class:`~pitune_tf.common.loss_model.LossModel`
over a UAFModel): BPR / BCE / CE, the RL loss, MTL's source loss."""

from __future__ import annotations

from nextitnet import gates as gate_fns
from nextitnet.losses import (
    bce_loss,
    bpr_loss,
    classification_loss,
    masked_next_item_loss,
    policy_entropy,
    policy_reward,
    self_critical_loss,
)
from nextitnet.uaf_model import UAFModel
from pitune_tf.common.keras import tf
from pitune_tf.common.loss_model import LossModel

REWARD_PROTOCOLS = ("sampled", "full")
WARMUP_GATES = ("greedy", "sampled", "ones")  # how the blocks are gated during the RL warm-up
PAIRWISE = ("bpr", "bce")  # objectives on a (positive, sampled negative) pair
OBJECTIVES = PAIRWISE + ("softmax", "ce")


class UAFLearner(LossModel):
    """Fine-tunes a :class:`UAFModel` (UAF Eq. 8, 13-15).

    A batch is ``{"source": [batch, L] int, "target": [batch] int}``. Objectives:

    - ``bpr`` (UAF Eq. 8): ``-log sigmoid(o_{y+} - o_{y-})`` with one negative drawn uniformly
      from the valid target ids ``1 .. n_outputs - 1`` other than the positive;
    - ``bce``: the official code's binary cross-entropy on the same pair;
    - ``softmax``: softmax cross-entropy over every target item (not in the paper: the usual
      full-softmax fine-tuning of sequential recommenders; scored and rewarded by rank as bpr);
    - ``ce``: softmax cross-entropy over classes (profile prediction, 5.4).

    In ``rl`` mode the loss is ``L = L_main + beta * L_RL`` (UAF Eq. 15): the main loss on the
    sampled action's output, and the self-critical loss (UAF Eq. 14) with the rewards of
    ``nextitnet.losses.policy_reward`` (``reward_form`` "paper": UAF Eq. 13, ``1 - share^2``
    when correct and ``-gamma`` otherwise; "authors": ``1 - gamma (1 - share)^2`` when
    correct). "Correct" (``reward_protocol``) means the positive ranks in the top
    ``reward_top_k`` among itself and ``n_negatives`` uniformly drawn other target items
    ("sampled", the evaluation's protocol; the same draw for the sampled and the greedy
    action), or among all valid target items ("full"); ties count against the positive;
    for ``ce`` it is argmax = label. While :attr:`rl_active` is 0 (the first
    ``rl_warmup_epochs`` epochs, set by :meth:`start_epoch`; the authors' ``rl_start_iter``)
    only the main loss is optimized, with the blocks gated by ``rl_warmup_gates``: the
    greedy action, the sampled one, or every block fine-tuned ("ones", so that every
    F'_l has been trained once the policy starts comparing it with F_l). With
    ``entropy_weight`` w > 0 the RL term is ``L_RL - w H(p(pi))`` (BlockDrop's entropy
    bonus, not in UAF). Every RL
    step also returns ``correct`` (share of rows correct under the sampled action),
    ``advantage_nonzero`` (share of rows with ``R(A^s) != R(A_hat)``), ``correct_differs``
    (share of rows where only one of the two actions is correct: the rest of the non-zero
    advantages come from the usage term alone) and
    ``advantage_batch`` (1 when any row of the batch has a non-zero advantage; its epoch
    mean is the share of such batches).
    In ``mtl`` mode the masked next-item loss (UAF Eq. 5) is added with weight
    ``source_loss_weight``: in training on a batch of ``source_windows`` (as many rows as
    the target batch, drawn uniformly with replacement by the model's seeded generator, so
    the whole source set is trained on, not only the users with target rows); without
    windows, and in ``test_step``, on the target rows' own source sequences. ``compute_losses`` returns every term by name (the
    :class:`LossModel` base does the training step and keeps their epoch means); variables
    outside the mode's trainable set (e.g. the frozen blocks F_l) get no update.

    Args:
        model: UAFModel.
        objective: str. "bpr", "bce", "softmax" or "ce".
        gamma: float. gamma of UAF Eq. 13.
        beta: float. beta of UAF Eq. 15.
        reward_top_k: int. Rank cut-off that makes a recommendation "correct" in UAF Eq. 13.
        source_loss_weight: float. Weight of the source objective in ``mtl`` mode.
        reward_protocol: str. "sampled" or "full" (what "correct" ranks against).
        n_negatives: int. Sampled negatives of the "sampled" protocol (capped at the number
            of other valid target items).
        reward_form: str. "paper" (UAF Eq. 13) or "authors".
        rl_warmup_epochs: int. Epochs of main loss only before the RL term.
        rl_warmup_gates: str. Gates of the warm-up: "greedy", "sampled" or "ones".
        entropy_weight: float. Weight w of the policy's entropy bonus in the RL term.
        source_windows: int array [n, L + 1] or None. Pretraining windows of every source
            sequence (``mtl`` mode).
    """

    def __init__(
        self,
        model: UAFModel,
        objective="bpr",
        gamma=1.0,
        beta=1.0,
        reward_top_k=5,
        source_loss_weight=1.0,
        reward_protocol="sampled",
        n_negatives=99,
        reward_form="paper",
        rl_warmup_epochs=0,
        rl_warmup_gates="greedy",
        entropy_weight=0.0,
        source_windows=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if reward_protocol not in REWARD_PROTOCOLS:
            raise ValueError(f"reward_protocol must be one of {REWARD_PROTOCOLS}, got {reward_protocol!r}")
        if rl_warmup_gates not in WARMUP_GATES:
            raise ValueError(f"rl_warmup_gates must be one of {WARMUP_GATES}, got {rl_warmup_gates!r}")
        self.model = model
        self.objective = objective
        self.gamma = float(gamma)
        self.beta = float(beta)
        self.reward_top_k = int(reward_top_k)
        self.source_loss_weight = float(source_loss_weight)
        self.reward_protocol = reward_protocol
        self.n_negatives = max(1, min(int(n_negatives), model.n_outputs - 2))
        self.reward_form = reward_form
        self.rl_warmup_epochs = int(rl_warmup_epochs)
        self.rl_warmup_gates = rl_warmup_gates
        self.entropy_weight = float(entropy_weight)
        self.source_windows = (None if source_windows is None or not len(source_windows)
                               else tf.constant(source_windows, tf.int32))  # [n, L + 1]
        self.rl_active = tf.Variable(1.0, trainable=False, name="rl_active")  # 0 during warm-up

    def start_epoch(self, epoch) -> None:
        """Switches the RL term on from epoch ``rl_warmup_epochs`` (0-based) on."""
        self.rl_active.assign(float(epoch >= self.rl_warmup_epochs))

    def call(self, items, training=False):
        return self.model(items, training=training)

    def sample_negatives(self, positives):
        """One negative per row, uniform over valid ids 1..V except the positive. [batch]."""
        valid = self.model.n_outputs - 1  # V
        shift = self.model.rng.uniform(tf.shape(positives), minval=1, maxval=valid, dtype=tf.int32)
        return 1 + tf.math.floormod(positives - 1 + shift, valid)

    def sample_eval_negatives(self, positives):
        """``n_negatives`` distinct valid ids other than the positive per row, uniformly
        (the smallest of i.i.d. uniform keys over the other ids). [batch, n_negatives]."""
        others = self.model.n_outputs - 2  # valid ids 1..V minus the positive
        keys = self.model.rng.uniform([tf.shape(positives)[0], others])  # [batch, V - 1]
        offsets = tf.math.top_k(-keys, k=self.n_negatives).indices  # [batch, n]
        ids = offsets + 1
        return ids + tf.cast(ids >= positives[:, None], tf.int32)  # skip over the positive

    def main_loss(self, logits, targets, negatives):
        if self.objective in ("softmax", "ce"):
            return classification_loss(targets, logits)
        pos = tf.gather(logits, targets, axis=1, batch_dims=1)  # [batch]
        neg = tf.gather(logits, negatives, axis=1, batch_dims=1)  # [batch]
        return bpr_loss(pos, neg) if self.objective == "bpr" else bce_loss(pos, neg)

    def correct(self, logits, targets, negatives=None):
        """[batch] bool: the prediction counts as correct for the reward of UAF Eq. 13.

        ``negatives`` [batch, n]: the sampled candidates of the "sampled" protocol."""
        if self.objective == "ce":
            return tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), targets)
        pos = tf.gather(logits, targets, axis=1, batch_dims=1)[:, None]  # [batch, 1]
        if self.reward_protocol == "sampled":
            scores = tf.gather(logits, negatives, axis=1, batch_dims=1)  # [batch, n]
            rank = 1 + tf.reduce_sum(tf.cast(scores >= pos, tf.int32), axis=1)  # [batch]
        else:  # every valid id, the positive included (rank >= 1)
            rank = tf.reduce_sum(tf.cast(logits[:, 1:] >= pos, tf.int32), axis=1)  # [batch]
        return rank <= self.reward_top_k

    def source_loss(self, items, hidden, training):
        """MTL's masked next-item loss: on a drawn batch of ``source_windows`` in training,
        else on ``items`` (whose final hidden states are ``hidden`` [batch, L, k])."""
        model = self.model
        if training and self.source_windows is not None:
            n = tf.shape(self.source_windows)[0]
            pick = model.rng.uniform([tf.shape(items)[0]], minval=0, maxval=n, dtype=tf.int32)
            windows = tf.gather(self.source_windows, pick)  # [batch, L + 1]
            window_hidden = model.encode(windows[:, :-1], training=training)  # [batch, L, k]
            logits = model.backbone.next_item_logits(window_hidden)  # [batch, L, V]
            return masked_next_item_loss(windows[:, 1:], logits)
        source_logits = model.backbone.next_item_logits(hidden[:, :-1])  # [batch, L-1, V]
        return masked_next_item_loss(items[:, 1:], source_logits)

    def compute_losses(self, data, training):
        model = self.model
        items = tf.cast(data["source"], tf.int32)
        targets = tf.cast(data["target"], tf.int32)
        negatives = self.sample_negatives(targets) if self.objective in PAIRWISE else targets
        out = {}
        if model.mode == "rl" and training:
            policy_logits = model.policy_logits(items, training=True)  # [batch, N, 2]
            sampled = gate_fns.sample_actions(policy_logits, rng=model.rng)  # A^s
            greedy = tf.stop_gradient(gate_fns.greedy_actions(policy_logits))  # A_hat
            active = self.rl_active
            warmup = {"greedy": greedy, "sampled": sampled, "ones": tf.ones_like(greedy)}
            gates = active * sampled + (1.0 - active) * warmup[self.rl_warmup_gates]
            logits = model.head(model.encode(items, gates, training=True), items)
            greedy_logits = tf.stop_gradient(model.head(model.encode(items, greedy), items))
            candidates = (self.sample_eval_negatives(targets)
                          if self.reward_protocol == "sampled" and self.objective != "ce" else None)
            correct_s = self.correct(logits, targets, candidates)
            correct_g = self.correct(greedy_logits, targets, candidates)
            reward_s = policy_reward(correct_s, sampled, self.gamma, self.reward_form)
            reward_g = policy_reward(correct_g, greedy, self.gamma, self.reward_form)
            main = self.main_loss(logits, targets, negatives)
            rl = self_critical_loss(policy_logits, sampled, reward_s, reward_g)
            entropy = policy_entropy(policy_logits)
            nonzero = tf.cast(tf.not_equal(reward_s, reward_g), tf.float32)  # [batch]
            out.update(rl=rl, entropy=entropy, reward=tf.reduce_mean(reward_s), gate_mean=tf.reduce_mean(gates),
                       correct=tf.reduce_mean(tf.cast(correct_s, tf.float32)),
                       advantage_nonzero=tf.reduce_mean(nonzero),
                       correct_differs=tf.reduce_mean(tf.cast(tf.not_equal(correct_s, correct_g), tf.float32)),
                       advantage_batch=tf.reduce_max(nonzero), rl_active=active)
            total = main + self.beta * active * (rl - self.entropy_weight * entropy)
        else:
            gates = model.gates_for(items, training=training)
            hidden = model.encode(items, gates, training=training)  # [batch, L, k]
            logits = model.head(hidden, items)  # [batch, C]
            main = self.main_loss(logits, targets, negatives)
            total = main
            if gates is not None:
                out["gate_mean"] = tf.reduce_mean(gates)
            if model.mode == "mtl":
                source = self.source_loss(items, hidden, training)
                out["source_ce"] = source
                total = total + self.source_loss_weight * source
        out[self.objective] = main
        out["loss"] = total
        return out
