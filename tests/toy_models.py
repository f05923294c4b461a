"""A toy loss model the fit tests share: least squares of a one-output network."""

import numpy as np

from pitune_tf.common.keras import keras, tf
from pitune_tf.common.loss_model import LossModel


class Regression(LossModel):
    """Mean squared error of ``net(x)[:, 0]`` against ``y``; batches are ``(x, y)`` tuples or
    ``{"x": ..., "y": ...}`` dicts."""

    def __init__(self, net, **kwargs):
        super().__init__(**kwargs)
        self.net = net

    def call(self, x, training=False):
        return self.net(x)

    def compute_losses(self, data, training):
        x, y = (data["x"], data["y"]) if isinstance(data, dict) else data
        return {"loss": tf.reduce_mean((self.net(x)[:, 0] - y) ** 2)}


def toy_regression(n_rows, n_features, optimizer):
    """``(model, net, rows)``: a seeded :class:`Regression` over one Dense unit, compiled with
    ``optimizer``, and ``n_rows`` seeded float32 rows of ``n_features`` (target: their sum)."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.layers.Dense(1)])
    net.build([None, n_features])
    model = Regression(net)
    model.compile(optimizer=optimizer)
    rows = np.random.default_rng(0).normal(size=(n_rows, n_features)).astype("float32")
    return model, net, rows
