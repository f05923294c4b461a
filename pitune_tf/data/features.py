"""Context features from timestamps (weekday, time slot) and event encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pitune_tf.common.errors import UserInputError
from pitune_tf.data.encoded_events import EncodedEvents
from pitune_tf.data.io import NO_LOCATION, sort_events

N_WEEKDAY_IDS = 8  # 0 = pad, Mon = 1 ... Sun = 7
_DAY_SECONDS = 86_400
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Mon = 0)


def n_slot_ids(slot_minutes: int = 60) -> int:
    """Size of the slot-id vocabulary: ``n_slots + 1`` (id 0 is padding)."""
    if int(slot_minutes) != slot_minutes or not 1 <= slot_minutes <= 1440:
        raise UserInputError(f"slot_minutes must be an integer in [1, 1440], got {slot_minutes}")
    return -(-1440 // int(slot_minutes)) + 1


def day_index(seconds: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of unix seconds (floor, so times before 1970 work too)."""
    return np.floor_divide(np.asarray(seconds, dtype=np.int64), _DAY_SECONDS)


def weekday_ids(seconds: np.ndarray) -> np.ndarray:
    """Weekday id (Mon = 1 ... Sun = 7) of unix seconds, int32."""
    ids = (day_index(seconds) + _EPOCH_WEEKDAY).astype(np.int32)  # days fit in int32
    np.remainder(ids, 7, out=ids)
    ids += 1
    return ids


def slot_ids(seconds: np.ndarray, slot_minutes: int = 60) -> np.ndarray:
    """Time-slot id (1 ... n_slots) of unix seconds, int32; slot 1 starts at midnight."""
    n_slot_ids(slot_minutes)
    ids = np.mod(np.asarray(seconds, dtype=np.int64), _DAY_SECONDS).astype(np.int32)
    ids //= int(slot_minutes) * 60
    ids += 1
    return ids


def timestamp_seconds(timestamps) -> np.ndarray:
    """Unix seconds (int64, floored) of naive datetimes."""
    values = np.asarray(timestamps)
    if not np.issubdtype(values.dtype, np.datetime64):
        values = pd.to_datetime(pd.Series(timestamps)).to_numpy()
    return values.astype("datetime64[ns]").astype(np.int64) // 10**9


def encode_events(df: pd.DataFrame, vocabs, slot_minutes: int | None = None) -> EncodedEvents:
    """Encodes a canonical event table with ``vocabs`` (PITuning Eq. 1 inputs per event).

    Args:
        df: canonical event table (sorted here when it is not sorted by user and time).
        vocabs: :class:`~pitune_tf.data.Vocabularies`. Unseen values map to the unknown id,
            counted and logged by each vocabulary.
        slot_minutes: int or None. Slot length of the slot ids; None uses
            ``vocabs.slot_minutes`` (default 60). A different value is an error, since the
            model's slot embedding size comes from the vocabularies.

    Returns:
        :class:`EncodedEvents`.
    """
    if slot_minutes is None:
        slot_minutes = vocabs.slot_minutes
    if slot_minutes != vocabs.slot_minutes:
        raise UserInputError(
            f"slot_minutes={slot_minutes} differs from the vocabularies' "
            f"slot_minutes={vocabs.slot_minutes}; pass it to Vocabularies.fit"
        )
    missing = [c for c in ("user_id", "timestamp", "event", "intent") if c not in df.columns]
    if missing:
        raise UserInputError(f"not a canonical event table: missing column(s) {missing}")
    df = sort_events(df)
    seconds = timestamp_seconds(df["timestamp"].to_numpy())
    if "location" in df.columns:
        location = vocabs.location.encode(df["location"])
    else:
        location = np.full(len(df), vocabs.location.encode([NO_LOCATION])[0], dtype=np.int32)
    codes, uniques = pd.factorize(df["user_id"], sort=False)
    users = np.asarray([str(u) for u in uniques])[codes]
    return EncodedEvents(
        user=users,
        timestamp=seconds,
        event=vocabs.event.encode(df["event"]),
        intent=vocabs.intent.encode(df["intent"]),
        location=location,
        weekday=weekday_ids(seconds),
        slot=slot_ids(seconds, slot_minutes),
        slot_minutes=int(slot_minutes),
    )
