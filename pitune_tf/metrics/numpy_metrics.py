"""The papers' evaluation metrics in numpy: PITuning Appendix D (PITuning Eqs. 12-16) and UAF's
HR@k, MRR@k.

All functions are vectorized over samples. Ranks are 1-based and pessimistic on ties: the rank of
the true item is the number of items scored at least as high as it (itself included), so a model
that scores everything equally gets the worst rank, never the best.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_BOOTSTRAP_GROUPS", "bootstrap_groups", "confusion_counts", "difference_cell",
           "intent_metrics", "paired_bootstrap", "paired_mean_bootstrap", "rank_metrics", "ranks_from_scores"]


def ranks_from_scores(scores, labels) -> np.ndarray:
    """1-based pessimistic rank of the true item of each row.

    Args:
        scores: array [n, n_items]. Higher is better (logits, probabilities).
        labels: int array [n] (column of each row's true item) or an int (the same column for
            every row, e.g. 0 when the positive comes first among sampled candidates).

    Returns:
        int64 array [n]: rank = #{j : scores[i, j] >= scores[i, labels[i]]}.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [n, n_items], got shape {scores.shape}")
    n, n_items = scores.shape
    labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), (n,))
    if n and (labels.min() < 0 or labels.max() >= n_items):
        raise ValueError(
            f"labels must be in [0, {n_items}), got range [{labels.min()}, {labels.max()}]"
        )
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    true_score = scores[np.arange(n), labels]  # [n]
    return (scores >= true_score[:, None]).sum(axis=1).astype(np.int64)  # [n]


def rank_metrics(ranks, k=(5, 20)) -> dict:
    """HR@k and MRR@k from 1-based ranks of the true item.

    HR@k = mean(rank <= k); MRR@k = mean(1 / rank if rank <= k else 0).

    Returns:
        dict with keys "hr@k", "mrr@k" for each k, in the order of `k`.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size and ranks.min() < 1:
        raise ValueError("ranks are 1-based: every rank must be >= 1")
    out = {}
    for cutoff in k:
        hit = ranks <= cutoff
        out[f"hr@{cutoff}"] = float(hit.mean()) if ranks.size else 0.0
        out[f"mrr@{cutoff}"] = float(np.where(hit, 1.0 / ranks, 0.0).mean()) if ranks.size else 0.0
    return out


def confusion_counts(y_true, y_pred, n_classes, sample_weight=None) -> np.ndarray:
    """Confusion matrix [n_classes, n_classes] (rows: true class, columns: predicted class)."""
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if y_true.size and (y_true.min() < 0 or y_true.max() >= n_classes):
        raise ValueError(
            f"labels must be in [0, {n_classes}), got range [{y_true.min()}, {y_true.max()}]"
        )
    counts = np.bincount(
        y_true * n_classes + y_pred, weights=sample_weight, minlength=n_classes * n_classes
    )
    return counts.reshape(n_classes, n_classes).astype(np.float64)


def precision_recall_from_confusion(confusion) -> dict:
    """Weighted and macro precision and recall (PITuning Eqs. 12-15) from a confusion matrix.

    The classes C are those present among the true or the predicted labels (scikit-learn's
    default, with zero_division=0: a class never predicted has precision 0, one never true
    recall 0). Weighted averages weigh each class by its support TP_c + FN_c, as scikit-learn does
    for both precision and recall. (PITuning Eq. 12 as printed weighs precision by TP_c + FP_c,
    which reduces to the accuracy; we follow scikit-learn, as the project's issue asks.)
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)  # [C]
    support = confusion.sum(axis=1)  # TP + FN, [C]
    predicted = confusion.sum(axis=0)  # TP + FP, [C]
    present = (support > 0) | (predicted > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    total = support.sum()
    n_present = present.sum()
    return {
        "prec_w": float((support * precision).sum() / total) if total > 0 else 0.0,
        "rec_w": float((support * recall).sum() / total) if total > 0 else 0.0,
        "prec_m": float(precision[present].mean()) if n_present else 0.0,
        "rec_m": float(recall[present].mean()) if n_present else 0.0,
    }


# intent_metrics' keys in table order, with the column labels the reports use
INTENT_METRIC_COLUMNS = (("prec_w", "Prec_w"), ("rec_w", "Rec_w"), ("prec_m", "Prec_m"),
                         ("rec_m", "Rec_m"), ("ndcg@3", "N@3"), ("ndcg@5", "N@5"), ("acc", "Acc"))


def intent_metrics(y_true, scores, k=(3, 5)) -> dict:
    """Intent-prediction metrics (PITuning Appendix D, PITuning Eqs. 12-16) plus accuracy.

    Args:
        y_true: int array [n]. True intent ids.
        scores: array [n, n_intents]. Logits or probabilities; the prediction is the argmax
            (the first of equal maxima).
        k: cutoffs of NDCG@k.

    Returns:
        dict with keys "prec_w", "rec_w", "prec_m", "rec_m" (PITuning Eqs. 12-15, see
        `precision_recall_from_confusion`), "ndcg@k" for each k (PITuning Eq. 16 with one
        relevant intent: 1 / log2(rank + 1) when rank <= k, else 0; rank 1-based and pessimistic
        on ties, see `ranks_from_scores`), and "acc".
    """
    y_true, y_pred, gains = _intent_rows(y_true, scores, k)
    return _weighted_intent_metrics(y_true, y_pred, gains, np.asarray(scores).shape[1])


def _intent_rows(y_true, scores, k):
    """Per row: the true intent, the predicted intent (argmax) and ``{"ndcg@k": gain}``."""
    scores = np.asarray(scores)
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    if scores.ndim != 2 or scores.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"scores must be [n, n_intents] with n = {y_true.shape[0]}, got {scores.shape}"
        )
    y_pred = scores.argmax(axis=1) if len(y_true) else np.zeros(0, dtype=np.int64)
    ranks = ranks_from_scores(scores, y_true).astype(np.float64)
    gains = {f"ndcg@{cutoff}": np.where(ranks <= cutoff, 1.0 / np.log2(ranks + 1.0), 0.0)
             for cutoff in k}
    return y_true, y_pred, gains


