"""NextItNet (Yuan et al., WSDM 2019): item embedding, causal dilated residual blocks, softmax."""

from __future__ import annotations

from nextitnet.residual_block import ResidualBlock
from pitune_tf.common.keras import keras, tf

PAPER_BLOCK_DILATIONS = (1, 4, 1, 4, 1, 4, 1, 4)  # 16 conv layers: dilations 1,2,4,8 x 4


@keras.saving.register_keras_serializable(package="pitune")
class NextItNet(keras.Model):
    """NextItNet backbone for autoregressive pretraining (UAF Eq. 1-5).

    ``call(items)`` embeds the item ids (``E^u``; id 0 is padding and embeds to zeros), runs
    the residual blocks (UAF Eq. 1-2) and returns the hidden states ``E_l^u``
    ``[batch, L, embedding_dim]``; ``next_item_logits(hidden)`` is the softmax layer of
    UAF Eq. 3 over the source items. The masked loss of UAF Eq. 5 is in ``nextitnet.losses``.

    Args:
        n_items: int. |X| + reserved ids: size of the source item vocabulary (0 = pad).
        embedding_dim: int. k, item embedding and channel size (128 in the paper).
        block_dilations: tuple of int. Dilation of the first conv of each residual block
            (the second uses twice it); ``(1, 4) * 4`` gives the paper's 16 layers with
            dilations 1,2,4,8 repeated.
        kernel_size: int. Convolution width (3).
        adapter_dim: int. PeterRec adapter width inside every block; 0 = none.
        with_softmax: bool. Whether to build the UAF Eq. 3 output layer.

    Example:
        >>> net = NextItNet(n_items=20, embedding_dim=8, block_dilations=(1, 2))
        >>> net(tf.constant([[0, 3, 4, 5]])).shape
        TensorShape([1, 4, 8])
    """

    def __init__(
        self,
        n_items,
        embedding_dim=128,
        block_dilations=PAPER_BLOCK_DILATIONS,
        kernel_size=3,
        adapter_dim=0,
        with_softmax=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_items = int(n_items)
        self.embedding_dim = int(embedding_dim)
        self.block_dilations = tuple(int(d) for d in block_dilations)
        self.kernel_size = int(kernel_size)
        self.adapter_dim = int(adapter_dim)
        self.with_softmax = bool(with_softmax)
        self.item_embedding = keras.layers.Embedding(
            self.n_items,
            self.embedding_dim,
            embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="item_embedding",
        )
        self.blocks = [
            ResidualBlock(
                self.embedding_dim, d, self.kernel_size, adapter_dim=self.adapter_dim, name=f"block_{i}"
            )
            for i, d in enumerate(self.block_dilations)
        ]
        self.softmax = (
            keras.layers.Dense(self.n_items, name="softmax") if self.with_softmax else None
        )

    def build(self, input_shape=None):
        self.item_embedding.build(None)
        for block in self.blocks:
            block.build([None, None, self.embedding_dim])
        if self.softmax is not None:
            self.softmax.build([None, None, self.embedding_dim])
        self.built = True

    def padding_mask(self, items):
        """1 at real items, 0 at padding (id 0): [batch, L, 1]."""
        return tf.cast(tf.not_equal(items, 0), self.compute_dtype)[..., None]

    def embed(self, items):
        """E^u: item embeddings with padding (id 0) zeroed. items: [batch, L] int."""
        return self.item_embedding(items) * self.padding_mask(items)  # [batch, L, k]

    def call(self, items, training=False):
        x = self.embed(items)  # [batch, L, k]
        mask = self.padding_mask(items)  # [batch, L, 1]
        for block in self.blocks:
            # UAF Eq. 1; padding is zeroed inside each block and after it (the official code
            # lets the biases of F_l leak into padding, so outputs depended on its amount)
            x = block(x, padding_mask=mask) * mask  # [batch, L, k]
        return x

    def next_item_logits(self, hidden):
        """UAF Eq. 3 logits ``W E_l + b`` over the source items. hidden: [batch, L, k]."""
        if self.softmax is None:
            raise ValueError("this NextItNet was built without its softmax layer")
        return self.softmax(hidden)  # [batch, L, n_items]

    def copy_from(self, other: "NextItNet", softmax=True) -> None:
        """Loads the embedding, every block's conv/LayerNorm weights and (optionally) the
        softmax of a pretrained ``other`` with the same shape; adapters are left alone."""
        if len(other.blocks) != len(self.blocks):
            raise ValueError(f"pretrained net has {len(other.blocks)} blocks, this one {len(self.blocks)}")
        self.item_embedding.set_weights(other.item_embedding.get_weights())
        for mine, theirs in zip(self.blocks, other.blocks):
            mine.copy_from(theirs)
        if softmax and self.softmax is not None and other.softmax is not None:
            self.softmax.set_weights(other.softmax.get_weights())

    def get_config(self):
        return {
            "name": self.name,
            "n_items": self.n_items,
            "embedding_dim": self.embedding_dim,
            "block_dilations": list(self.block_dilations),
            "kernel_size": self.kernel_size,
            "adapter_dim": self.adapter_dim,
            "with_softmax": self.with_softmax,
        }
