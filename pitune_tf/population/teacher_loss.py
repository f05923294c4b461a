"""The teacher's loss model: L_pop (PITuning Eq. 5) through ``fit``, the intent and the
masked-event-reconstruction task over an IntentPredictor."""

from __future__ import annotations

from pitune_tf.common.keras import tf
from pitune_tf.common.loss_model import LossModel
from pitune_tf.losses import sparse_cross_entropy
from pitune_tf.metrics.batch_accuracy import batch_accuracy

EVAL_MASK_SEED = (0, 0)  # the fixed masking the reconstruction loss is evaluated on


class PopulationTrainer(LossModel):
    """Trains an IntentPredictor with L_pop = L_CE(m, L) + L_M (PITuning Eq. 5).

    The task, not the network, does the masking: in training each batch masks a fresh random
    set of history events (only their event field, the model's :class:`EventMasking` layer
    with its step-counted seed). As in PITuning Algorithm 1 (lines 4-6), the intent
    cross-entropy is taken on a clean pass over the unmasked input and the reconstruction
    cross-entropy (the model's reconstruction head on the hidden states H_t, over the masked
    positions) on a second, masked pass (``passes="two"``, the default); ``passes="one"``
    takes both from the masked pass (cheaper: one forward pass; the intent head then also
    sees masked histories). With ``training=False`` the intent loss
    is taken on the unmasked input and the reconstruction loss on a fixed masking
    (``mask_seed = [0, 0]``). Returned: ``loss``, ``intent_loss``, ``reconstruction_loss``
    (0 without reconstruction), ``accuracy`` (batch mean).

    Args:
        model: IntentPredictor (built with ``reconstruction=True`` for PITuning Eq. 5's L_M:
            it holds the mask embedding E_m and the reconstruction MLP).
        reconstruction: bool. Add L_M.
        reconstruction_weight: float. Weight of L_M (PITuning Eq. 5: 1).
        passes: str. ``"two"`` (PITuning Algorithm 1: clean pass for the intent loss, masked
            pass for L_M) or ``"one"`` (both losses from the masked pass).

    Example:

    >>> trainer = PopulationTrainer(build_teacher(preset("tiny"), sizes))
    >>> trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> trainer.fit(dataset_of_features_and_labels, epochs=1)
    """

    dense_gradients = True  # the same Adam step on any number of replicas (LossModel)

    def __init__(self, model, reconstruction=True, reconstruction_weight=1.0, passes="two",
                 **kwargs):
        super().__init__(**kwargs)
        if reconstruction and not model.reconstruction:
            raise ValueError("the model was built without the reconstruction head")
        if passes not in ("one", "two"):
            raise ValueError(f"passes must be 'one' or 'two', got {passes!r}")
        self.passes = passes
        self.model = model
        self.reconstruction = reconstruction
        self.reconstruction_weight = reconstruction_weight

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def train_variables(self):
        return self.model.trainable_variables

    def masked_forward(self, features, training, mask_seed=None):
        """The model on ``features`` with random events masked: ``logits [batch, N_I]``,
        ``event_logits [batch, L, N_E]``, ``masked [batch, L]`` (the chosen positions)."""
        model = self.model
        mask = tf.cast(features["mask"], tf.float32)  # [batch, L]
        event_embeddings, masked = model.masking(
            model.embedding.embed_events(features["event"]), mask, seed=mask_seed
        )  # [batch, L, d], [batch, L]
        outputs = model.forward(features, training=training, event_embeddings=event_embeddings,
                                return_hidden=True)
        event_logits = model.reconstruction_head(outputs["hidden"])  # [batch, L, N_E]
        return {"logits": outputs["logits"], "event_logits": event_logits, "masked": masked}

    def reconstruction_loss(self, features, outputs):
        """L_M of PITuning Eq. 5: event cross-entropy over the masked positions."""
        n_events = outputs["event_logits"].shape[-1]
        return sparse_cross_entropy(
            tf.reshape(features["event"], [-1]),
            tf.reshape(outputs["event_logits"], [-1, n_events]),
            sample_weight=tf.reshape(outputs["masked"], [-1]),
        )

    def compute_losses(self, data, training):
        features, labels = data
        if training and self.reconstruction:
            masked = self.masked_forward(features, training=True)  # Algorithm 1, lines 5-6
            reconstruction = self.reconstruction_loss(features, masked)
            logits = (masked["logits"] if self.passes == "one"  # Algorithm 1, line 4:
                      else self.model.forward(features, training=True)["logits"])  # clean
        else:
            logits = self.model.forward(features, training=training)["logits"]
            if self.reconstruction:
                masked = self.masked_forward(
                    features, training=False, mask_seed=tf.constant(EVAL_MASK_SEED, tf.int64)
                )
                reconstruction = self.reconstruction_loss(features, masked)
            else:
                reconstruction = tf.constant(0.0)
        intent = sparse_cross_entropy(labels, logits)
        return {
            "loss": intent + self.reconstruction_weight * reconstruction,
            "intent_loss": intent,
            "reconstruction_loss": reconstruction,
            "accuracy": batch_accuracy(labels, logits),
        }

