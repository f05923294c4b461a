"""Teacher training with L_pop (Eq. 5) through ``fit``."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf
from pitune_tf.losses import sparse_cross_entropy


class PopulationTrainer(keras.Model):
    """Trains an IntentPredictor with L_pop = L_CE(m, L) + L_M (Eq. 5).

    Each ``train_step`` masks a fresh random set of history events (only their event field,
    :class:`EventMasking`), runs the model once on that input, and adds the intent
    cross-entropy and the reconstruction cross-entropy over the masked positions.
    ``test_step`` reports the intent loss on the unmasked input and the reconstruction loss
    on a fixed masking. Reported: ``loss``, ``intent_loss``, ``reconstruction_loss``
    (0 without reconstruction), ``accuracy``.

    Args:
        model: IntentPredictor (built with ``reconstruction=True`` for Eq. 5's L_M).
        reconstruction: bool. Add L_M.
        reconstruction_weight: float. Weight of L_M (Eq. 5: 1).
    """

    def __init__(self, model, reconstruction=True, reconstruction_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        if reconstruction and not model.reconstruction:
            raise ValueError("the model was built without the reconstruction head")
        self.model = model
        self.reconstruction = reconstruction
        self.reconstruction_weight = reconstruction_weight
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "intent_loss", "reconstruction_loss")
        }
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [*self.trackers.values(), self.accuracy]

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def compute_losses(self, features, labels, training, mask_seed=None):
        """Loss terms as a dict (and the intent logits), one forward pass."""
        outputs = self.model.forward(
            features, training=training, mask_events=self.reconstruction, mask_seed=mask_seed
        )
        terms = {"intent_loss": sparse_cross_entropy(labels, outputs["logits"])}
        if self.reconstruction:
            n_events = outputs["event_logits"].shape[-1]
            terms["reconstruction_loss"] = sparse_cross_entropy(
                tf.reshape(features["event"], [-1]),
                tf.reshape(outputs["event_logits"], [-1, n_events]),
                sample_weight=tf.reshape(outputs["masked"], [-1]),
            )
        else:
            terms["reconstruction_loss"] = tf.constant(0.0)
        terms["loss"] = terms["intent_loss"] + self.reconstruction_weight * terms[
            "reconstruction_loss"
        ]
        return terms, outputs["logits"]

    def _report(self, terms, labels, logits):
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        self.accuracy.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        features, labels = data
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            terms, logits = self.compute_losses(features, labels, training=True)
        grads = tape.gradient(terms["loss"], variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        self.optimizer.apply_gradients(pairs)
        return self._report(terms, labels, logits)

    def test_step(self, data):
        features, labels = data
        outputs = self.model.forward(features, training=False)
        terms = {"intent_loss": sparse_cross_entropy(labels, outputs["logits"])}
        if self.reconstruction:
            masked_terms, _ = self.compute_losses(
                features, labels, training=False, mask_seed=tf.constant([0, 0], tf.int64)
            )
            terms["reconstruction_loss"] = masked_terms["reconstruction_loss"]
        else:
            terms["reconstruction_loss"] = tf.constant(0.0)
        terms["loss"] = terms["intent_loss"] + self.reconstruction_weight * terms[
            "reconstruction_loss"
        ]
        return self._report(terms, labels, outputs["logits"])
