"""The fine-tuning output layer on the last real position (UAF Eq. 7)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf


def last_real_hidden(hidden, items):
    """Hidden state at each row's last non-padding position.

    hidden: [batch, L, k]; items: [batch, L] int ids with 0 = padding (left or right).
    Rows without any real item use position L-1.
    """
    length = tf.shape(items)[1]
    positions = tf.range(length)[None, :]  # [1, L]
    real = tf.not_equal(items, 0)
    last = tf.reduce_max(tf.where(real, positions, -1), axis=1)  # [batch]
    last = tf.where(last < 0, length - 1, last)
    return tf.gather(hidden, last, axis=1, batch_dims=1)  # [batch, k]


def mean_real_hidden(hidden, items):
    """Mean of the hidden states over each row's real (non-padding) positions.

    hidden: [batch, L, k]; items: [batch, L] int ids with 0 = padding. Rows without any
    real item give zeros. Returns [batch, k]."""
    real = tf.cast(tf.not_equal(items, 0), hidden.dtype)[..., None]  # [batch, L, 1]
    return tf.math.divide_no_nan(tf.reduce_sum(hidden * real, axis=1), tf.reduce_sum(real, axis=1))


REPRESENTATIONS = ("last", "mean")


@keras.saving.register_keras_serializable(package="pitune")
class TargetHead(keras.layers.Layer):
    """Target-domain scores ``o_y = W_n h_n + b_n`` (UAF Eq. 7).

    ``h_n`` is the final hidden vector at the last real (non-padding) position of the
    source sequence (``representation="last"``, the paper's), or the mean of the final
    hidden vectors over the real positions (``"mean"``, as in the authors' code).

    Args:
        n_outputs: int. |Y| + reserved ids (target items), or the number of classes of a
            profile-prediction task.
        representation: str. "last" or "mean".

    Example:
        >>> head = TargetHead(5)
        >>> head(tf.ones([2, 3, 4]), tf.constant([[0, 1, 2], [3, 4, 5]])).shape
        TensorShape([2, 5])
    """

    def __init__(self, n_outputs, representation="last", **kwargs):
        super().__init__(**kwargs)
        if representation not in REPRESENTATIONS:
            raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")
        self.n_outputs = int(n_outputs)
        self.representation = representation
        self.dense = keras.layers.Dense(self.n_outputs, name="dense")

    def build(self, input_shape):
        self.dense.build([None, input_shape[-1]])
        super().build(input_shape)

    def call(self, hidden, items):
        pool = last_real_hidden if self.representation == "last" else mean_real_hidden
        h_n = pool(hidden, items)  # [batch, k]
        return self.dense(h_n)  # [batch, n_outputs]

    def get_config(self):
        config = super().get_config()
        config.update(n_outputs=self.n_outputs, representation=self.representation)
        return config
