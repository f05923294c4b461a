"""The batches of a UAF fit from arrays in memory: one seeded order per epoch, cut by the
shared batching function."""

from __future__ import annotations

from pitune_tf.common.batching import index_batches, stateless_permutation
from pitune_tf.common.keras import tf


class EpochBatches:
    """Rows of ``arrays`` in batches: epoch e visits them in the order
    ``stateless_permutation(n, seed, e)``, cut by ``index_batches`` (the last batch of an
    epoch is short).

    :meth:`dataset` of a fit resumed at epoch e streams exactly the batches an uninterrupted
    fit saw from epoch e on.

    Args:
        arrays: array [n, ...] or dict of name -> array [n, ...]. The rows.
        batch_size: int. Rows per batch.
        seed: int. Seed of every epoch's order.

    Example:
        >>> batches = EpochBatches({"x": np.arange(5)}, batch_size=2, seed=0)
        >>> [b["x"].shape for b in batches.batches(epoch=0)]
        [(2,), (2,), (1,)]
    """

    def __init__(self, arrays, batch_size, seed=0):
        self.arrays = arrays
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.n = len(tf.nest.flatten(arrays)[0])

    @property
    def steps_per_epoch(self) -> int:
        return max(1, -(-self.n // self.batch_size))

    def batches(self, epoch):
        """The batches of epoch ``epoch``, each a structure like ``arrays``."""
        order = stateless_permutation(self.n, self.seed, epoch)
        for index, _ in index_batches(order, self.batch_size):
            yield tf.nest.map_structure(lambda a, i=index: a[i], self.arrays)

    def _stream(self, first_epoch):
        epoch = first_epoch
        while True:
            yield from self.batches(epoch)
            epoch += 1

    def dataset(self, first_epoch=0):
        """An endless ``tf.data.Dataset`` of the batches from epoch ``first_epoch`` on."""
        spec = tf.nest.map_structure(
            lambda a: tf.TensorSpec([None, *a.shape[1:]], tf.as_dtype(a.dtype)), self.arrays
        )
        return tf.data.Dataset.from_generator(lambda: self._stream(first_epoch),
                                              output_signature=spec)
