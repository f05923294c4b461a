"""The one batching function of every training loop: row-index batches over an epoch order
(:func:`index_batches`), each epoch's order seeded by (seed, epoch)
(:func:`stateless_permutation`), and the same batches as a ``tf.data`` pipeline that makes
each epoch's order when the epoch starts (:func:`epoch_index_dataset`)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pitune_tf.common.errors import UserInputError


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
    from pitune_tf.common.keras import tf  # deferred: index_batches' callers stay TensorFlow-free

    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64),
        seed=tf.constant([seed, epoch], tf.int64),
    ).numpy()


def epoch_index_dataset(n: int, batch_size: int, seed: int, first_epoch: int, epochs: int):
    """The row-index batches of epochs ``first_epoch .. epochs - 1`` back to back, as a
    ``tf.data.Dataset`` of int64 ``[b]``: epoch e's batches are exactly
    ``index_batches(stateless_permutation(n, seed, e), batch_size)`` (the same stateless
    shuffle, cut the same way, the last batch short), but each epoch's order is made in the
    input pipeline when that epoch starts, so neither the time to the first batch nor the
    memory grows with ``epochs`` (``--epochs 1000000`` starts at once). A run resumed at
    epoch e sees the batches an uninterrupted run saw from epoch e on.

    Example:

    >>> [b.tolist() for b in epoch_index_dataset(3, 2, 0, 0, 1).as_numpy_iterator()] == [
    ...     i.tolist() for i, _ in index_batches(stateless_permutation(3, 0, 0), 2)]
    True
    """
    from pitune_tf.common.keras import tf  # deferred: index_batches' callers stay TensorFlow-free

    if int(batch_size) < 1:
        raise UserInputError(f"batch_size must be >= 1, got {batch_size}")
    n, size = int(n), int(batch_size)
    lengths = [size] * (n // size) + ([n % size] if n % size else [])  # index_batches' cut
    seed = tf.constant(seed, tf.int64)
    rows = tf.range(n, dtype=tf.int64)

    def epoch_batches(epoch):  # epoch: int64 scalar, in the input pipeline
        order = tf.random.experimental.stateless_shuffle(rows, seed=tf.stack([seed, epoch]))
        return tf.data.Dataset.from_tensor_slices(
            tf.RaggedTensor.from_row_lengths(order, tf.constant(lengths, tf.int64)))

    return tf.data.Dataset.range(int(first_epoch), int(epochs)).flat_map(epoch_batches)
