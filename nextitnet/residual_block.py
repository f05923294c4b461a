"""One NextItNet residual block: two causal dilated convolutions (UAF Eq. 1-2)."""

from __future__ import annotations

from nextitnet.adapter import Adapter
from pitune_tf.common.keras import keras, tf


@keras.saving.register_keras_serializable(package="pitune")
class ResidualBlock(keras.layers.Layer):
    """Causal dilated residual block of NextItNet (UAF Eq. 1-2).

    ``E_l = F_l(E_{l-1}) + E_{l-1}`` with
    ``F_l(E) = ReLU(LN_2(psi_2(ReLU(LN_1(psi_1(E))))))`` where ``psi_1`` is a causal
    convolution with dilation ``dilation`` and ``psi_2`` one with dilation ``2 * dilation``
    (the official NextItNet code). Causality comes from left padding by
    ``(kernel_size - 1) * dilation`` zeros before a "valid" convolution, so the output at
    position t reads only positions <= t. Each convolution runs as one matmul over its
    ``kernel_size`` gathered taps (``[batch * L, kernel * k] x [kernel * k, k]``), the same
    sums as ``Conv1D`` with ``dilation_rate`` (whose weights it uses) and faster on the CPU.

    ``padding_mask`` ([batch, L, 1], 1 at real items, 0 at padding) zeroes the padding
    positions after each ``ReLU(LN(psi(.)))`` stage; without it, the biases and LayerNorm
    offsets make padding non-zero between the two convolutions and the second one carries
    them into the real positions, so outputs depended on the amount of left padding.

    The call returns the whole block output ``F_l(E) + E``; UAF Eq. 6 mixes two such
    outputs with gates that sum to one, which equals mixing the residual mappings.
    ``residual_mapping(E)`` returns ``F_l(E)`` alone.

    Args:
        channels: int. k, the embedding / channel size.
        dilation: int. Dilation of the first convolution; the second uses twice it.
        kernel_size: int. Convolution width (3 in the paper).
        adapter_dim: int. When > 0, a PeterRec adapter (bottleneck of this width) follows
            each convolution; 0 for plain NextItNet.
        epsilon: float. LayerNorm epsilon.

    Example:
        >>> block = ResidualBlock(channels=8, dilation=1)
        >>> block(tf.zeros([2, 5, 8])).shape
        TensorShape([2, 5, 8])
    """

    def __init__(self, channels, dilation=1, kernel_size=3, adapter_dim=0, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.dilation = int(dilation)
        self.kernel_size = int(kernel_size)
        self.adapter_dim = int(adapter_dim)
        self.epsilon = float(epsilon)
        self.conv1 = keras.layers.Conv1D(
            self.channels, self.kernel_size, dilation_rate=self.dilation, padding="valid", name="conv1"
        )
        self.ln1 = keras.layers.LayerNormalization(epsilon=self.epsilon, name="ln1")
        self.conv2 = keras.layers.Conv1D(
            self.channels, self.kernel_size, dilation_rate=2 * self.dilation, padding="valid", name="conv2"
        )
        self.ln2 = keras.layers.LayerNormalization(epsilon=self.epsilon, name="ln2")
        if self.adapter_dim > 0:
            self.adapter1 = Adapter(self.channels, self.adapter_dim, name="adapter1")
            self.adapter2 = Adapter(self.channels, self.adapter_dim, name="adapter2")
        else:
            self.adapter1 = self.adapter2 = None

    def build(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        self.conv1.build([shape[0], None, self.channels])
        self.ln1.build([shape[0], None, self.channels])
        self.conv2.build([shape[0], None, self.channels])
        self.ln2.build([shape[0], None, self.channels])
        if self.adapter1 is not None:
            self.adapter1.build([shape[0], None, self.channels])
            self.adapter2.build([shape[0], None, self.channels])
        super().build(input_shape)

    def _causal_conv(self, conv, x, dilation):
        """``conv`` (a "valid" dilated Conv1D) on ``x`` left-padded with zeros: the taps
        ``x[t - (kernel - 1 - j) * dilation]``, j = 0 .. kernel - 1, side by side, times the
        kernel reshaped to ``[kernel * k_in, k_out]``."""
        pad = (self.kernel_size - 1) * dilation
        shape = tf.shape(x)  # batch, L, k
        x = tf.pad(x, [[0, 0], [pad, 0], [0, 0]])  # [batch, pad + L, k], zeros on the left
        taps = tf.concat([x[:, j * dilation:j * dilation + shape[1]] for j in range(self.kernel_size)],
                         axis=-1)  # [batch, L, kernel * k]
        kernel = tf.reshape(conv.kernel, [-1, conv.filters])  # [kernel * k, k]
        # one 2-D matmul (its weight gradient is one matmul too, not a batch of them)
        out = tf.matmul(tf.reshape(taps, [-1, self.kernel_size * shape[2]]), kernel) + conv.bias
        return tf.reshape(out, [shape[0], shape[1], conv.filters])  # [batch, L, k]

    def residual_mapping(self, inputs, padding_mask=None):
        """F_l(E) of UAF Eq. 2, without the shortcut. inputs: [batch, L, k]; padding_mask:
        [batch, L, 1] or None (no masking)."""
        x = self._causal_conv(self.conv1, inputs, self.dilation)  # [batch, L, k]
        if self.adapter1 is not None:
            x = self.adapter1(x)
        x = self._masked(tf.nn.relu(self.ln1(x)), padding_mask)  # padding back to zero
        x = self._causal_conv(self.conv2, x, 2 * self.dilation)  # [batch, L, k]
        if self.adapter2 is not None:
            x = self.adapter2(x)
        return self._masked(tf.nn.relu(self.ln2(x)), padding_mask)  # [batch, L, k]

    @staticmethod
    def _masked(x, padding_mask):
        return x if padding_mask is None else x * padding_mask

    def call(self, inputs, padding_mask=None):
        return inputs + self.residual_mapping(inputs, padding_mask)  # UAF Eq. 1, [batch, L, k]

    def copy_from(self, other: "ResidualBlock") -> None:
        """Copies the convolution and LayerNorm weights of ``other`` (adapters untouched)."""
        for name in ("conv1", "ln1", "conv2", "ln2"):
            getattr(self, name).set_weights(getattr(other, name).get_weights())

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            dilation=self.dilation,
            kernel_size=self.kernel_size,
            adapter_dim=self.adapter_dim,
            epsilon=self.epsilon,
        )
        return config
