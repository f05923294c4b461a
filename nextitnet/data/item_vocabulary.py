"""Item token <-> id mapping with reserved ids."""

from __future__ import annotations

from collections import Counter

import numpy as np


class ItemVocabulary:
    """Maps item tokens to int ids; the first ids are reserved tokens.

    Source items use ``reserved=("<pad>", "<unk>")`` (0 = padding, 1 = unknown); target items
    use ``reserved=("<unk>",)`` so that id 0 is the reserved id of target items unseen in
    training and the valid targets are ``1 .. len - 1``.

    Args:
        tokens: list of str. All tokens, index = id, reserved ones first.
        reserved: tuple of str. The reserved tokens; the last one is the unknown token.
    """

    def __init__(self, tokens, reserved=("<pad>", "<unk>")):
        self.tokens = list(tokens)
        self.reserved = tuple(reserved)
        if tuple(self.tokens[: len(self.reserved)]) != self.reserved:
            raise ValueError(f"tokens must start with {self.reserved}")
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.unk_id = len(self.reserved) - 1
        self.unknown_count = 0

    @classmethod
    def fit(cls, sequences, reserved=("<pad>", "<unk>"), min_count=1):
        """Vocabulary of every token seen ``min_count`` times, most frequent first."""
        counts = Counter(t for seq in sequences for t in seq)
        ordered = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls(list(reserved) + [t for t in ordered if t not in reserved], reserved)

    def encode(self, tokens) -> np.ndarray:
        """int32 ids; tokens not in the vocabulary map to the unknown id (and are counted)."""
        ids = np.fromiter((self.index.get(t, -1) for t in tokens), dtype=np.int64, count=len(tokens))
        unknown = ids < 0
        self.unknown_count += int(unknown.sum())
        ids[unknown] = self.unk_id
        return ids.astype(np.int32)

    def decode(self, ids) -> list[str]:
        return [self.tokens[int(i)] for i in ids]

    def __len__(self):
        return len(self.tokens)

    def to_json(self) -> dict:
        return {"reserved": list(self.reserved), "tokens": self.tokens}

    @classmethod
    def from_json(cls, obj):
        return cls(obj["tokens"], tuple(obj["reserved"]))
