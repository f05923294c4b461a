"""Events as id arrays, the input of :func:`pitune_tf.data.make_windows`."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class EncodedEvents:
    """One entry per event, sorted by user then time (arrays of equal length ``n``).

    Args:
        user: np.ndarray of str [n]. User ids.
        timestamp: np.int64 [n]. Unix seconds of the naive local time.
        event: np.int32 [n]. Event ids (>= 1; 0 is padding).
        intent: np.int32 [n]. Intent ids.
        location: np.int32 [n]. Location ids.
        weekday: np.int32 [n]. Weekday ids, Mon = 1 ... Sun = 7.
        slot: np.int32 [n]. Time-slot ids, 1 ... n_slots.
        slot_minutes: int. Slot length used for ``slot``.
    """

    user: np.ndarray
    timestamp: np.ndarray
    event: np.ndarray
    intent: np.ndarray
    location: np.ndarray
    weekday: np.ndarray
    slot: np.ndarray
    slot_minutes: int = 60

    def __len__(self) -> int:
        return len(self.event)

    def user_starts(self) -> np.ndarray:
        """Index of each user's first event, plus ``n`` at the end (int64 [n_users + 1])."""
        n = len(self)
        if n == 0:
            return np.zeros(1, dtype=np.int64)
        change = np.flatnonzero(self.user[1:] != self.user[:-1]) + 1
        return np.concatenate([[0], change, [n]]).astype(np.int64)

    def take(self, index) -> EncodedEvents:
        """The events at ``index`` (a slice, boolean mask or index array), order kept."""
        arrays = {
            f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "slot_minutes"
        }
        return EncodedEvents(**arrays, slot_minutes=self.slot_minutes)
