"""The prompt baselines' text: a window of events serialized as a word-level prompt, with the
vocabulary built from the run's own vocabularies (no pretrained tokenizer is reachable)."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.keras import tf

FIELDS = ("event", "location", "weekday", "slot")  # what a prompt may name, per history event
WEEKDAYS = ("<pad>", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
RESERVED = ("<pad>", "<unk>")
PAD = 0

# Each prompt: ``prefix``, then ``event`` once per history event (oldest first; padding
# positions are masked out), then ``suffix``. ``{field}`` in ``event`` is that event's
# field; in ``prefix`` / ``suffix`` it is the newest event's. Words split on spaces.
TEMPLATES = {
    # P5's sequential-recommendation prompt (Geng et al., RecSys 2022): the item history
    "p5": ("given the following interaction history of the user :", "{event} ,",
           "what is the next intent of the user ?"),
    # TALLRec's instruction / input / output format (Bao et al., RecSys 2023)
    "tallrec": ("instruction : given the user's history of events with their time and place , "
                "answer with the intent of the next event . input :",
                "{event} at {location} on {weekday} {slot} ;", "output :"),
    # InstructRec's instruction with the user's context (Zhang et al., 2023)
    "instructrec": ("the user's recent activities are :", "{event} ( {location} {weekday} {slot} )",
                    ". now it is {weekday} {slot} at {location} . "
                    "which intent will the user have next ?"),
}


def slot_words(n_slots, slot_minutes) -> list:
    """Slot ids as clock times: id k >= 1 starts at (k - 1) * slot_minutes (``09:00``)."""
    return ["<pad>"] + [f"{(k * slot_minutes) // 60:02d}:{(k * slot_minutes) % 60:02d}"
                        for k in range(n_slots - 1)]


class PromptTokenizer:
    """Word-level prompts of a template over windows of PITuning Eq. 1.

    The vocabulary: ``RESERVED``, the template's words, then one word per id of each of
    ``FIELDS`` (its name in the run's vocabularies: event and location names, weekday
    names, slot start times) and one per intent (the answer words; an intent's logit is the
    LM's score of its word). A prompt is a fixed layout of ``length`` tokens: each is a
    template word or a field of one history position, so :meth:`encode` is a gather in the
    graph (the same ids for numpy and symbolic inputs).

    Args:
        field_words: dict. For each of ``FIELDS``, its words by id (list of str).
        intent_words: list of str. The intents' words by id.
        template: str. A key of ``TEMPLATES``.
        history: int. L, the window length.

    Example:
        >>> tok = PromptTokenizer(words, intents, "p5", history=2)
        >>> tok.text(window_features, row=0)
        'given the following interaction history of the user : news_app , music , what is ...'
    """

    def __init__(self, field_words, intent_words, template, history):
        if template not in TEMPLATES:
            raise ValueError(f"unknown template {template!r}; choose from {sorted(TEMPLATES)}")
        self.field_words = {f: [str(w) for w in field_words[f]] for f in FIELDS}
        self.intent_words = [str(w) for w in intent_words]
        self.template = template
        self.history = int(history)
        prefix, event, suffix = (part.split() for part in TEMPLATES[template])
        literals = sorted({w for w in prefix + event + suffix if not _is_field(w)})
        self.words = list(RESERVED) + literals
        self.offsets = {}
        for f in FIELDS:
            self.offsets[f] = len(self.words)
            self.words += self.field_words[f]
        self.intent_offset = len(self.words)
        self.words += self.intent_words
        index = {w: i for i, w in enumerate(self.words[:len(RESERVED) + len(literals)])}
        newest = self.history - 1
        layout = [(w, newest if _is_field(w) else -1) for w in prefix]
        layout += [(w, p) for p in range(self.history) for w in event]
        layout += [(w, newest if _is_field(w) else -1) for w in suffix]
        # per token: its history position (-1: always present), the field it shows (-1: a
        # template word) and its word id (template words)
        self.position = np.array([p for _, p in layout], np.int32)  # [T]
        self.field = np.array([FIELDS.index(w[1:-1]) if _is_field(w) else -1 for w, _ in layout],
                              np.int32)
        self.literal = np.array([0 if _is_field(w) else index[w] for w, _ in layout], np.int32)

    @classmethod
    def from_vocabularies(cls, vocabs, template, history) -> PromptTokenizer:
        """The tokenizer of a run's vocabularies (``Vocabularies``)."""
        sizes = vocabs.sizes
        words = {"event": vocabs.event.tokens, "location": vocabs.location.tokens,
                 "weekday": list(WEEKDAYS[:sizes["weekday"]]),
                 "slot": slot_words(sizes["slot"], vocabs.slot_minutes)}
        return cls(words, vocabs.intent.tokens, template, history)

    @property
    def length(self) -> int:
        """T, tokens per prompt."""
        return len(self.position)

    @property
    def intent_ids(self) -> np.ndarray:
        """The answer words' ids, by intent id."""
        return self.intent_offset + np.arange(len(self.intent_words), dtype=np.int32)

    def encode(self, features):
        """``(ids int32 [batch, T], mask float32 [batch, T])`` of a window batch (numpy or
        tensors): masked tokens (those of padding positions) are ``PAD``."""
        window = {f: tf.cast(features[f], tf.int32) for f in FIELDS}
        ids = tf.stack([window[f] + self.offsets[f] for f in FIELDS], axis=1)  # [batch, 4, L]
        ids = tf.reshape(ids, [-1, len(FIELDS) * self.history])
        source = np.maximum(self.field, 0) * self.history + np.maximum(self.position, 0)
        ids = tf.where(self.field[None] >= 0, tf.gather(ids, source, axis=1), self.literal[None])
        mask = tf.gather(tf.cast(features["mask"], tf.float32), np.maximum(self.position, 0), axis=1)
        mask = tf.where(self.position[None] >= 0, mask, 1.0)  # [batch, T]
        return tf.where(mask > 0, ids, PAD), mask

    def text(self, features, row=0) -> str:
        """Row ``row``'s prompt as text (its unmasked words)."""
        ids, mask = self.encode({k: np.asarray(v)[row:row + 1] for k, v in features.items()})
        return " ".join(self.words[i] for i, m in zip(ids.numpy()[0], mask.numpy()[0]) if m > 0)

    def get_config(self) -> dict:
        return {"field_words": self.field_words, "intent_words": self.intent_words,
                "template": self.template, "history": self.history}


def _is_field(word) -> bool:
    return word.startswith("{") and word.endswith("}") and word[1:-1] in FIELDS
