"""LoRA: a low-rank trainable update beside a frozen dense layer (LSAT's and TallRec's adapters)."""

from __future__ import annotations

from pitune_tf.common.keras import deserialize_nested, keras, tf


def dense_kernel(layer):
    """The ``[in, out]`` kernel of a dense-like layer: ``kernel`` of a Keras ``Dense``,
    ``weight`` of Hugging Face's ``TFConv1D`` (GPT2's projections)."""
    kernel = getattr(layer, "kernel", None)
    return kernel if kernel is not None else layer.weight


@keras.saving.register_keras_serializable(package="pitune")
class LoRADense(keras.layers.Layer):
    """``y = base(x) + (alpha / rank) (x A) B`` (Hu et al., "LoRA: Low-Rank Adaptation of
    Large Language Models", ICLR 2022, Eq. 3: h = W_0 x + B A x, scaled by alpha / r).

    The base layer (``W_0``, a Keras ``Dense`` or GPT2's ``TFConv1D``, kernel ``[in, out]``)
    is frozen with ``freeze_base``; only ``A`` [in, rank] (random normal, std 1 / rank) and
    ``B`` [rank, out] (zeros, so the wrapped layer starts as the base layer) are trained.
    :meth:`merge` folds the update into the base kernel (``W_0 + (alpha / rank) A B``) and
    zeros ``B``: the same function, no extra matmuls at inference.

    Args:
        base: keras Layer. A dense-like layer mapping ``[..., in]`` to ``[..., out]``.
        rank: int. r, the rank of the update.
        alpha: float. The update's scale is ``alpha / rank``.
        freeze_base: bool. Set ``base.trainable = False``.
        seed: int. Seed of ``A``'s initializer.

    Call: ``x [..., in]`` -> ``[..., out]``.

    ``get_config`` serializes ``base`` with ``keras.layers.serialize`` (a Keras ``Dense``
    round-trips; a Hugging Face layer does not).

    Example:
        >>> lora = LoRADense(keras.layers.Dense(4), rank=2)
        >>> lora(tf.ones([3, 5])).shape
        TensorShape([3, 4])
    """

    def __init__(self, base, rank=4, alpha=8.0, freeze_base=True, seed=0, **kwargs):
        super().__init__(**kwargs)
        if int(rank) < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        self.base = base
        self.rank = int(rank)
        self.alpha = float(alpha)
        self.freeze_base = bool(freeze_base)
        self.seed = int(seed)
        if self.freeze_base:
            self.base.trainable = False

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def build(self, input_shape):
        if not self.base.built:
            self.base.build(input_shape)
        n_in, n_out = (int(d) for d in dense_kernel(self.base).shape)
        self.lora_a = self.add_weight(
            name="lora_a", shape=(n_in, self.rank), trainable=True,
            initializer=keras.initializers.RandomNormal(stddev=1.0 / self.rank, seed=self.seed))
        self.lora_b = self.add_weight(name="lora_b", shape=(self.rank, n_out), trainable=True,
                                      initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        low = tf.einsum("...i,ir->...r", inputs, self.lora_a)  # [..., rank]
        return self.base(inputs) + self.scale * tf.einsum("...r,ro->...o", low, self.lora_b)

    def delta(self):
        """``(alpha / rank) A B`` [in, out], the update of the base kernel."""
        return self.scale * tf.matmul(self.lora_a, self.lora_b)

    def merge(self, delta=None):
        """Adds ``delta`` (default :meth:`delta`, this adapter's own update) to the base
        kernel and zeros ``B``: afterwards the layer computes ``x (W_0 + delta) + b``."""
        update = self.delta() if delta is None else tf.convert_to_tensor(delta, tf.float32)
        dense_kernel(self.base).assign_add(update)
        self.lora_b.assign(tf.zeros_like(self.lora_b))

    def get_config(self):
        config = super().get_config()
        base = keras.layers.serialize(self.base)
        base.pop("build_config", None)  # the wrapper builds its base
        config.update(base=base, rank=self.rank, alpha=self.alpha,
                      freeze_base=self.freeze_base, seed=self.seed)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_nested(config, "base"))
