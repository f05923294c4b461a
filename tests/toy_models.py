"""A toy loss model the fit tests share: least squares of a one-output network."""

from pitune_tf.common.keras import tf
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
