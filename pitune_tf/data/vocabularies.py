"""The event, intent and location vocabularies of a dataset, saved as ``vocab.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pitune_tf.common.atomic import write_json
from pitune_tf.common.errors import UserInputError, not_found
from pitune_tf.common.vocabulary import Vocabulary
from pitune_tf.data.features import N_WEEKDAY_IDS, n_slot_ids
from pitune_tf.data.io import NO_LOCATION

VOCAB_FILE = "vocab.json"


def value_counts(df: pd.DataFrame, into: dict | None = None) -> dict:
    """``{"event", "intent", "location"}`` -> ``pd.Series`` value -> count of a canonical
    event table (no location column counts as ``NO_LOCATION`` once), added to ``into``'s
    counts when given (a streamed log, chunk by chunk)."""
    counts = {
        "event": df["event"].value_counts(dropna=True),
        "intent": df["intent"].value_counts(dropna=True),
        "location": (df["location"].value_counts(dropna=True) if "location" in df.columns
                     else pd.Series({NO_LOCATION: 1})),
    }
    if into is not None:
        counts = {k: into[k].add(v, fill_value=0).astype("int64") for k, v in counts.items()}
    return counts


@dataclass
class Vocabularies:
    """Vocabularies for the categorical inputs of PITuning Eq. 1 and the intent labels.

    Saved as ``dir/vocab.json`` beside every model artifact and reused at inference.

    Args:
        event: Vocabulary. Event (app, POI) ids, the ``e`` of PITuning Eq. 1.
        intent: Vocabulary. Intent labels; ``n_intents = len(intent)`` includes the two
            reserved ids, which are never labels.
        location: Vocabulary. Location ids, the ``l`` of PITuning Eq. 1.
        slot_minutes: int. Length of the time slots of the context features (default 60:
            24 slots), kept here so that inference uses the slots of training.

    Example:
        >>> vocabs = Vocabularies.fit(events_df)
        >>> vocabs.save("runs/demo"); Vocabularies.load("runs/demo") == vocabs
        True
    """

    event: Vocabulary
    intent: Vocabulary
    location: Vocabulary
    slot_minutes: int = field(default=60)  # 60 min -> 24 slots, slot ids 1..24

    @classmethod
    def fit(cls, df: pd.DataFrame, min_count: int = 1, slot_minutes: int = 60) -> Vocabularies:
        """Fits the three vocabularies on a canonical event table."""
        missing = [c for c in ("event", "intent") if c not in df.columns]
        if missing:
            raise UserInputError(f"not a canonical event table: missing column(s) {missing}")
        return cls.from_counts(value_counts(df), min_count, slot_minutes)

    @classmethod
    def from_counts(cls, counts: dict, min_count: int = 1,
                    slot_minutes: int = 60) -> Vocabularies:
        """:meth:`fit` from :func:`value_counts` (summed over the chunks of a streamed log)."""
        n_slot_ids(slot_minutes)  # validates
        return cls(
            event=Vocabulary.from_counts(counts["event"], min_count, name="event"),
            intent=Vocabulary.from_counts(counts["intent"], 1, name="intent"),
            location=Vocabulary.from_counts(counts["location"], min_count, name="location"),
            slot_minutes=int(slot_minutes),
        )

    @property
    def n_intents(self) -> int:
        """Number of intent ids, the reserved ones included (the models' logit width)."""
        return len(self.intent)

    @property
    def sizes(self) -> dict[str, int]:
        """Embedding table sizes: ``event, intent, location, weekday, slot``."""
        return {
            "event": len(self.event),
            "intent": len(self.intent),
            "location": len(self.location),
            "weekday": N_WEEKDAY_IDS,
            "slot": n_slot_ids(self.slot_minutes),
        }

    def to_json(self) -> dict:
        return {
            "slot_minutes": self.slot_minutes,
            "event": self.event.to_json(),
            "intent": self.intent.to_json(),
            "location": self.location.to_json(),
        }

    def save(self, directory) -> Path:
        """Writes ``directory/vocab.json`` atomically and returns its path."""
        path = Path(directory) / VOCAB_FILE
        write_json(path, self.to_json())
        return path

    @classmethod
    def load(cls, directory) -> Vocabularies:
        """Reads ``directory/vocab.json`` (or the given ``.json`` file)."""
        path = Path(directory)
        if path.suffix != ".json":
            path = path / VOCAB_FILE
        if not path.is_file():
            raise UserInputError(not_found("vocabulary file", path))
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserInputError(f"{path}: not a valid vocabulary file ({err})") from None
        missing = [k for k in ("event", "intent", "location") if k not in obj]
        if missing:
            raise UserInputError(f"{path}: vocabulary file lacks {missing}")
        return cls(
            **{k: Vocabulary.from_json(obj[k], name=k) for k in ("event", "intent", "location")},
            slot_minutes=int(obj.get("slot_minutes", 60)),
        )
