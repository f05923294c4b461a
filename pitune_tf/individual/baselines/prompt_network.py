"""A GPT2 that reads a window as a word-level prompt and scores each intent's answer word
(the prompt baselines' network: TallRec, P5, InstructRec)."""

from __future__ import annotations

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf
from pitune_tf.individual.baselines.prompt_tokenizer import PromptTokenizer
from pitune_tf.models.gpt2_checkpoint import RANDOM_PATTERN, random_config


@keras.saving.register_keras_serializable(package="pitune")
class PromptIntentNetwork(keras.Model):
    """``logits_i = h_T . wte[word(intent i)]``: the window serialized by a
    :class:`PromptTokenizer` (in the graph), a Hugging Face ``TFGPT2Model`` over the token
    ids (padding masked), and the LM head's score of each intent's answer word at the
    prompt's last token (next-word generation restricted to the candidate answers, GPT2's
    tied output embedding).

    The GPT2 is random (``backbone = random:<layers>x<width>``, no dropout): the prompts'
    word-level vocabulary has no pretrained model.

    Args:
        field_words, intent_words, template, history: the :class:`PromptTokenizer`'s.
        backbone: str. ``random:<layers>x<width>``.

    Call: features dict -> logits ``[batch, n_intents]``.
    """

    def __init__(self, field_words, intent_words, template, history, backbone="random:2x64",
                 **kwargs):
        super().__init__(**kwargs)
        from transformers import TFGPT2Model  # deferred: only these baselines load it

        match = RANDOM_PATTERN.match(str(backbone))
        if not match:
            raise UserInputError(f"the prompt baselines need a random:<layers>x<width> GPT2 (their "
                                 f"word-level vocabulary has no pretrained one), got {backbone!r}")
        self.tokenizer = PromptTokenizer(field_words, intent_words, template, history)
        self.backbone = str(backbone)
        config = random_config(int(match.group(1)), int(match.group(2)), dropout=0.0,
                               max_positions=max(self.tokenizer.length, 8))
        config.vocab_size = len(self.tokenizer.words)
        self.gpt2 = TFGPT2Model(config, name="gpt2")

    @classmethod
    def from_vocabularies(cls, vocabs, template, history, backbone="random:2x64", **kwargs):
        tokenizer = PromptTokenizer.from_vocabularies(vocabs, template, history)
        return cls(**tokenizer.get_config(), backbone=backbone, **kwargs)

    def call(self, inputs, training=None):
        ids, mask = self.tokenizer.encode(inputs)  # [batch, T]
        hidden = self.gpt2(input_ids=ids, attention_mask=mask, training=training).last_hidden_state
        answers = tf.gather(self.gpt2.transformer.wte.embeddings, self.tokenizer.intent_ids)  # [N_I, D]
        return tf.matmul(hidden[:, -1], answers, transpose_b=True)  # [batch, N_I]

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self.tokenizer.get_config(),
                "backbone": self.backbone}
