"""The one batching function of every training loop: row-index batches over an epoch order."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def index_batches(
    order, batch_size: int, pad: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Consecutive batches of ``batch_size`` row indices along ``order`` (one epoch).

    Yields ``(index [b], weight [b] float32)``. With ``pad=True`` every batch has exactly
    ``batch_size`` rows: a short last batch is filled with copies of its first row of weight
    0 (so a traced step or a fixed-batch TFLite signature sees one shape, and the padding
    rows count for nothing in a weighted loss); otherwise the last batch is shorter and every
    weight is 1.

    Args:
        order: int array [n]. The epoch's row order (e.g. ``rng.permutation(n)``, or
            :func:`stateless_permutation`).
        batch_size: int. Rows per batch (>= 1).
        pad: bool. Pad the last batch to ``batch_size`` rows with weight 0.

    Example:

    >>> [(i.tolist(), w.tolist()) for i, w in index_batches([2, 0, 1], 2, pad=True)]
    [([2, 0], [1.0, 1.0]), ([1, 1], [1.0, 0.0])]
    """
    if int(batch_size) < 1:
        from pitune_tf.common.errors import UserInputError

        raise UserInputError(f"batch_size must be >= 1, got {batch_size}")
    order = np.asarray(order)
    size = int(batch_size)
    for i in range(0, len(order), size):
        index = order[i:i + size]
        weight = np.ones(size if pad else len(index), np.float32)
        if pad and len(index) < size:
            weight[len(index):] = 0.0
            index = np.concatenate([index, np.full(size - len(index), index[0], index.dtype)])
        yield index, weight


def stateless_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of epoch ``epoch``: a TF stateless shuffle of ``range(n)`` seeded by
    ``(seed, epoch)``, so a resumed run sees exactly the batches an uninterrupted run saw.
    int64 [n]."""
    from pitune_tf.common.keras import tf

    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64),
        seed=tf.constant([seed, epoch], tf.int64),
    ).numpy()
