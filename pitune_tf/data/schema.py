"""The user's own log schema: column names, time unit, time zone, unmapped events, repeats.

One place for the options every command that reads an event log takes
(``python -m pitune_tf.data convert``, ``trainers.population --data``,
``trainers.individual --data``, ``pitune_tf.predict --events``): :func:`add_schema_options`
adds them to a parser, :func:`schema_from_args` turns the parsed values into a
:class:`Schema`, and the readers (:func:`pitune_tf.data.io.read_events`,
:func:`pitune_tf.data.adapters.read_any`) apply it, counting what they did in a
:class:`ReadStats`.

A population run keeps its schema (``config.json``, ``data_schema``); the commands that read
a log for a run start from it, and each option given on their command line overrides just
that field (:func:`merge_schema`; ``--columns`` just the names it gives).

Example::

    python -m pitune_tf.data convert my_log.csv --mapping apps.csv \\
        --columns user_id=uid,timestamp=ts,event=app,location=cell \\
        --time-unit ms --timezone Asia/Shanghai --unmapped other --out data/mine.parquet

Time: the canonical ``timestamp`` is the users' local wall time (naive), and the context
features (weekday, time slot: :mod:`pitune_tf.data.features`) are computed from it. Unix
times (seconds or milliseconds) are instants: with ``timezone`` they become that zone's
wall time, without it UTC's. Time-zone-aware strings (``2016-04-20T08:09:33+08:00``) are
converted to ``timezone`` when given, else keep their own wall time; naive strings and the
Tsinghua ``YYYYMMDDhhmmss`` form are taken as local time already.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from dataclasses import dataclass, field

import pandas as pd

from pitune_tf.common.errors import DataError, UserInputError
from pitune_tf.data.timestamps import TIME_UNITS, check_timezone

logger = logging.getLogger(__name__)

SCHEMA_COLUMNS = ("user_id", "timestamp", "event", "intent", "location")
UNMAPPED_CHOICES = ("error", "drop", "other")
OTHER_INTENT = "other"  # the intent of an unmapped event under unmapped="other"
REPEAT_HINT_GAP_S, REPEAT_HINT_SHARE = 60.0, 0.5  # hint --merge-gap above this share


def parse_columns(text: str) -> dict[str, str]:
    """``{canonical name: the file's column}`` of ``"user_id=uid,timestamp=ts,..."``.

    Raises:
        UserInputError: a part that is not ``NAME=COLUMN``, an unknown ``NAME`` (one of
            :data:`SCHEMA_COLUMNS`), an empty column or a name given twice.
    """
    columns: dict[str, str] = {}
    expected = f"NAME=COLUMN pairs separated by commas, NAME one of {', '.join(SCHEMA_COLUMNS)}"
    parts = [p for p in str(text).split(",")]
    if not str(text).strip():
        raise UserInputError(f"--columns: empty (expected {expected})")
    for part in parts:
        name, sep, source = (s.strip() for s in part.partition("="))
        if not sep or not name or not source:
            raise UserInputError(f"--columns: {part.strip()!r} is not NAME=COLUMN (expected {expected})")
        if name not in SCHEMA_COLUMNS:
            raise UserInputError(f"--columns: unknown name {name!r} (expected {expected})")
        if name in columns:
            raise UserInputError(f"--columns: {name} given twice")
        columns[name] = source
    return columns


@dataclass(frozen=True)
class Schema:
    """How to read a user's event log into the canonical event table.

    Args:
        columns: dict. Canonical name (``user_id``, ``timestamp``, ``event``, ``intent``,
            ``location``) -> the file's column; names not given keep their canonical column.
        time_unit: str. ``auto`` (ISO strings, ``YYYYMMDDhhmmss``, or unix time: seconds,
            or milliseconds when the first value is >= 1e11), ``s`` or ``ms`` (unix time).
        timezone: str or None. IANA zone of the users' local time (``Asia/Shanghai``); unix
            times and time-zone-aware strings are converted to it.
        unmapped: str. An event missing from the mapping file: ``error`` (the default),
            ``drop`` (its row is dropped) or ``other`` (intent ``"other"``).
        merge_gap_s: float or None. A record repeating the same user's previous event (same
            event and location) at most this many seconds later is dropped (a session
            becomes its first record); None keeps every record.
    """

    columns: dict = field(default_factory=dict)
    time_unit: str = "auto"
    timezone: str | None = None
    unmapped: str = "error"
    merge_gap_s: float | None = None

    def __post_init__(self):
        unknown = sorted(set(self.columns) - set(SCHEMA_COLUMNS))
        if unknown:
            raise UserInputError(f"columns: unknown name(s) {', '.join(unknown)} "
                                 f"(expected {', '.join(SCHEMA_COLUMNS)})")
        if self.time_unit not in TIME_UNITS:
            raise UserInputError(f"time unit must be one of {', '.join(TIME_UNITS)}, "
                                 f"got {self.time_unit!r}")
        if self.unmapped not in UNMAPPED_CHOICES:
            raise UserInputError(f"unmapped must be one of {', '.join(UNMAPPED_CHOICES)}, "
                                 f"got {self.unmapped!r}")
        if self.merge_gap_s is not None and not self.merge_gap_s >= 0:
            raise UserInputError(f"merge gap must be >= 0 seconds, got {self.merge_gap_s}")
        if self.timezone is not None:
            check_timezone(self.timezone)

    @classmethod
    def from_dict(cls, values: dict | None) -> Schema:
        """The schema of :meth:`to_dict`'s output (unknown keys are an error)."""
        values = dict(values or {})
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise UserInputError(f"data_schema: unknown key(s) {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict:
        """The fields that differ from the defaults (``{}`` for the canonical schema)."""
        default = Schema()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    def rename(self, df: pd.DataFrame, path=None) -> pd.DataFrame:
        """``df`` with the file's columns renamed to their canonical names.

        A mapped column missing from the file is a :class:`DataError` naming it; a file
        column that already has a canonical name mapped from elsewhere is dropped.
        """
        if not self.columns:
            return df
        missing = [source for source in self.columns.values() if source not in df.columns]
        if missing:
            found = ", ".join(map(str, df.columns))
            raise DataError(f"missing column named in --columns or the run's data_schema "
                            f"(found: {found})", path, row=0, column=missing[0])
        shadowed = [name for name in self.columns if name in df.columns
                    and name not in self.columns.values()]
        df = df.drop(columns=shadowed)
        return df.rename(columns={source: name for name, source in self.columns.items()})


@dataclass
class ReadStats:
    """What reading a log did, for the user (``convert`` prints :meth:`lines`).

    Attributes:
        rows_read: data rows in the input.
        dropped_unmapped: rows dropped because their event was not in the mapping.
        mapped_other: rows whose event was not in the mapping, given intent ``"other"``.
        unmapped_events: distinct unmapped events (dropped or mapped to other).
        repeats_merged: records dropped as repeats of their user's previous event.
        time_unit: how numeric timestamps were read (``s``, ``ms``, ``YYYYMMDDhhmmss``), or
            None for date strings.
        hints: str list. Signs that an option's default looks wrong for this data.
    """

    rows_read: int = 0
    dropped_unmapped: int = 0
    mapped_other: int = 0
    unmapped_events: int = 0
    repeats_merged: int = 0
    time_unit: str | None = None
    hints: list = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable lines: the counts, then each hint prefixed ``hint:``."""
        unit = {"s": "unix seconds", "ms": "unix milliseconds",
                "YYYYMMDDhhmmss": "YYYYMMDDhhmmss local times"}.get(self.time_unit or "")
        lines = [f"rows read: {self.rows_read}" + (f" (timestamps as {unit})" if unit else ""),
                 f"dropped (event not in the mapping): {self.dropped_unmapped}",
                 f"mapped to {OTHER_INTENT!r} (event not in the mapping): {self.mapped_other}",
                 f"repeats merged: {self.repeats_merged}"]
        if self.unmapped_events:
            lines[1 if self.dropped_unmapped else 2] += f" ({self.unmapped_events} distinct events)"
        return lines + [f"hint: {hint}" for hint in self.hints]

    def warn(self, path=None) -> None:
        """Logs (WARNING) the rows dropped or mapped to ``other`` and every hint: what a
        command that reads a log without printing :meth:`lines` tells the user."""
        where = f"{path}: " if path is not None else ""
        if self.dropped_unmapped:
            logger.warning("%s%d of %d rows dropped (event not in the mapping)", where,
                           self.dropped_unmapped, self.rows_read)
        if self.mapped_other:
            logger.warning("%s%d of %d rows mapped to %r (event not in the mapping)", where,
                           self.mapped_other, self.rows_read, OTHER_INTENT)
        for hint in self.hints:
            logger.warning("%shint: %s", where, hint)


def merge_repeats(df: pd.DataFrame, gap_s: float | None, stats: ReadStats | None = None):
    """A sorted canonical table without the records that repeat their user's previous
    record (same event and location) at most ``gap_s`` seconds later; None keeps all
    (and ``stats`` gets a hint when most records are such repeats within a minute)."""
    if gap_s is None:
        share = repeat_share(df, REPEAT_HINT_GAP_S) if stats is not None else 0.0
        if share > REPEAT_HINT_SHARE:
            hint = (f"{share:.0%} of the records repeat their user's previous event within "
                    f"{REPEAT_HINT_GAP_S:g} s (e.g. per-second traffic rows, not separate "
                    f"uses): each counts as an event; --merge-gap {REPEAT_HINT_GAP_S:g} "
                    "merges them")
            if hint not in stats.hints:
                stats.hints.append(hint)
        return df
    if not gap_s >= 0:
        raise UserInputError(f"merge gap must be >= 0 seconds, got {gap_s}")
    previous = df.shift(1)
    repeat = (
        (df["user_id"] == previous["user_id"])
        & (df["event"] == previous["event"])
        & (df["location"] == previous["location"])
        & ((df["timestamp"] - previous["timestamp"]) <= pd.Timedelta(seconds=gap_s))
    ).fillna(False).to_numpy()
    if stats is not None:
        stats.repeats_merged += int(repeat.sum())
    return df[~repeat].reset_index(drop=True)


def repeat_share(df: pd.DataFrame, gap_s: float = 60.0) -> float:
    """Share of records repeating their user's previous event within ``gap_s`` seconds."""
    if len(df) < 2:
        return 0.0
    previous = df.shift(1)
    repeat = ((df["user_id"] == previous["user_id"]) & (df["event"] == previous["event"])
              & ((df["timestamp"] - previous["timestamp"]) <= pd.Timedelta(seconds=gap_s)))
    return float(repeat.fillna(False).mean())


def add_schema_options(parser: argparse.ArgumentParser, merge_gap: bool = True,
                       unmapped: bool = True) -> None:
    """Adds ``--columns``, ``--time-unit``, ``--timezone`` (and ``--unmapped``, ``--merge-gap``)
    to ``parser``: the options of every command that reads an event log. An option left out
    parses to None (:func:`schema_overrides` tells the given ones). ``unmapped=False``: a
    command that never reads intents (predictions: only the events and their context are
    model inputs) does not offer ``--unmapped``, which would change nothing there."""
    group = parser.add_argument_group(
        "the log's schema (applied to every event file read; for a run, each option given "
        "overrides just its field of the run's own, config.json data_schema)")
    group.add_argument("--columns", metavar="NAME=COLUMN,...",
                       help="the file's column of each canonical name, e.g. "
                            "user_id=uid,timestamp=ts,event=app,location=cell "
                            f"(names: {', '.join(SCHEMA_COLUMNS)})")
    group.add_argument("--time-unit", choices=TIME_UNITS, default=None,
                       help="numeric timestamps: unix seconds (s) or milliseconds (ms); auto "
                            "(the default) also reads ISO dates and YYYYMMDDhhmmss, and takes "
                            ">= 1e11 as ms")
    group.add_argument("--timezone", default=None, metavar="ZONE",
                       help="the users' local time zone (IANA, e.g. Asia/Shanghai): unix and "
                            "zone-aware times are converted to it, so weekdays and time slots "
                            "follow it (default: UTC for unix times; foursquare: Asia/Tokyo)")
    if unmapped:
        group.add_argument("--unmapped", choices=UNMAPPED_CHOICES, default=None,
                           help="an event missing from --mapping: error (the default), drop its "
                                f"row, or give it the intent {OTHER_INTENT!r}")
    if merge_gap:
        group.add_argument("--merge-gap", type=float, default=None, metavar="SECONDS",
                           help="drop a record repeating the user's previous event (and "
                                "location) within SECONDS (default: keep every record)")


def schema_overrides(args: argparse.Namespace) -> dict:
    """The :class:`Schema` fields given on the command line (options of
    :func:`add_schema_options`; one left out is absent): ``columns`` as
    :func:`parse_columns`' dict (a bad ``--columns`` is a :class:`UserInputError`)."""
    values = {"columns": getattr(args, "columns", None),
              "time_unit": getattr(args, "time_unit", None),
              "timezone": getattr(args, "timezone", None),
              "unmapped": getattr(args, "unmapped", None),
              "merge_gap_s": getattr(args, "merge_gap", None)}
    if values["columns"] is not None:
        values["columns"] = parse_columns(values["columns"])
    return {name: value for name, value in values.items() if value is not None}


def merge_schema(base=None, overrides=None) -> Schema:
    """``base`` with ``overrides``: the one rule by which a command's options apply to a
    run's saved schema.

    Args:
        base: :class:`Schema`, a ``data_schema`` dict (:meth:`Schema.to_dict`, as a run's
            ``config.json`` keeps it) or None (the canonical schema).
        overrides: dict or None. :class:`Schema` fields replacing ``base``'s; ``columns``
            replaces only the names it gives (``{"event": "app"}`` keeps the others; name a
            column after itself, ``{"event": "event"}``, to read the canonical one).

    Example::

        merge_schema({"columns": {"user_id": "uid", "event": "app"}, "time_unit": "ms"},
                     {"columns": {"event": "pkg"}, "timezone": "UTC"})
        # Schema(columns={"user_id": "uid", "event": "pkg"}, time_unit="ms", timezone="UTC")
    """
    base = base if isinstance(base, Schema) else Schema.from_dict(base)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(Schema)})
    if unknown:
        raise UserInputError(f"schema: unknown field(s) {', '.join(unknown)}")
    if "columns" in overrides:
        columns = {**base.columns, **overrides["columns"]}
        overrides["columns"] = {name: source for name, source in columns.items()
                                if source != name}  # a column named after itself: canonical
    return dataclasses.replace(base, **overrides)


def schema_from_args(args: argparse.Namespace, base=None) -> Schema:
    """The :class:`Schema` of options added by :func:`add_schema_options`, over ``base``
    (:func:`merge_schema`: a run's ``data_schema``; None: the canonical schema). A bad
    ``--columns`` is a :class:`UserInputError`: one ``error:`` line, exit status 2."""
    return merge_schema(base, schema_overrides(args))
