"""Evaluation metrics: numpy functions for reports, Keras metric classes for training logs.

numpy (PITuning Appendix D; UAF): `intent_metrics`, `rank_metrics`, `ranks_from_scores`.
`batch_accuracy`: one batch's accuracy as a tensor (trainer logs).
Keras (`model.compile(metrics=[...])`, sparse labels and logits): `NDCGAtK`, `WeightedPrecision`,
`WeightedRecall`, `MacroPrecision`, `MacroRecall` (all `ConfusionMatrixMetric`, in one module).
"""

from pitune_tf.metrics.batch_accuracy import batch_accuracy
from pitune_tf.metrics.confusion_matrix_metric import (
    ConfusionMatrixMetric,
    MacroPrecision,
    MacroRecall,
    WeightedPrecision,
    WeightedRecall,
)
from pitune_tf.metrics.ndcg_at_k import NDCGAtK
from pitune_tf.metrics.numpy_metrics import (
    INTENT_METRIC_COLUMNS,
    confusion_counts,
    intent_metrics,
    precision_recall_from_confusion,
    rank_metrics,
    ranks_from_scores,
)

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
