"""The lightweight network that reads the source sequence and decides, per residual block,
whether a user goes through the frozen or the fine-tuned block (UAF 3.3)."""

from __future__ import annotations

from nextitnet.residual_block import ResidualBlock
from nextitnet.target_head import last_real_hidden
from pitune_tf.common.keras import keras, tf


@keras.saving.register_keras_serializable(package="pitune")
class PolicyNetwork(keras.layers.Layer):
    """Policy network of UAF (3.3, UAF Eq. 11): ``v = W_p h_p + b_p`` as a logit pair per block.

    ``h_p`` is the last real position's hidden state of a light NextItNet (2 residual
    blocks, dilations 1,2,4,8) or of a GRU (Table 4) over the user's source sequence. The
    output ``[batch, n_blocks, 2]`` holds log-odds for (freeze, fine-tune) of each block:
    index 1 is "fine-tune" (I_l = 1). Hard (UAF Eq. 9-10), soft (UAF Eq. 12) and RL (UAF Eq. 13-14)
    policies read these logits (``nextitnet.gates``).

    Args:
        n_items: int. Source item vocabulary size (0 = pad).
        n_blocks: int. N, the number of residual blocks to decide on.
        kind: str. "nextitnet" or "gru".
        embedding_dim: int. Width of the policy's own embedding and hidden state.
        block_dilations: tuple of int. Dilations of the light NextItNet's blocks ((1, 4) =
            conv dilations 1,2,4,8).
        kernel_size: int. Convolution width.

    Example:
        >>> policy = PolicyNetwork(n_items=20, n_blocks=3, embedding_dim=8)
        >>> policy(tf.constant([[0, 3, 4, 5]])).shape
        TensorShape([1, 3, 2])
    """

    def __init__(
        self,
        n_items,
        n_blocks,
        kind="nextitnet",
        embedding_dim=64,
        block_dilations=(1, 4),
        kernel_size=3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kind not in ("nextitnet", "gru"):
            raise ValueError(f"policy kind must be 'nextitnet' or 'gru', got {kind!r}")
        self.n_items = int(n_items)
        self.n_blocks = int(n_blocks)
        self.kind = kind
        self.embedding_dim = int(embedding_dim)
        self.block_dilations = tuple(int(d) for d in block_dilations)
        self.kernel_size = int(kernel_size)
        self.item_embedding = keras.layers.Embedding(
            self.n_items,
            self.embedding_dim,
            embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="item_embedding",
        )
        if kind == "nextitnet":
            self.blocks = [
                ResidualBlock(self.embedding_dim, d, self.kernel_size, name=f"block_{i}")
                for i, d in enumerate(self.block_dilations)
            ]
            self.gru = None
        else:
            self.blocks = []
            self.gru = keras.layers.GRU(self.embedding_dim, return_sequences=True, name="gru")
        self.projection = keras.layers.Dense(self.n_blocks * 2, name="projection")  # W_p, b_p

    def build(self, input_shape):
        self.item_embedding.build(None)
        for block in self.blocks:
            block.build([None, None, self.embedding_dim])
        if self.gru is not None:
            self.gru.build(tf.TensorShape([None, None, self.embedding_dim]))
        self.projection.build([None, self.embedding_dim])
        super().build(input_shape)

    def call(self, items):
        mask = tf.cast(tf.not_equal(items, 0), self.compute_dtype)[..., None]  # [batch, L, 1]
        x = self.item_embedding(items) * mask  # [batch, L, d_p]
        if self.gru is not None:
            x = self.gru(x)  # [batch, L, d_p]
        for block in self.blocks:
            x = block(x) * mask  # [batch, L, d_p], padding kept at zero
        h_p = last_real_hidden(x, items)  # [batch, d_p]
        v = self.projection(h_p)  # UAF Eq. 11, [batch, 2N]
        return tf.reshape(v, [-1, self.n_blocks, 2])  # [batch, N, (freeze, fine-tune)]

    def get_config(self):
        config = super().get_config()
        config.update(
            n_items=self.n_items,
            n_blocks=self.n_blocks,
            kind=self.kind,
            embedding_dim=self.embedding_dim,
            block_dilations=list(self.block_dilations),
            kernel_size=self.kernel_size,
        )
        return config
