"""The one resumable fit (pitune_tf.common.resumable_fit): a fit of 2 epochs continued to 4
ends with the weights, optimizer state and per-epoch logs of one fit of 4 epochs."""

import numpy as np
import pytest
from toy_models import toy_regression

from pitune_tf.common.batching import epoch_index_dataset
from pitune_tf.common.keras import keras, tf
from pitune_tf.common.resumable_fit import resumable_fit


def _fit(folder, epochs, keep=True, build=True):
    model, net, rows = toy_regression(10, 3, keras.optimizers.Adam(0.05))
    x, y = tf.constant(rows), tf.constant(rows.sum(axis=1))

    def fit_args(first):
        batches = epoch_index_dataset(10, 4, 0, first, 4).map(
            lambda i: (tf.gather(x, i), tf.gather(y, i)))
        return {"x": batches, "steps_per_epoch": 3, "verbose": 0}

    done, history = resumable_fit(model, fit_args, epochs, folder, "toy", ("toy", "--rate", folder),
                                  variables=model.train_variables() if build else None,
                                  keep=keep)
    return net, model, done, history


@pytest.mark.parametrize("build", [True, False])  # optimizer built before the restore or not
def test_a_fit_resumed_after_epoch_2_ends_as_one_fit_of_4_epochs(tmp_path, build):
    net, model, done, history = _fit(tmp_path / "one", 4, keep=False, build=build)
    assert done == 4 and history["epoch"] == [1, 2, 3, 4]
    assert not (tmp_path / "one").exists()
    _, _, first, _ = _fit(tmp_path / "two", 2, build=build)
    assert first == 2 and (tmp_path / "two/ckpt-2.index").exists()
    resumed, resumed_model, done, resumed_history = _fit(tmp_path / "two", 4, keep=False,
                                                         build=build)
    assert done == 4 and resumed_history == history  # the epochs before the resume too
    for got, want in zip(resumed.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert int(resumed_model.optimizer.iterations) == int(model.optimizer.iterations) == 12
