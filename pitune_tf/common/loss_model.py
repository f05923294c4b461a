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
      means, not the last batch's values;
    - under a tf.distribute strategy with several replicas (each given its slice of the
      global batch, ``pitune_tf.common.distribution.distribute``), each replica's loss is
      weighed by its share of the batch, so the step is the one-device step on the global
      batch (for losses that are means over the batch's rows).

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

    # Make embedding (IndexedSlices) gradients dense before the optimizer step. tf-keras
    # clips (clipnorm) an IndexedSlices gradient by the norm of its rows as they come, a row
    # repeated k times counted k times (rows [3], [4] of one index: norm 5, not 7), and sums
    # the repeats only afterwards; so the step depends on how the rows were grouped, and a
    # gradient that is one row per index on one device (a position embedding gathered once
    # for the batch) arrives with one repeat per replica under a strategy. Dense gradients
    # are clipped by their true norm: the same step on any number of replicas.
    dense_gradients = False

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

    def _track(self, values, share=None) -> dict:
        """Adds each value to its name's epoch-mean tracker; returns the running means.

        ``share``: this replica's share of the global batch (see :meth:`_replica_share`);
        each replica's value then counts ``share * replicas`` times, so the epoch mean is
        the mean of the global batches' means, as on one device."""
        trackers = self._loss_trackers.by_name
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for name, value in values.items():
            if name not in trackers:
                with tf.init_scope():  # a tracker made while tracing lives outside the graph
                    trackers[name] = keras.metrics.Mean(name=name)
            if share is None:
                trackers[name].update_state(value)
            else:  # an empty replica (NaN mean) counts 0 times
                value = tf.cast(value, tf.float32)
                trackers[name].update_state(tf.where(share > 0, value, 0.0),
                                            sample_weight=share * replicas)
        return {name: trackers[name].result() for name in values}

    @staticmethod
    def _replica_share(data):
        """This replica's rows / the global batch's rows (all replicas summed), a float32
        scalar; None on one replica. The optimizer sums the replicas' gradients, so each
        replica's mean loss is weighed by its share: the sum is the gradient of the global
        batch's mean loss (``pitune_tf.common.distribution``)."""
        if tf.distribute.get_strategy().num_replicas_in_sync == 1:
            return None
        rows = tf.cast(tf.shape(tf.nest.flatten(data)[0])[0], tf.float32)
        total = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, rows)
        return tf.math.divide_no_nan(rows, total)

    def train_batch(self, data, share=None) -> dict:
        """One optimizer step on ``data``; returns this batch's terms (no tracking).

        ``share``: this replica's share of the global batch (None: one replica)."""
        scaled = isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            losses = self.compute_losses(data, training=True)
            loss = losses["loss"]
            if share is not None:  # an empty replica contributes nothing
                loss = tf.where(share > 0, tf.cast(loss, tf.float32) * share, 0.0)
            loss = self.optimizer.get_scaled_loss(loss) if scaled else loss
        variables = self.train_variables()
        gradients = tape.gradient(loss, variables)
        if scaled:  # mixed_float16: the loss was scaled up against float16 underflow
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        if self.dense_gradients:
            gradients = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                         for g in gradients]
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(gradients, variables) if g is not None]
        )
        return losses

    def train_step(self, data):
        share = self._replica_share(data)
        return self._track(self.train_batch(data, share), share)

    def test_step(self, data):
        return self._track(self.compute_losses(data, training=False), self._replica_share(data))


class _Trackers:
    """The loss trackers, out of Keras' attribute tracking: they are epoch accumulators reset
    by ``fit`` at every epoch, not state to checkpoint (a tracker made at the first step would
    otherwise be restored late from a checkpoint, into the middle of a resumed epoch)."""

    def __init__(self):
        self.by_name = {}
