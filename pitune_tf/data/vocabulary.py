"""A string-to-id vocabulary with reserved padding and unknown ids."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pitune_tf.errors import UserInputError

logger = logging.getLogger(__name__)


class Vocabulary:
    """Maps strings to int32 ids; id 0 is padding, id 1 the unknown value.

    Tokens are sorted (so ids do not depend on the order of the data). At inference an
    unseen value maps to :attr:`UNK`, is counted in :attr:`unknown_count` and logged with
    one warning per :meth:`encode` call, never an error.

    Args:
        tokens: list of str. The tokens; ``"<pad>"`` and ``"<unk>"`` are put first when the
            list does not start with them.
        name: str. Used in log messages (e.g. ``"event"``).

    Example:
        >>> vocab = Vocabulary.fit(["b", "a", "b"], name="event")
        >>> vocab.tokens
        ['<pad>', '<unk>', 'a', 'b']
        >>> vocab.encode(["a", "z"]).tolist(), vocab.unknown_count
        ([2, 1], 1)
    """

    PAD = 0
    UNK = 1
    PAD_TOKEN = "<pad>"
    UNK_TOKEN = "<unk>"

    def __init__(self, tokens: Iterable[str] = (), name: str = ""):
        tokens = [str(t) for t in tokens]
        if tokens[:2] != [self.PAD_TOKEN, self.UNK_TOKEN]:
            tokens = [self.PAD_TOKEN, self.UNK_TOKEN] + tokens
        rest = tokens[2:]
        if self.PAD_TOKEN in rest or self.UNK_TOKEN in rest or len(set(rest)) != len(rest):
            raise UserInputError(f"vocabulary {name!r}: duplicate or reserved tokens")
        self.tokens = tokens
        self.name = name
        self.unknown_count = 0
        self._index = {t: i for i, t in enumerate(tokens)}
        self._index[self.PAD_TOKEN] = self.UNK  # a literal "<pad>" value is not padding

    @classmethod
    def fit(cls, values, min_count: int = 1, name: str = "") -> Vocabulary:
        """Builds a vocabulary of the values seen at least ``min_count`` times."""
        if min_count < 1:
            raise UserInputError(f"min_count must be >= 1, got {min_count}")
        counts = pd.Series(values, copy=False).value_counts(dropna=True)
        kept = counts[counts >= min_count].index.astype(str)
        kept = sorted(t for t in kept if t not in (cls.PAD_TOKEN, cls.UNK_TOKEN))
        return cls(kept, name=name)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token) -> bool:
        return token in self._index and self._index[token] > self.UNK

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"Vocabulary(name={self.name!r}, size={len(self)})"

    def encode(self, values) -> np.ndarray:
        """Ids (np.int32, same length as ``values``); unseen values and NA map to ``UNK``."""
        series = pd.Series(values, copy=False)
        if isinstance(series.dtype, pd.CategoricalDtype):  # already factorized
            codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
        else:
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
        lookup = np.fromiter(
            (self._index.get(str(u), self.UNK) for u in uniques), dtype=np.int32, count=len(uniques)
        )
        lookup = np.append(lookup, np.int32(self.UNK))  # code -1 (NA) -> UNK
        ids = lookup[codes]
        unseen = int(np.count_nonzero(ids == self.UNK))
        if unseen:
            self.unknown_count += unseen
            examples = [str(uniques[i]) for i in np.flatnonzero(lookup[:-1] == self.UNK)[:3]]
            logger.warning(
                "vocabulary %r: %d of %d values unseen at fit time, mapped to %s (id %d); e.g. %s",
                self.name,
                unseen,
                len(ids),
                self.UNK_TOKEN,
                self.UNK,
                examples,
            )
        return ids

    def decode(self, ids) -> list[str]:
        """Tokens for ``ids``; an id out of range is an error."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.tokens)):
            raise UserInputError(
                f"vocabulary {self.name!r}: id out of range [0, {len(self.tokens)})"
            )
        tokens = np.asarray(self.tokens, dtype=object)
        return tokens[ids].tolist()

    def to_json(self) -> list[str]:
        """The JSON form: the token list (index = id)."""
        return list(self.tokens)

    @classmethod
    def from_json(cls, tokens, name: str = "") -> Vocabulary:
        if not isinstance(tokens, list) or tokens[:2] != [cls.PAD_TOKEN, cls.UNK_TOKEN]:
            raise UserInputError(
                f"vocabulary {name!r}: expected a token list starting with "
                f"{cls.PAD_TOKEN!r}, {cls.UNK_TOKEN!r}"
            )
        return cls(tokens, name=name)
