"""Random oversampling of a user's rare intents: the second class-imbalance baseline of
PITuning's Figure 8 (the paper does not say which scheme; this is random oversampling with
replacement, as imbalanced-learn's ``RandomOverSampler`` does, up to a ratio of the most
frequent intent's count)."""

from __future__ import annotations

import numpy as np


def oversample_indices(labels, ratio=0.5, seed=0) -> np.ndarray:
    """Indices into ``labels`` with every intent drawn at least ``ratio * max_count`` times.

    Every original index appears once; intents with fewer than ``ceil(ratio * max_count)``
    windows get extra indices drawn with replacement from their own windows. The result is
    shuffled with ``seed``.

    Args:
        labels: int [n]. The user's training labels.
        ratio: float in (0, 1]. Target count as a fraction of the largest intent's count.
        seed: int.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, np.int64)
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    rng = np.random.default_rng(seed)
    values, counts = np.unique(labels, return_counts=True)
    target = int(np.ceil(ratio * counts.max()))
    parts = [np.arange(labels.size)]
    for value, count in zip(values, counts):
        if count < target:
            members = np.flatnonzero(labels == value)
            parts.append(rng.choice(members, size=target - count, replace=True))
    index = np.concatenate(parts)
    return index[rng.permutation(index.size)]
