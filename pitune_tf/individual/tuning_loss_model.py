"""The loss model of per-user tuning (a :class:`~pitune_tf.common.loss_model.LossModel`):
one user's copy of the student trained in place with the unlearning, fine-tuning or focal
objective (PITuning Section 3.3)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf
from pitune_tf.common.loss_model import LossModel
from pitune_tf.individual.focal import focal_loss
from pitune_tf.individual.unlearning import DEFAULT_MIN_LOG_PROB, unlearning_terms
from pitune_tf.losses import sparse_cross_entropy
from pitune_tf.models.train_parts import part_variables

MODES = ("unlearn", "finetune", "focal")


class TuningLossModel(LossModel):
    """Per-user tuning of a model in place, with one of three objectives (``mode``).

    A batch is ``(features, labels[, sample_weight])``, except in ``"unlearn"`` mode, where
    it is ``(features, original_logits[, sample_weight])`` like the on-device ``unlearn``
    signature:

    - ``"unlearn"``: adaptive unlearning, PITuning Eq. 11: ``lam * retain_ce - forget_ce``
      against the original (shipped) model's logits M_o on the batch, on the intent masks
      set by :meth:`set_intent_masks` (R_i, F_i of PITuning Eq. 10);
    - ``"finetune"``: cross-entropy on the user's windows (Section 3.3.2);
    - ``"focal"``: focal loss (Figure 8's baseline) with ``focal_gamma``.

    Gradients go to ``network.trainable_variables`` only (so a partially frozen model, e.g.
    the PP teacher of Table 3, keeps its frozen layers). Every loss term is returned by name
    (:class:`~pitune_tf.common.loss_model.LossModel`).

    Args:
        network: keras.Model. Features dict -> logits ``[batch, n_intents]``; updated in place.
        n_intents: int. Width of the logits.
        mode: str. One of ``"unlearn"``, ``"finetune"``, ``"focal"``.
        lam: float. lambda of PITuning Eq. 11 (Table 4: 1).
        min_log_prob: float. Floor on log q in PITuning Eq. 11's forgotten term (bounds it).
        focal_gamma: float. gamma of the focal loss.
        train_part: str or None. Train only this part of the student
            (:func:`pitune_tf.models.train_parts.part_variables`: ``head``, ``top1``, ...,
            ``all``), as the phone's ``train_<part>`` signatures do; None: every trainable
            variable of ``network``.

    Example:
    >>> tuner = TuningLossModel(student, n_intents=18, mode="finetune")
    >>> tuner.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> tuner.train_batch((features, labels, weights))["loss"]
    """

    def __init__(self, network, n_intents, mode="finetune", lam=1.0,
                 min_log_prob=DEFAULT_MIN_LOG_PROB, focal_gamma=2.0, train_part=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.network = network
        self.n_intents = n_intents
        self.mode = mode
        self.lam = lam
        self.min_log_prob = min_log_prob
        self.focal_gamma = focal_gamma
        self.train_part = train_part
        self.retain_mask = tf.Variable(tf.ones([n_intents]), trainable=False, name="retain_mask")
        self.forget_mask = tf.Variable(tf.zeros([n_intents]), trainable=False, name="forget_mask")

    def set_intent_masks(self, retain_mask, forget_mask):
        """Sets R_i and F_i (float [n_intents], 1 on the set) without retracing."""
        self.retain_mask.assign(tf.cast(retain_mask, tf.float32))
        self.forget_mask.assign(tf.cast(forget_mask, tf.float32))

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)  # [batch, n_intents]

    def train_variables(self):
        if self.train_part is None:
            return self.network.trainable_variables
        return part_variables(self.network, self.train_part)

    def compute_losses(self, data, training):
        x, target, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        logits = self.network(x, training=training)  # [batch, n_intents]
        if self.mode == "unlearn":
            terms = unlearning_terms(
                logits, target, self.retain_mask, self.forget_mask, lam=self.lam,
                min_log_prob=self.min_log_prob, sample_weight=sample_weight,
            )
            probs = tf.nn.softmax(logits)
            terms["forget_prob"] = tf.reduce_mean(tf.reduce_sum(probs * self.forget_mask, -1))
            return terms
        ce = sparse_cross_entropy(target, logits, sample_weight=sample_weight)
        if self.mode == "focal":
            focal = focal_loss(target, logits, gamma=self.focal_gamma, sample_weight=sample_weight)
            return {"loss": focal, "focal": focal, "ce": ce}
        return {"loss": ce, "ce": ce}

    def reset_optimizer(self):
        """Zeros the optimizer's slots and step count (a fresh optimizer for the next user,
        without retracing the train function)."""
        for variable in self.optimizer.variables:
            variable.assign(tf.zeros_like(variable))

    def get_config(self):
        return {
            "n_intents": self.n_intents,
            "mode": self.mode,
            "lam": self.lam,
            "min_log_prob": self.min_log_prob,
            "focal_gamma": self.focal_gamma,
        }
