"""Precision or recall, weighted or macro, from a confusion matrix accumulated over batches.

One family: :class:`ConfusionMatrixMetric` takes ``quantity`` and ``average``; the four named
metrics (PITuning Eqs. 12-15) fix both and take only ``num_classes``, ``name`` and ``dtype``.
"""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf

QUANTITIES = ("precision", "recall")
AVERAGES = ("weighted", "macro")


def _default_name(quantity, average):
    """The key of ``intent_metrics``: "prec_w", "rec_w", "prec_m" or "rec_m"."""
    return {"precision": "prec", "recall": "rec"}[quantity] + "_" + average[0]


@keras.saving.register_keras_serializable(package="pitune")
class ConfusionMatrixMetric(keras.metrics.Metric):
    """Weighted or macro precision or recall (PITuning Eqs. 12-15) over the whole epoch.

    Accumulates the confusion matrix of argmax predictions (rows: true intent, columns:
    predicted), then averages over the classes present among the true or predicted labels, with
    zero_division = 0, like `pitune_tf.metrics.intent_metrics` and scikit-learn: weighted
    averages weigh class c by its support TP_c + FN_c, macro averages weigh classes equally.

    Args:
        num_classes: int. Number of logits (the intent vocabulary size, |C| at most).
        quantity: str. "precision" or "recall".
        average: str. "weighted" or "macro".
        name: str. Defaults to e.g. "prec_w", "rec_m" (the keys of `intent_metrics`).
        dtype: the accumulator's dtype.

    Example:
        >>> model.compile(optimizer="adam", loss=..., metrics=[MacroRecall(num_classes=18)])
    """

    def __init__(
        self, num_classes, quantity="precision", average="weighted", name=None, dtype=None, **kwargs
    ):
        if quantity not in QUANTITIES:
            raise ValueError(f"quantity must be one of {QUANTITIES}, got {quantity!r}")
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
        super().__init__(name=name or _default_name(quantity, average), dtype=dtype, **kwargs)
        self.num_classes = int(num_classes)
        self.quantity = quantity
        self.average = average
        self.confusion = self.add_weight(
            name="confusion", shape=(self.num_classes, self.num_classes), initializer="zeros"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = tf.cast(tf.reshape(y_true, [-1]), tf.int32)  # [batch]
        predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)  # [batch]
        true_one_hot = tf.one_hot(labels, self.num_classes, dtype=self.dtype)  # [batch, C]
        if sample_weight is not None:
            weight = tf.cast(tf.reshape(sample_weight, [-1, 1]), self.dtype)  # [batch, 1]
            true_one_hot = true_one_hot * weight
        pred_one_hot = tf.one_hot(predicted, self.num_classes, dtype=self.dtype)  # [batch, C]
        self.confusion.assign_add(tf.matmul(true_one_hot, pred_one_hot, transpose_a=True))

    def result(self):
        tp = tf.linalg.diag_part(self.confusion)  # [C]
        support = tf.reduce_sum(self.confusion, axis=1)  # TP + FN, [C]
        predicted = tf.reduce_sum(self.confusion, axis=0)  # TP + FP, [C]
        per_class = tf.math.divide_no_nan(
            tp, predicted if self.quantity == "precision" else support
        )
        if self.average == "weighted":
            return tf.math.divide_no_nan(tf.reduce_sum(support * per_class), tf.reduce_sum(support))
        present = tf.cast((support > 0) | (predicted > 0), self.dtype)  # [C]
        return tf.math.divide_no_nan(tf.reduce_sum(present * per_class), tf.reduce_sum(present))

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_classes": self.num_classes, "quantity": self.quantity, "average": self.average}
        )
        return config


class _FixedConfusionMatrixMetric(ConfusionMatrixMetric):
    """A :class:`ConfusionMatrixMetric` whose subclass fixes ``quantity`` and ``average``.

    The config holds only ``num_classes``, ``name`` and ``dtype``; the name defaults to the key
    of ``intent_metrics`` ("prec_w", "rec_w", "prec_m", "rec_m").
    """

    QUANTITY = "precision"
    AVERAGE = "weighted"

    def __init__(self, num_classes, name=None, dtype=None, **kwargs):
        kwargs.pop("quantity", None)
        kwargs.pop("average", None)
        super().__init__(
            num_classes, quantity=self.QUANTITY, average=self.AVERAGE, name=name, dtype=dtype,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        del config["quantity"], config["average"]
        return config


def _named_metric(class_name, quantity, average, equation):
    """A registered subclass of :class:`_FixedConfusionMatrixMetric` named ``class_name``."""
    doc = (f"{average.capitalize()} {quantity} over the epoch (PITuning Eq. {equation}), named "
           f'"{_default_name(quantity, average)}" by default.\n\n    Args: ``num_classes``, '
           "``name``, ``dtype`` as for :class:`ConfusionMatrixMetric`.\n")
    attributes = {"QUANTITY": quantity, "AVERAGE": average, "__doc__": doc,
                  "__module__": __name__, "__qualname__": class_name}
    metric_class = type(class_name, (_FixedConfusionMatrixMetric,), attributes)
    return keras.saving.register_keras_serializable(package="pitune")(metric_class)


WeightedPrecision = _named_metric("WeightedPrecision", "precision", "weighted", 12)
WeightedRecall = _named_metric("WeightedRecall", "recall", "weighted", 13)
MacroPrecision = _named_metric("MacroPrecision", "precision", "macro", 14)
MacroRecall = _named_metric("MacroRecall", "recall", "macro", 15)
