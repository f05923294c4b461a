"""The Keras model that tunes one user's copy of the student (PITuning Section 3.3)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf
from pitune_tf.individual.focal import focal_loss
from pitune_tf.individual.unlearning import DEFAULT_MIN_LOG_PROB, unlearning_terms
from pitune_tf.losses import sparse_cross_entropy

MODES = ("unlearn", "finetune", "focal")


class IndividualTuner(keras.Model):
    """Per-user tuning of a model in place, with one of three objectives (``mode``).

    - ``"unlearn"``: adaptive unlearning, Eq. 11: ``lam * retain_ce - forget_ce`` against
      the frozen ``original`` model's outputs, on the intent masks set by
      :meth:`set_intent_masks` (R_i, F_i of Eq. 10). ``original`` is called with
      ``training=False`` outside the gradient tape.
    - ``"finetune"``: cross-entropy on the user's windows (Section 3.3.2).
    - ``"focal"``: focal loss (Figure 8's baseline) with ``focal_gamma``.

    Gradients go to ``network.trainable_variables`` only (so a partially frozen model, e.g.
    the PP teacher of Table 3, keeps its frozen layers). ``train_step`` returns every loss
    term by name; ``test_step`` always reports the cross-entropy as ``loss`` (what early
    stopping watches) and, in unlearn mode, the Eq. 11 terms.

    Args:
        network: keras.Model. Features dict -> logits ``[batch, n_intents]``; updated in place.
        n_intents: int. Width of the logits.
        original: keras.Model or None. The frozen original model of Eq. 11 (required for
            ``mode="unlearn"``); never updated.
        mode: str. One of ``"unlearn"``, ``"finetune"``, ``"focal"``.
        lam: float. lambda of Eq. 11 (Table 4: 1).
        min_log_prob: float. Floor on log q in Eq. 11's forgotten term (bounds it).
        focal_gamma: float. gamma of the focal loss.

    Example:
    >>> tuner = IndividualTuner(student, n_intents=18, mode="finetune")
    >>> tuner.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> tuner.fit(train_ds, validation_data=val_ds, epochs=5)
    """

    def __init__(self, network, n_intents, original=None, mode="finetune", lam=1.0,
                 min_log_prob=DEFAULT_MIN_LOG_PROB, focal_gamma=2.0, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "unlearn" and original is None:
            raise ValueError('mode="unlearn" needs the original model')
        self.network = network
        self.n_intents = n_intents
        self.original = original
        self.mode = mode
        self.lam = lam
        self.min_log_prob = min_log_prob
        self.focal_gamma = focal_gamma
        if original is not None:
            original.trainable = False
        self.retain_mask = tf.Variable(tf.ones([n_intents]), trainable=False, name="retain_mask")
        self.forget_mask = tf.Variable(tf.zeros([n_intents]), trainable=False, name="forget_mask")

    def set_intent_masks(self, retain_mask, forget_mask):
        """Sets R_i and F_i (float [n_intents], 1 on the set) without retracing."""
        self.retain_mask.assign(tf.cast(retain_mask, tf.float32))
        self.forget_mask.assign(tf.cast(forget_mask, tf.float32))

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)  # [batch, n_intents]

    def _objective(self, x, y, sample_weight, logits, original_logits):
        if self.mode == "unlearn":
            return unlearning_terms(
                logits, original_logits, self.retain_mask, self.forget_mask,
                lam=self.lam, min_log_prob=self.min_log_prob, sample_weight=sample_weight,
            )
        ce = sparse_cross_entropy(y, logits, sample_weight=sample_weight)
        if self.mode == "focal":
            focal = focal_loss(y, logits, gamma=self.focal_gamma, sample_weight=sample_weight)
            return {"loss": focal, "focal": focal, "ce": ce}
        return {"loss": ce, "ce": ce}

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        original_logits = None
        if self.mode == "unlearn":
            original_logits = self.original(x, training=False)  # frozen, outside the tape
        variables = self.network.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.network(x, training=True)  # [batch, n_intents]
            terms = self._objective(x, y, sample_weight, logits, original_logits)
        gradients = tape.gradient(terms["loss"], variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        if self.mode == "unlearn":
            probs = tf.nn.softmax(logits)
            terms["forget_prob"] = tf.reduce_mean(tf.reduce_sum(probs * self.forget_mask, -1))
        return terms

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        logits = self.network(x, training=False)
        out = {"loss": sparse_cross_entropy(y, logits, sample_weight=sample_weight)}
        if self.mode == "unlearn":
            original_logits = self.original(x, training=False)
            terms = self._objective(x, y, sample_weight, logits, original_logits)
            out.update(unlearn_loss=terms["loss"], retain_ce=terms["retain_ce"],
                       forget_ce=terms["forget_ce"])
        return out

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
