"""A string-to-id vocabulary with reserved ids: one implementation for events, intents,
locations (PITuning) and source / target items (UAF)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pitune_tf.common.errors import UserInputError

logger = logging.getLogger(__name__)

ORDERS = ("sorted", "frequency")

# The one statement of the reserved ids of every PITuning vocabulary (events, intents,
# locations): id 0 is padding, id 1 the unknown value; real values start at N_RESERVED.
PAD_ID, UNK_ID = 0, 1
RESERVED_IDS = (PAD_ID, UNK_ID)
N_RESERVED = len(RESERVED_IDS)


class Vocabulary:
    """Maps strings to int32 ids; the first ids are reserved tokens, the last reserved one is
    the unknown token.

    With the default ``reserved=("<pad>", "<unk>")`` id 0 is padding and id 1 the unknown
    value (PITuning's events, intents, locations; UAF's source items). UAF's target items use
    ``reserved=("<unk>",)``: id 0 is the unknown target and the valid targets are
    ``1 .. len - 1``. At encoding an unseen value (or NA, or a literal reserved token) maps
    to :attr:`unk_id`, is counted in :attr:`unknown_count` and, with ``warn``, logged with
    one warning per :meth:`encode` call, never an error.

    Args:
        tokens: list of str. The tokens; the reserved ones are put first when the list does
            not start with them.
        name: str. Used in log messages (e.g. ``"event"``).
        reserved: tuple of str. The reserved tokens, the unknown token last.
        warn: bool. Log a warning when :meth:`encode` meets unseen values.

    Example:
        >>> vocab = Vocabulary.fit(["b", "a", "b"], name="event")
        >>> vocab.tokens
        ['<pad>', '<unk>', 'a', 'b']
        >>> vocab.encode(["a", "z"]).tolist(), vocab.unknown_count
        ([2, 1], 1)
        >>> Vocabulary.fit(["b", "a", "b"], reserved=("<unk>",), order="frequency").tokens
        ['<unk>', 'b', 'a']
    """

    PAD = PAD_ID  # ids of the default reserved tokens
    UNK = UNK_ID
    PAD_TOKEN = "<pad>"
    UNK_TOKEN = "<unk>"
    DEFAULT_RESERVED = (PAD_TOKEN, UNK_TOKEN)  # ids PAD_ID, UNK_ID

    def __init__(self, tokens: Iterable[str] = (), name: str = "", reserved=DEFAULT_RESERVED,
                 warn: bool = True):
        reserved = tuple(str(t) for t in reserved)
        if not reserved:
            raise UserInputError(f"vocabulary {name!r}: at least the unknown token is reserved")
        tokens = [str(t) for t in tokens]
        if tuple(tokens[: len(reserved)]) != reserved:
            tokens = list(reserved) + tokens
        rest = tokens[len(reserved):]
        if set(reserved) & set(rest) or len(set(rest)) != len(rest):
            raise UserInputError(f"vocabulary {name!r}: duplicate or reserved tokens")
        self.tokens = tokens
        self.name = name
        self.reserved = reserved
        self.warn = warn
        self.unk_id = len(reserved) - 1
        self.unknown_count = 0
        self._index = {t: i for i, t in enumerate(tokens)}
        for token in reserved:  # a literal reserved value in the data is not padding
            self._index[token] = self.unk_id

    @classmethod
    def fit(cls, values, min_count: int = 1, name: str = "", reserved=DEFAULT_RESERVED,
            order: str = "sorted", warn: bool = True) -> Vocabulary:
        """A vocabulary of the values seen at least ``min_count`` times.

        Args:
            values: iterable of str. The values (NA is ignored).
            order: str. ``"sorted"`` (ids do not depend on the data's order) or
                ``"frequency"`` (most frequent first, ties by token).
        """
        if not isinstance(values, (pd.Series, np.ndarray, list)):
            values = list(values)
        series = pd.Series(values, copy=False, dtype=None if len(values) else object)
        return cls.from_counts(series.value_counts(dropna=True), min_count, name, reserved,
                               order, warn)

    @classmethod
    def from_counts(cls, counts, min_count: int = 1, name: str = "", reserved=DEFAULT_RESERVED,
                    order: str = "sorted", warn: bool = True) -> Vocabulary:
        """:meth:`fit` from the values' counts (``pd.Series`` value -> count, e.g. the sum of
        per-chunk ``value_counts`` of a streamed log): the same vocabulary as ``fit`` on
        the values themselves."""
        if min_count < 1:
            raise UserInputError(f"min_count must be >= 1, got {min_count}")
        if order not in ORDERS:
            raise UserInputError(f"order must be one of {ORDERS}, got {order!r}")
        reserved = tuple(reserved)
        counts = pd.Series(counts, copy=True)
        counts.index = counts.index.astype(str)
        counts = counts.groupby(level=0).sum()
        kept = {t: int(c) for t, c in counts.items() if c >= min_count and t not in reserved}
        if order == "sorted":
            tokens = sorted(kept)
        else:
            tokens = sorted(kept, key=lambda t: (-kept[t], t))
        return cls(tokens, name=name, reserved=reserved, warn=warn)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token) -> bool:
        return self._index.get(token, -1) >= len(self.reserved)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Vocabulary) and self.tokens == other.tokens
                and self.reserved == other.reserved)

    def __repr__(self) -> str:
        return f"Vocabulary(name={self.name!r}, size={len(self)})"

    def encode(self, values) -> np.ndarray:
        """Ids (np.int32, same length as ``values``); unseen values and NA map to ``unk_id``."""
        if not isinstance(values, (pd.Series, np.ndarray, list, pd.Index)):
            values = list(values)
        series = pd.Series(values, copy=False, dtype=None if len(values) else object)
        if isinstance(series.dtype, pd.CategoricalDtype):  # already factorized
            codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
        else:
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
        lookup = np.fromiter(
            (self._index.get(str(u), self.unk_id) for u in uniques), dtype=np.int32,
            count=len(uniques),
        )
        lookup = np.append(lookup, np.int32(self.unk_id))  # code -1 (NA) -> unknown
        ids = lookup[codes]
        unseen = int(np.count_nonzero(ids == self.unk_id))
        if unseen:
            self.unknown_count += unseen
            if self.warn:
                examples = [str(uniques[i])
                            for i in np.flatnonzero(lookup[:-1] == self.unk_id)[:3]]
                logger.warning(
                    "vocabulary %r: %d of %d values unseen at fit time, mapped to %s (id %d); "
                    "e.g. %s", self.name, unseen, len(ids), self.reserved[-1], self.unk_id,
                    examples,
                )
        return ids.astype(np.int32, copy=False)

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
        """The JSON form: the token list (index = id), reserved tokens first."""
        return list(self.tokens)

    @classmethod
    def from_json(cls, tokens, name: str = "", reserved=DEFAULT_RESERVED) -> Vocabulary:
        reserved = tuple(reserved)
        if not isinstance(tokens, list) or tuple(tokens[: len(reserved)]) != reserved:
            raise UserInputError(
                f"vocabulary {name!r}: expected a token list starting with "
                f"{', '.join(map(repr, reserved))}"
            )
        return cls(tokens, name=name, reserved=reserved)