def _weighted_intent_metrics(y_true, y_pred, gains, n_intents, weight=None) -> dict:
    """`intent_metrics` from per-row values, each row counted ``weight`` times (None: once);
    a row of weight 2 counts as the row twice."""
    out = precision_recall_from_confusion(confusion_counts(y_true, y_pred, n_intents, weight))
    total = len(y_true) if weight is None else weight.sum()
    for name, gain in gains.items():
        out[name] = float(np.average(gain, weights=weight)) if total else 0.0
    out["acc"] = float(np.average(y_pred == y_true, weights=weight)) if total else 0.0
    return out


MIN_BOOTSTRAP_GROUPS = 8  # fewer groups (users): resample rows, see `bootstrap_groups`


def bootstrap_groups(groups, min_groups=MIN_BOOTSTRAP_GROUPS):
    """``groups`` if they hold at least ``min_groups`` distinct labels, else None: a
    bootstrap over g groups has C(2g - 1, g) distinct resamples (8 groups: 6,435; 2 groups:
    3; one group: one, a zero-width interval), so with fewer groups rows are resampled
    instead, and the interval is then optimistic (it ignores that a group's rows are
    correlated)."""
    return groups if len(np.unique(np.asarray(groups))) >= min_groups else None


def difference_cell(d) -> str:
    """One `paired_bootstrap` entry as ``+0.0123 [-0.0040, +0.0301] tie``: ``above`` or
    ``below`` when the interval excludes 0, ``tie`` when it does not."""
    verdict = "above" if d["low"] > 0 else "below" if d["high"] < 0 else "tie"
    return f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] {verdict}"


