"""Evaluation metrics: numpy functions for reports, Keras metric classes for training logs.

numpy (PITuning Appendix D; UAF): `intent_metrics`, `rank_metrics`, `ranks_from_scores`.
`batch_accuracy`: one batch's accuracy as a tensor (trainer logs).
Keras (`model.compile(metrics=[...])`, sparse labels and logits): `NDCGAtK`, `WeightedPrecision`,
`WeightedRecall`, `MacroPrecision`, `MacroRecall` (all `ConfusionMatrixMetric`).
"""

from pitune_tf.metrics.batch_accuracy import batch_accuracy
from pitune_tf.metrics.confusion_matrix_metric import ConfusionMatrixMetric
from pitune_tf.metrics.macro_precision import MacroPrecision
from pitune_tf.metrics.macro_recall import MacroRecall
from pitune_tf.metrics.ndcg_at_k import NDCGAtK
from pitune_tf.metrics.numpy_metrics import (
    INTENT_METRIC_COLUMNS,
    confusion_counts,
    intent_metrics,
    precision_recall_from_confusion,
    rank_metrics,
    ranks_from_scores,
)
from pitune_tf.metrics.weighted_precision import WeightedPrecision
from pitune_tf.metrics.weighted_recall import WeightedRecall

__all__ = [
    "INTENT_METRIC_COLUMNS",
    "ConfusionMatrixMetric",
    "MacroPrecision",
    "MacroRecall",
    "NDCGAtK",
    "WeightedPrecision",
    "WeightedRecall",
    "batch_accuracy",
    "confusion_counts",
    "intent_metrics",
    "precision_recall_from_confusion",
    "rank_metrics",
    "ranks_from_scores",
]
