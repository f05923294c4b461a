"""The teacher's transformer blocks: a Hugging Face TFGPT2Model on embeddings (PITuning Eq. 2)."""

from __future__ import annotations

from pitune_tf.common.keras import keras


def set_partial_tuning(transformer, partial: bool) -> int:
    """Freezes (``partial=True``) or unfreezes every GPT2 block's ``attn`` and ``mlp``.

    The OFA-style partial tuning (PP in PITuning Table 3): self-attention and feed-forward
    weights frozen; layer norms and the position embedding left as they are. ``wte`` is not
    touched (:class:`GPT2Backbone` always freezes it).

    Args:
        transformer: the ``TFGPT2MainLayer`` (``TFGPT2Model.transformer``, e.g.
            ``model.backbone.gpt2.transformer``).
        partial: bool. True freezes the sublayers (PP); False makes them trainable (FP).

    Returns:
        int. The number of frozen sublayers: ``2 * n_layer`` when ``partial``, else 0.
    """
    for block in transformer.h:
        block.attn.trainable = not partial
        block.mlp.trainable = not partial
    return 2 * len(transformer.h) if partial else 0


class GPT2Backbone(keras.layers.Layer):
    """H_t = GPT2(x) (PITuning Eq. 2) on ``inputs_embeds`` with padding masked.

    Called as ``gpt2(input_ids=None, inputs_embeds=x, attention_mask=mask)``. The token
    embedding table ``wte`` is never used and is frozen.

    ``tuning="partial"`` is the OFA-style partial tuning (PP in Table 3): every block's
    self-attention and feed-forward weights are frozen; layer norms and the position
    embedding stay trainable (with the project's embeddings and heads around it); see
    :func:`set_partial_tuning`.

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
            set_partial_tuning(transformer, True)

    def call(self, inputs, mask, training=None):
        outputs = self.gpt2(
            input_ids=None, inputs_embeds=inputs, attention_mask=mask, training=training
        )
        return outputs.last_hidden_state  # [batch, L, D]

    def get_config(self):
        config = super().get_config()
        config.update(tuning=self.tuning, width=self.width)
        return config
