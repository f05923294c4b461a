"""Compositional-code embeddings: each id is a sum of codebook vectors (EODRec's compressed
item table)."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.keras import keras, tf


@keras.saving.register_keras_serializable(package="pitune")
class CompositionalEmbedding(keras.layers.Layer):
    """``E(i) = sum_m C_m[c_m(i)]``: an embedding table of ``input_dim`` ids stored as
    ``num_codebooks`` codebooks ``C_m`` [codebook_size, output_dim] (Xia et al., "Efficient
    On-Device Session-Based Recommendation", TOIS 2023, Sec. 3: the item embedding composed
    from a discrete code of M codewords; Shu and Nakayama's compositional coding).

    The codes ``c(i)`` [input_dim, num_codebooks] are fixed random integers drawn from
    ``seed`` (EODRec learns them by differentiable code learning from a teacher's table; here
    they are drawn once, so only the codebooks are trained). Parameters:
    ``num_codebooks * codebook_size * output_dim`` instead of ``input_dim * output_dim``.

    Args:
        input_dim: int. Number of ids.
        output_dim: int. Embedding width.
        num_codebooks: int. M, codewords per id.
        codebook_size: int. K, vectors per codebook.
        seed: int. Seed of the codes (and of the codebooks' initializer).

    Call: int ids ``[...]`` -> ``[..., output_dim]``.

    Example:
        >>> layer = CompositionalEmbedding(100, 8, num_codebooks=4, codebook_size=16)
        >>> layer(tf.constant([[1, 2, 3]])).shape, layer.count_params()
        (TensorShape([1, 3, 8]), 512)
    """

    def __init__(self, input_dim, output_dim, num_codebooks=4, codebook_size=16, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.num_codebooks = int(num_codebooks)
        self.codebook_size = int(codebook_size)
        self.seed = int(seed)
        if min(self.input_dim, self.output_dim, self.num_codebooks, self.codebook_size) < 1:
            raise ValueError("input_dim, output_dim, num_codebooks and codebook_size must be >= 1")
        rng = np.random.default_rng(self.seed)
        codes = rng.integers(0, self.codebook_size, (self.input_dim, self.num_codebooks))
        # flat rows of the stacked codebooks [M * K, D]: codebook m's row k is m * K + k
        self.codes = (codes + self.codebook_size * np.arange(self.num_codebooks)).astype(np.int32)

    def build(self, input_shape):
        self.codebooks = self.add_weight(
            name="codebooks", shape=(self.num_codebooks * self.codebook_size, self.output_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.05, seed=self.seed), trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        rows = tf.gather(tf.constant(self.codes), tf.cast(inputs, tf.int32))  # [..., M]
        return tf.reduce_sum(tf.gather(self.codebooks, rows), axis=-2)  # [..., D]

    def get_config(self):
        config = super().get_config()
        config.update(input_dim=self.input_dim, output_dim=self.output_dim,
                      num_codebooks=self.num_codebooks, codebook_size=self.codebook_size,
                      seed=self.seed)
        return config
