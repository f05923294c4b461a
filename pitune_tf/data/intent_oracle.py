"""The user oracle of an event log: for each event, the exact distribution of its intent given
the user's own parameters, context and history (what ``pitune_tf.data.synthetic`` knows of its
own process), kept beside the log so that the individual stage can report the ceiling every
method is measured against.

Format: a Parquet file (CSV is accepted too) with one row per event,

=========== ======================================================================
user_id     str, as in the log
timestamp   the event's time, as in the log (any format ``read_events`` accepts)
<intent>    float >= 0, one column per intent name: the probability that the event's
            intent is ``<intent>``, given everything before it (rows sum to 1)
=========== ======================================================================

A ``(user_id, timestamp)`` pair appears at most once; rows need only cover the events that
get predicted. A log ``DIR/NAME.parquet`` (or ``.csv``) finds its oracle at
``DIR/NAME_oracle.parquet`` (or ``DIR/NAME_oracle.csv``): ``python -m pitune_tf.data synth``
writes ``individual_oracle.parquet`` and ``population_oracle.parquet`` there, the population
run ``RUN/data/individual_oracle.parquet``.

Example:
    >>> oracle = IntentOracle.read("data/synth/individual_oracle.parquet")  # doctest: +SKIP
    >>> scores = oracle.scores("u00150", seconds, run.vocabs.intent.tokens)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pitune_tf.common.errors import DataError, UserInputError
from pitune_tf.data.features import timestamp_seconds
from pitune_tf.data.io import PARQUET_SUFFIXES, read_table, write_table
from pitune_tf.data.timestamps import parse_timestamps

KEY_COLUMNS = ("user_id", "timestamp")


def oracle_path(log_path, suffix=".parquet", kind="") -> Path:
    """Where the oracle of the log ``log_path`` lives: ``<stem>_oracle<suffix>`` beside it
    (``<stem>_oracle_<kind><suffix>`` for another kind)."""
    log_path = Path(log_path)
    return log_path.with_name(f"{log_path.stem}_oracle{'_' + kind if kind else ''}{suffix}")


def find_oracle(log_path, kind="") -> Path | None:
    """The oracle file of ``kind`` beside ``log_path`` (Parquet first, then CSV), or None."""
    for suffix in (".parquet", ".csv"):
        path = oracle_path(log_path, suffix, kind)
        if path.is_file():
            return path
    return None


def write_oracle(table: pd.DataFrame, path) -> Path:
    """Writes an oracle table atomically, as Parquet or CSV by the file suffix."""
    missing = [c for c in KEY_COLUMNS if c not in table.columns]
    if missing or len(table.columns) == len(KEY_COLUMNS):
        raise UserInputError(f"not an oracle table: needs {', '.join(KEY_COLUMNS)} and one "
                             f"column per intent, got {list(table.columns)}")
    return write_table(table, path)


def write_oracles(tables, log_path) -> None:
    """Writes each oracle table of ``tables`` (kind -> DataFrame or None: ``""``, the
    ceiling the tables measure against; ``"context"``, the upper bound that also knows the
    predicted event's own context) beside the log ``log_path``; None tables are skipped."""
    for kind, table in tables.items():
        if table is not None:
            write_oracle(table, oracle_path(log_path, kind=kind))


class IntentOracle:
    """A user oracle table, indexed by user and event time (see the module docstring).

    Args:
        table: DataFrame. ``user_id``, ``timestamp`` and one probability column per intent.
        source: str or Path. The file it came from, for error messages.
    """

    def __init__(self, table: pd.DataFrame, source=None):
        self.source = source
        for column in KEY_COLUMNS:
            if column not in table.columns:
                raise DataError(f"missing column of an oracle table (found: "
                                f"{', '.join(map(str, table.columns))})", source, 0, column)
        self.intents = [str(c) for c in table.columns if c not in KEY_COLUMNS]
        if not self.intents:
            raise DataError("an oracle table needs one probability column per intent", source, 0)
        probs = np.zeros((len(table), len(self.intents)), np.float32)  # [n_rows, n_oracle]
        for j, column in enumerate(c for c in table.columns if c not in KEY_COLUMNS):
            values = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64)
            bad = ~np.isfinite(values) | (values < 0)
            if bad.any():
                at = int(np.flatnonzero(bad)[0])
                raise DataError(f"not a probability: {table[column].iloc[at]!r}", source,
                                at + 1, str(column))
            probs[:, j] = values
        if table["user_id"].isna().any():
            at = int(np.flatnonzero(table["user_id"].isna().to_numpy())[0])
            raise DataError("missing value", source, at + 1, "user_id")
        codes, names = pd.factorize(table["user_id"].astype(str))
        seconds = timestamp_seconds(parse_timestamps(table["timestamp"].reset_index(drop=True),
                                                     source).to_numpy())
        order = np.lexsort((seconds, codes))
        codes, seconds = codes[order], seconds[order]
        duplicate = (codes[1:] == codes[:-1]) & (seconds[1:] == seconds[:-1])
        if duplicate.any():
            at = int(np.flatnonzero(duplicate)[0] + 1)
            raise DataError(f"a second row for user {names[codes[at]]!r} at the same time",
                            source, int(order[at]) + 1, "timestamp")
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], len(codes)]
        # user -> (its rows' seconds, sorted; their probabilities)
        self._rows = {str(names[codes[s]]): (seconds[s:e], probs[order[s:e]])
                      for s, e in zip(starts, ends)}

    @classmethod
    def read(cls, path) -> IntentOracle:
        """Reads an oracle file (Parquet or CSV); a problem is a DataError naming the file."""
        path = Path(path)
        if path.suffix.lower() in PARQUET_SUFFIXES and path.is_file():
            try:
                table = pd.read_parquet(path)  # numbers stay numbers
            except Exception as err:  # pyarrow raises several types for a corrupt file
                raise DataError(f"not a readable Parquet file ({err})", path) from None
            if len(table) == 0:
                raise DataError("empty file: a header but no data rows", path)
        else:
            table = read_table(path)
        return cls(table, source=path)

    def scores(self, user, seconds, intent_tokens) -> np.ndarray:
        """The oracle's probabilities float32 [n, len(intent_tokens)] of ``user``'s events at
        ``seconds`` (int unix seconds [n]), in the columns of ``intent_tokens`` (a run's intent
        ids): an intent the oracle lacks gets 0, an oracle intent outside ``intent_tokens`` is
        left out. An event with no oracle row is a DataError naming the user and the time."""
        seconds = np.asarray(seconds, np.int64)
        known, probs = self._rows.get(str(user), (np.zeros(0, np.int64), None))
        at = np.minimum(np.searchsorted(known, seconds), max(len(known) - 1, 0))
        found = known[at] == seconds if len(known) else np.zeros(len(seconds), bool)
        if not found.all():
            missing = pd.Timestamp(int(seconds[np.flatnonzero(~found)[0]]), unit="s")
            raise DataError(f"no oracle row for user {user!r} at {missing}", self.source)
        column = {name: j for j, name in enumerate(self.intents)}
        out = np.zeros((len(seconds), len(intent_tokens)), np.float32)  # [n, n_run_intents]
        for i, token in enumerate(intent_tokens):
            if token in column:
                out[:, i] = probs[at, column[token]]
        return out
