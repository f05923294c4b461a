"""Where a best-epoch callback keeps a network's weights: a TensorFlow checkpoint per best
epoch (the population phases) or one Keras ``.weights.h5`` file (UAF), written atomically."""

from __future__ import annotations

import shutil
from pathlib import Path

from pitune_tf.common.atomic import atomic_path
from pitune_tf.common.keras import tf


def save_weights(model, path) -> None:
    """``model.save_weights`` to ``path`` (a ``.weights.h5`` name), atomically."""
    with atomic_path(path) as tmp:
        name = str(tmp) + ".weights.h5"  # Keras picks the format from the suffix
        model.save_weights(name)
        Path(name).rename(tmp)


class CheckpointWeights:
    """``network``'s weights of epoch N in ``directory/best-N/weights``
    (``tf.train.Checkpoint``); a discarded epoch's folder is removed.

    Args:
        network: keras.Model.
        directory: Path. The folder of the ``best-N`` checkpoints.
    """

    def __init__(self, network, directory):
        self.network = network
        self.directory = Path(directory)

    def _prefix(self, epoch) -> str:
        return str(self.directory / f"best-{epoch}" / "weights")

    def save(self, epoch) -> None:
        tf.train.Checkpoint(network=self.network).write(self._prefix(epoch))

    def load(self, epoch) -> None:
        tf.train.Checkpoint(network=self.network).read(self._prefix(epoch)).expect_partial()

    def discard(self, epoch) -> None:
        shutil.rmtree(self.directory / f"best-{epoch}", ignore_errors=True)


class WeightsFile:
    """``network``'s weights in one Keras ``.weights.h5`` file, replaced atomically by each
    epoch saved (:func:`save_weights`).

    Args:
        network: keras.Model.
        path: Path. The file, e.g. ``stage/best.weights.h5``.
    """

    def __init__(self, network, path):
        self.network = network
        self.path = Path(path)

    def save(self, epoch) -> None:
        save_weights(self.network, self.path)

    def load(self, epoch) -> None:
        self.network.load_weights(str(self.path))

    def discard(self, epoch) -> None:
        """Nothing: the next :meth:`save` replaced the file."""