def paired_bootstrap(y_true, scores_a, scores_b, groups=None, n_resamples=1000, level=0.95,
                     seed=0, k=(3, 5)) -> dict:
    """The difference of each `intent_metrics` value between two models scored on the same
    rows (a - b) with a percentile interval from a paired bootstrap (Efron & Tibshirani 1993,
    ch. 13): each resample draws the rows (or, with ``groups``, whole groups: a user's windows
    are correlated, so resampling users gives the honest interval; see `bootstrap_groups`)
    with replacement and scores both models on the same draw. The interval is the plain
    percentile one, without bias correction: for macro metrics with rare classes it can sit
    off-centre around the difference. (``scipy.stats.bootstrap(..., paired=True)`` resamples
    rows only; a resample here is a weight per row, so groups cost nothing more.)

    Args:
        y_true: int array [n]. True intent ids.
        scores_a, scores_b: arrays [n, n_intents] of the same shape. The two models' scores.
        groups: optional array [n] of group labels (e.g. user ids) to resample.
        n_resamples: number of bootstrap resamples, >= 1.
        level: the interval's coverage.
        seed: the resampling's seed (the result is deterministic for a seed).
        k: cutoffs of NDCG@k.

    Returns:
        ``{metric: {"diff": a - b on all rows, "low": ..., "high": ...}}``.
    """
    if np.shape(scores_a) != np.shape(scores_b):
        raise ValueError(f"scores_a and scores_b differ in shape: {np.shape(scores_a)} "
                         f"and {np.shape(scores_b)}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    y_true, pred_a, gains_a = _intent_rows(y_true, scores_a, k)
    _, pred_b, gains_b = _intent_rows(y_true, scores_b, k)
    n_intents = np.asarray(scores_a).shape[1]
    n = len(y_true)
    if groups is None:
        group_of_row, n_groups = np.arange(n), n
    else:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must have one label per row ({n}), got shape {groups.shape}")
        _, group_of_row = np.unique(groups, return_inverse=True)
        n_groups = int(group_of_row.max()) + 1 if n else 0
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples if n else 0):
        weight = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        weight = weight[group_of_row].astype(np.float64)
        a = _weighted_intent_metrics(y_true, pred_a, gains_a, n_intents, weight)
        b = _weighted_intent_metrics(y_true, pred_b, gains_b, n_intents, weight)
        draws.append([a[name] - b[name] for name in a])
    a = _weighted_intent_metrics(y_true, pred_a, gains_a, n_intents)
    b = _weighted_intent_metrics(y_true, pred_b, gains_b, n_intents)
    bounds = (np.percentile(np.asarray(draws), [50 * (1 - level), 50 * (1 + level)], axis=0)
              if draws else np.zeros((2, len(a))))
    return {name: {"diff": a[name] - b[name], "low": float(bounds[0, i]),
                   "high": float(bounds[1, i])} for i, name in enumerate(a)}


def paired_mean_bootstrap(values_a, values_b, groups, n_resamples=1000, level=0.95, seed=0) -> dict:
    """The difference of the means of two per-row scores of the same rows (a - b; e.g. each
    test row's reciprocal rank within 5, whose mean is MRR@5) with a percentile interval
    from a paired bootstrap over ``groups`` (a user's rows together, as :func:`paired_bootstrap`).

    Returns:
        ``{"diff": mean(a) - mean(b), "low": ..., "high": ..., "base": mean(b)}``.
    """
    a, b = np.asarray(values_a, np.float64), np.asarray(values_b, np.float64)
    if a.shape != b.shape or a.shape != np.shape(groups):
        raise ValueError(f"values_a, values_b and groups differ in shape: {a.shape}, {b.shape}, "
                         f"{np.shape(groups)}")
    _, group_of_row = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(group_of_row.max()) + 1 if len(a) else 0
    sums = np.bincount(group_of_row, weights=a - b, minlength=n_groups)  # per group
    counts = np.bincount(group_of_row, minlength=n_groups).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples if n_groups else 0):
        weight = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        draws.append(float(weight @ sums / max(weight @ counts, 1.0)))
    low, high = (np.percentile(draws, [50 * (1 - level), 50 * (1 + level)]) if draws else (0.0, 0.0))
    return {"diff": float((a - b).mean()) if len(a) else 0.0, "low": float(low), "high": float(high),
            "base": float(b.mean()) if len(b) else 0.0}
