"""Sampled negatives for evaluation: without replacement, never the positive, always valid."""

from __future__ import annotations

import numpy as np


class NegativeSampler:
    """Draws ``n_negatives`` distinct ids from ``low .. high - 1`` other than the positive.

    The official UAF/PeterRec sampler can return ``high`` (one past the last item) and the
    positive itself; this one cannot. Rows are drawn uniformly without replacement by taking
    the ``n_negatives`` smallest of i.i.d. uniform keys over the ``high - low - 1`` other
    ids (chunked to bound memory).

    Args:
        low: int. First valid id (1: id 0 is the reserved unknown target).
        high: int. One past the last valid id (the vocabulary size).
        n_negatives: int. 99 in the paper's protocol.
        seed: int.

    Example:
        >>> NegativeSampler(1, 200, 99, seed=0).sample(np.array([5, 7])).shape
        (2, 99)
    """

    def __init__(self, low, high, n_negatives=99, seed=0):
        self.low = int(low)
        self.high = int(high)
        self.n_negatives = int(n_negatives)
        self.seed = int(seed)
        if self.high - self.low - 1 < self.n_negatives:
            raise ValueError(
                f"cannot draw {self.n_negatives} distinct negatives from {self.high - self.low - 1} items"
            )
        self.rng = np.random.default_rng(self.seed)

    def sample(self, positives, chunk=2048) -> np.ndarray:
        """[n] positive ids in [low, high) -> [n, n_negatives] int64 negatives."""
        positives = np.asarray(positives, np.int64)
        if positives.size and (positives.min() < self.low or positives.max() >= self.high):
            raise ValueError(f"positive ids must lie in [{self.low}, {self.high})")
        n_other = self.high - self.low - 1
        out = np.empty((len(positives), self.n_negatives), np.int64)
        chunk = max(1, min(chunk, 2**22 // max(n_other, 1)))  # bounds memory for large vocabularies
        for start in range(0, len(positives), chunk):
            pos = positives[start:start + chunk]
            keys = self.rng.random((len(pos), n_other))
            picked = np.argpartition(keys, self.n_negatives - 1, axis=1)[:, : self.n_negatives]
            ids = picked + self.low  # offsets into the ids other than the positive
            ids = ids + (ids >= pos[:, None])  # skip over the positive
            out[start:start + chunk] = ids
        return out
