"""NDCG@k as a Keras metric, for training logs (PITuning Eq. 16)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf


@keras.saving.register_keras_serializable(package="pitune")
class NDCGAtK(keras.metrics.Metric):
    """Mean NDCG@k of the true intent among the logits (PITuning Eq. 16, one relevant intent).

    Per sample: 1 / log2(rank + 1) when rank <= k, else 0, with the 1-based pessimistic rank
    rank = #{j : logits[j] >= logits[label]} (the same rule as `pitune_tf.metrics.intent_metrics`).

    Args:
        k: int. The cutoff N of "NDCG(N)".
        name: str. Defaults to "ndcg_at_{k}" (no "@": it must be a valid summary name).
        dtype: the accumulators' dtype.

    Example:
        >>> model.compile(optimizer="adam", loss=..., metrics=[NDCGAtK(3), NDCGAtK(5)])
    """

    def __init__(self, k=5, name=None, dtype=None, **kwargs):
        super().__init__(name=name or f"ndcg_at_{k}", dtype=dtype, **kwargs)
        self.k = int(k)
        self.total = self.add_weight(name="total", initializer="zeros")
        self.count = self.add_weight(name="count", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        logits = tf.convert_to_tensor(y_pred)  # [batch, n_intents]
        labels = tf.cast(tf.reshape(y_true, [-1]), tf.int32)  # [batch]
        true_logit = tf.gather(logits, labels, axis=1, batch_dims=1)  # [batch]
        rank = tf.reduce_sum(
            tf.cast(logits >= true_logit[:, None], self.dtype), axis=1
        )  # [batch], 1-based
        gain = tf.where(
            rank <= self.k, 1.0 / (tf.math.log(rank + 1.0) / tf.math.log(2.0)), tf.zeros_like(rank)
        )  # [batch]
        if sample_weight is None:
            weight = tf.ones_like(gain)
        else:
            weight = tf.cast(tf.reshape(sample_weight, [-1]), self.dtype)  # [batch]
        self.total.assign_add(tf.reduce_sum(gain * weight))
        self.count.assign_add(tf.reduce_sum(weight))

    def result(self):
        return tf.math.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config.update({"k": self.k})
        return config
