"""The training-step base of every objective in the project (the TFRS ``Model`` pattern)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf


class LossModel(keras.Model):
    """A Keras model whose subclasses implement only :meth:`compute_losses`.

    ``compute_losses(data, training) -> dict`` returns every loss term by name, with the
    optimized total under ``"loss"`` (other scalars, e.g. an accuracy or a gate mean, may be
    returned beside them). The base does the rest:

    - :meth:`train_batch`: the gradient tape, gradients of ``losses["loss"]`` over the
      explicit variable list :meth:`train_variables` (variables without a gradient, e.g. a
      frozen block, are skipped; the loss scaled and the gradients unscaled when the
      optimizer is a ``LossScaleOptimizer``, mixed_float16), one optimizer step; returns
      this batch's terms;
    - :meth:`train_step` / :meth:`test_step` (what ``fit`` / ``evaluate`` call): one
      ``keras.metrics.Mean`` tracker per returned name, so ``history.history`` holds epoch
      means, not the last batch's values.

    Frozen networks (a teacher, the original model of PITuning Eq. 11) are called inside
    ``compute_losses`` with ``training=False`` under ``tf.stop_gradient``; they are not in
    :meth:`train_variables`, so they never change.

    Example:

    >>> class MSE(LossModel):
    ...     def __init__(self, net, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.net = net
    ...     def compute_losses(self, data, training):
    ...         x, y = data
    ...         return {"loss": tf.reduce_mean((self.net(x, training=training) - y) ** 2)}
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._loss_trackers = _Trackers()

    def compute_losses(self, data, training) -> dict:
        raise NotImplementedError

    def train_variables(self) -> list:
        """The variables a training step updates (default: the trainable ones)."""
        return self.trainable_variables

    @property
    def metrics(self):
        return list(self._loss_trackers.by_name.values())

    def _track(self, values) -> dict:
        """Adds each value to its name's epoch-mean tracker; returns the running means."""
        trackers = self._loss_trackers.by_name
        for name, value in values.items():
            if name not in trackers:
                with tf.init_scope():  # a tracker made while tracing lives outside the graph
                    trackers[name] = keras.metrics.Mean(name=name)
            trackers[name].update_state(value)
        return {name: trackers[name].result() for name in values}

    def train_batch(self, data) -> dict:
        """One optimizer step on ``data``; returns this batch's terms (no tracking)."""
        scaled = isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            losses = self.compute_losses(data, training=True)
            loss = self.optimizer.get_scaled_loss(losses["loss"]) if scaled else losses["loss"]
        variables = self.train_variables()
        gradients = tape.gradient(loss, variables)
        if scaled:  # mixed_float16: the loss was scaled up against float16 underflow
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(gradients, variables) if g is not None]
        )
        return losses

    def train_step(self, data):
        return self._track(self.train_batch(data))

    def test_step(self, data):
        return self._track(self.compute_losses(data, training=False))


class _Trackers:
    """The loss trackers, out of Keras' attribute tracking: they are epoch accumulators reset
    by ``fit`` at every epoch, not state to checkpoint (a tracker made at the first step would
    otherwise be restored late from a checkpoint, into the middle of a resumed epoch)."""

    def __init__(self):
        self.by_name = {}
