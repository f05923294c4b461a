"""Evaluation metrics: numpy functions for reports, Keras metric classes for training logs.

numpy (PITuning Appendix D; UAF): `intent_metrics`, `rank_metrics`, `ranks_from_scores`;
`paired_bootstrap`: two models' metric differences on the same rows, with an interval
(`bootstrap_groups`: resample users or rows; `difference_cell`: one difference as text).
`pitune_tf.metrics.batch_accuracy.batch_accuracy`: one batch's accuracy as a tensor (trainer logs).
Keras (`model.compile(metrics=[...])`, sparse labels and logits): `NDCGAtK`, `WeightedPrecision`,
`WeightedRecall`, `MacroPrecision`, `MacroRecall` (all `ConfusionMatrixMetric`, in one module).
"""

from pitune_tf.common.lazy import by_module, lazy_exports
from pitune_tf.metrics.numpy_metrics import (
    INTENT_METRIC_COLUMNS,
    MIN_BOOTSTRAP_GROUPS,
    bootstrap_groups,
    confusion_counts,
    difference_cell,
    intent_metrics,
    paired_bootstrap,
    paired_mean_bootstrap,
    precision_recall_from_confusion,
    rank_metrics,
    ranks_from_scores,
)

# The Keras metrics load TensorFlow: imported on first use.
_EXPORTS = by_module({
    "pitune_tf.metrics.confusion_matrix_metric": (
        "ConfusionMatrixMetric", "MacroPrecision", "MacroRecall", "WeightedPrecision", "WeightedRecall",
    ),
    "pitune_tf.metrics.ndcg_at_k": ("NDCGAtK",),
})
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "INTENT_METRIC_COLUMNS",
    "MIN_BOOTSTRAP_GROUPS",
    "bootstrap_groups",
    "confusion_counts",
    "difference_cell",
    "intent_metrics",
    "paired_bootstrap",
    "paired_mean_bootstrap",
    "precision_recall_from_confusion",
    "rank_metrics",
    "ranks_from_scores",
]
__all__ += sorted(_EXPORTS)
