"""LoRA adapters on a GPT2 (``TFGPT2MainLayer``) and the network view that trains only them:
what LSAT and TallRec tune per user."""

from __future__ import annotations

from pitune_tf.common.keras import keras
from pitune_tf.layers.lora_dense import LoRADense, dense_kernel

LORA_TARGETS = ("attn.c_attn",)  # GPT2's fused query / key / value projection of each block


def add_lora(transformer, rank=4, alpha=8.0, seed=0, targets=LORA_TARGETS) -> list:
    """Wraps the ``targets`` (``"<sublayer>.<projection>"``) of every block of a GPT2 main
    layer in a built :class:`~pitune_tf.layers.LoRADense` (base frozen, ``B = 0``: the
    network computes what it did before); returns the adapters, block by block."""
    adapters = []
    for i, block in enumerate(transformer.h):
        for target in targets:
            owner_name, attribute = target.split(".")
            owner = getattr(block, owner_name)
            base = getattr(owner, attribute)
            lora = LoRADense(base, rank=rank, alpha=alpha, seed=seed + len(adapters),
                             name=f"lora_{i}_{owner_name}_{attribute}")
            lora.build([None, None, int(dense_kernel(base).shape[0])])
            setattr(owner, attribute, lora)
            adapters.append(lora)
    return adapters


class AdapterOnly(keras.Model):
    """``network`` whose trainable variables are its adapters' ``A`` and ``B`` only (the
    rest frozen, whatever its layers' ``trainable`` flags say); ``weights`` are all of
    ``network``'s, so a backend's reset restores the base kernels after a merge too.

    Args:
        network: keras.Model. Features -> logits, with the ``adapters`` inside.
        adapters: list of LoRADense.

    Not serializable (a per-user view, never saved).
    """

    def __init__(self, network, adapters, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.adapters = list(adapters)

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)  # [batch, n_intents]

    @property
    def trainable_weights(self):
        return [w for layer in self.adapters for w in (layer.lora_a, layer.lora_b)]

    @property
    def non_trainable_weights(self):
        adapter = {id(w) for w in self.trainable_weights}
        return [w for w in self.network.weights if id(w) not in adapter]

    def dummy_inputs(self, batch_size=1):
        return self.network.dummy_inputs(batch_size=batch_size)
