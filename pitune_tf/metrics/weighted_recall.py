"""Weighted recall as a Keras metric, for training logs (PITuning Eq. 13)."""

from __future__ import annotations

from pitune_tf.common.keras import keras
from pitune_tf.metrics.confusion_matrix_metric import ConfusionMatrixMetric


@keras.saving.register_keras_serializable(package="pitune")
class WeightedRecall(ConfusionMatrixMetric):
    """Weighted recall over the epoch (Eq. 13), named "rec_w" by default.

    Args:
        num_classes: int. Number of logits (the intent vocabulary size).
        name: str. Defaults to "rec_w".
        dtype: the accumulator's dtype.

    Example:
        >>> model.compile(optimizer="adam", loss=..., metrics=[WeightedRecall(num_classes=18)])
    """

    def __init__(self, num_classes, name="rec_w", dtype=None, **kwargs):
        kwargs.pop("quantity", None)
        kwargs.pop("average", None)
        super().__init__(
            num_classes, quantity="recall", average="weighted", name=name, dtype=dtype, **kwargs
        )

    def get_config(self):
        config = super().get_config()
        del config["quantity"], config["average"]
        return config
