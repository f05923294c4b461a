"""The teacher's transformer blocks: a Hugging Face TFGPT2Model on embeddings (Eq. 2)."""

from __future__ import annotations

from pitune_tf.common.keras import keras


class GPT2Backbone(keras.layers.Layer):
    """H_t = GPT2(x) (Eq. 2) on ``inputs_embeds`` with padding masked.

    Called as ``gpt2(input_ids=None, inputs_embeds=x, attention_mask=mask)``. The token
    embedding table ``wte`` is never used and is frozen.

    ``tuning="partial"`` is the OFA-style partial tuning (PP in Table 3): every block's
    self-attention and feed-forward weights are frozen; layer norms and the position
    embedding stay trainable (with the project's embeddings and heads around it).

    Args:
        gpt2: a built ``transformers.TFGPT2Model`` (see ``backbone.load_backbone``).
        tuning: str. "full" or "partial".

    Call: ``(inputs [batch, L, D], mask [batch, L])`` -> ``[batch, L, D]``.

    Not serializable through ``get_config`` (the weights live in Hugging Face format; see
    ``pitune_tf.models.teacher_io``).
    """

    def __init__(self, gpt2, tuning="full", **kwargs):
        super().__init__(**kwargs)
        if tuning not in ("full", "partial"):
            raise ValueError(f"tuning must be 'full' or 'partial', got {tuning!r}")
        self.gpt2 = gpt2
        self.tuning = tuning
        self.width = int(gpt2.config.n_embd)
        transformer = gpt2.transformer
        transformer.wte.trainable = False
        if tuning == "partial":
            for block in transformer.h:
                block.attn.trainable = False
                block.mlp.trainable = False

    def call(self, inputs, mask, training=None):
        outputs = self.gpt2(
            input_ids=None, inputs_embeds=inputs, attention_mask=mask, training=training
        )
        return outputs.last_hidden_state  # [batch, L, D]

    def get_config(self):
        config = super().get_config()
        config.update(tuning=self.tuning, width=self.width)
        return config
