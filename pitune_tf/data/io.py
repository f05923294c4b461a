"""Reading and writing canonical event tables (CSV or Parquet), with located errors: a
file's table (:func:`read_table`), an event-to-intent mapping (:func:`read_mapping`), the
canonical table (:func:`canonicalize`, :func:`read_events`) and writing them. A column's
cells are checked by :mod:`pitune_tf.data.cells` (ids and names) and
:mod:`pitune_tf.data.timestamps` (times).

The canonical event table is a pandas DataFrame with the columns

=========== ======================================================================
user_id     str
timestamp   datetime64[ns], naive local time
event       str
intent      str (or from an event-to-intent mapping file)
location    str (optional in the input; ``"<none>"`` for every event when absent)
=========== ======================================================================

sorted by ``user_id`` then ``timestamp`` (stable, so ties keep the file order).

Every problem with an input file is a :class:`~pitune_tf.common.errors.DataError` naming the
file, the 1-based data row (the header is row 0) and the column.
"""

from __future__ import annotations

import json
import logging
import numbers
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from pitune_tf.common.atomic import atomic_path
from pitune_tf.common.console import is_quiet
from pitune_tf.common.errors import DataError, UserInputError, path_problem
from pitune_tf.data.cells import check_tokens, data_row, describe_value
from pitune_tf.data.schema import OTHER_INTENT, Schema, merge_repeats
from pitune_tf.data.timestamps import parse_timestamps

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("user_id", "timestamp", "event")
CANONICAL_COLUMNS = ("user_id", "timestamp", "event", "intent", "location")
NO_LOCATION = "<none>"
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt")

_CSV_CHUNK_ROWS = 1_000_000
_PROGRESS_MIN_BYTES = 64 << 20  # show a progress bar for files of 64 MiB and more


# --------------------------------------------------------------------------- tables


def read_table(path, columns=None) -> pd.DataFrame:
    """Reads a CSV or Parquet file; every column as ``str`` (missing cells as NA).

    Parquet datetime and boolean columns are kept as they are, as are nested values (lists,
    structs) and bytes that are not UTF-8: a reader that expects text there reports them
    (:func:`pitune_tf.data.cells.check_tokens`,
    :func:`pitune_tf.data.timestamps.parse_timestamps`). With ``columns``, the named columns
    must all be present (a missing one is a :class:`DataError` naming it) and only they are
    read. The index is the 0-based data row, so data row ``i + 1`` in errors.
    """
    path = Path(path)
    problem = path_problem(path)
    if problem is not None:  # missing, a link loop, a name too long...
        raise DataError(problem, path)
    if path.is_dir():
        raise DataError("is a directory, expected a CSV or Parquet file", path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        df = _read_parquet(path, columns)
    else:
        df = _read_csv(path, columns)
    if len(df) == 0:
        raise DataError("empty file: a header but no data rows", path)
    return df


def _check_columns(found, columns, path):
    if columns is None:
        return list(found)
    missing = [c for c in columns if c not in found]
    if missing:
        raise DataError(
            f"missing column (found: {', '.join(map(str, found))})", path, row=0, column=missing[0]
        )
    return list(columns)


def _read_csv(path: Path, columns) -> pd.DataFrame:
    size = path.stat().st_size
    if size == 0:
        raise DataError("empty file", path)
    options = dict(dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    try:
        header = pd.read_csv(path, nrows=0, **options).columns
        usecols = _check_columns(header, columns, path)
        chunks = []
        with (
            open(path, "rb") as handle,
            tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc=f"read {path.name}",
                disable=size < _PROGRESS_MIN_BYTES or is_quiet(),
                leave=False,
            ) as bar,
        ):
            # all columns are read, so that a row with extra fields is an error
            reader = pd.read_csv(handle, chunksize=_CSV_CHUNK_ROWS, **options)
            for chunk in reader:
                chunks.append(chunk[usecols])
                bar.update(handle.tell() - bar.n)
    except UnicodeDecodeError as err:
        row, column = _locate_bad_byte(path)
        raise DataError(f"not valid UTF-8 ({err.reason})", path, row, column) from None
    except pd.errors.EmptyDataError:
        raise DataError("empty file (no header line)", path) from None
    except pd.errors.ParserError as err:
        match = re.search(r"line (\d+)", str(err))
        row = int(match.group(1)) - 1 if match else None
        reason = str(err).split(":")[-1].strip() or "malformed CSV"
        raise DataError(f"malformed CSV: {reason}", path, row) from None
    if not chunks:
        return pd.DataFrame(columns=usecols, dtype=str)
    return pd.concat(chunks, ignore_index=True)[usecols]


def _locate_bad_byte(path: Path) -> tuple[int | None, str | None]:
    """The data row (header = 0) and column of the first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        start = err.start
    else:  # pragma: no cover - pandas said otherwise
        return None, None
    row = data.count(b"\n", 0, start)
    line_start = data.rfind(b"\n", 0, start) + 1
    field = data.count(b",", line_start, start)
    header_end = data.find(b"\n")
    header = data[: header_end if header_end >= 0 else len(data)]
    names = header.decode("utf-8", errors="replace").strip().split(",")
    column = names[field].strip() if field < len(names) else None
    return row, column


def _read_parquet(path: Path, columns) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DataError("empty file", path)
    try:
        found = pq.read_schema(path).names
        usecols = _check_columns(found, columns, path)
        df = pd.read_parquet(path, columns=usecols)
    except DataError:
        raise
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise DataError(f"not a readable Parquet file ({err})", path) from None
    return parquet_strings(df).reset_index(drop=True)


def parquet_strings(df: pd.DataFrame) -> pd.DataFrame:
    """A table read from Parquet with every column of numbers or text as ``str`` (whole
    floats as integers, UTF-8 bytes decoded; missing cells stay NA), as :func:`read_table`
    returns it. Datetime and boolean columns, nested values (lists, structs) and bytes that
    are not UTF-8 are left as they are, for the reader that expects text to report them."""
    for name in df.columns:
        col = df[name]
        if (pd.api.types.is_datetime64_any_dtype(col) or isinstance(col.dtype, pd.StringDtype)
                or pd.api.types.is_bool_dtype(col)):
            continue
        if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) != "string":
            df[name] = col.map(_parquet_scalar_text, na_action="ignore").astype(object)
            continue
        if pd.api.types.is_float_dtype(col) and col.notna().all() and (col % 1 == 0).all():
            col = col.astype(np.int64)
        df[name] = col.astype(str).where(col.notna())
    return df


def _parquet_scalar_text(value):
    """A Parquet object cell as text where it is a number, text or UTF-8 bytes; anything
    else (a list, a struct, a boolean, other bytes) as it is."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Number):
        return value
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- mapping


def read_mapping(path) -> dict[str, str]:
    """Reads an event-to-intent mapping: a JSON object or a CSV with columns event,intent."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        problem = path_problem(path)
        if problem is not None or not path.is_file():
            raise DataError(f"mapping {problem or 'is not a file'}", path)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            data = path.read_bytes()
            raise DataError(
                f"not valid UTF-8 ({err.reason})", path, row=data.count(b"\n", 0, err.start) + 1
            ) from None
        if not text.strip():
            raise DataError("empty file", path)
        try:
            pairs = json.loads(text, object_pairs_hook=list)
        except json.JSONDecodeError as err:
            raise DataError(f"invalid JSON ({err.msg})", path, row=err.lineno) from None
        except RecursionError:
            raise DataError("invalid JSON (nested too deeply)", path) from None
        if not isinstance(pairs, list) or not pairs or not all(
                isinstance(p, tuple) for p in pairs):
            raise DataError("expected a non-empty JSON object {event: intent}", path)
        return _json_mapping(pairs, text, path)
    table = read_table(path, columns=["event", "intent"])
    for column in ("event", "intent"):
        table[column] = check_tokens(table[column], path, column)
    conflict = table.duplicated("event", keep=False) & ~table.duplicated(keep=False)
    if conflict.any():
        at = int(np.flatnonzero(conflict.to_numpy())[-1])
        raise DataError(
            f"event {table['event'].iloc[at]!r} mapped to two different intents",
            path,
            at + 1,
            "intent",
        )
    return dict(zip(table["event"].tolist(), table["intent"].tolist(), strict=True))


def _json_mapping(pairs, text, path) -> dict[str, str]:
    """``{event: intent}`` of a JSON object's ``(key, value)`` pairs: each intent text (or
    a whole number); null, a boolean, a fraction, a list, an object, an empty name or an
    event given two intents is a :class:`DataError` naming the line of its key."""
    mapping: dict[str, str] = {}
    for key, value in pairs:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        problem = None
        if key == "":
            problem = "an empty event name"
        elif not isinstance(value, str):
            if isinstance(value, list) and all(isinstance(p, tuple) for p in value):
                value = dict(value)  # a nested object (object_pairs_hook)
            problem = f"event {key!r}: the intent must be text, got {describe_value(value)}"
        elif value == "":
            problem = f"event {key!r}: an empty intent"
        elif mapping.get(key, value) != value:
            problem = (f"event {key!r} mapped to two different intents ({mapping[key]!r} and "
                       f"{value!r})")
        if problem is not None:
            raise DataError(problem, path, row=_json_key_line(text, key))
        mapping[key] = value
    return mapping


def _json_key_line(text: str, key: str) -> int | None:
    """The line (1-based) of ``"key":`` in a JSON text (its last one), or None."""
    for encoded in (json.dumps(key, ensure_ascii=False), json.dumps(key)):
        found = list(re.finditer(re.escape(encoded) + r"\s*:", text))
        if found:
            return text.count("\n", 0, found[-1].start()) + 1
    return None


def apply_mapping(events: pd.Series, mapping: dict, path=None, mapping_path=None,
                  unmapped: str = "error", stats=None) -> pd.Series:
    """Intent per event from ``mapping``.

    An event missing from the mapping is, by ``unmapped``: ``error`` a :class:`DataError`
    naming its row; ``drop`` an NA intent (the caller drops the row); ``other`` the intent
    ``"other"``. ``stats`` (a :class:`pitune_tf.data.schema.ReadStats`) counts them.
    """
    intents = events.map(mapping)
    missing = intents.isna().to_numpy()
    if missing.any() and unmapped == "error":
        at = int(np.flatnonzero(missing)[0])
        source = f" {mapping_path}" if mapping_path is not None else ""
        raise DataError(
            f"event {events.iloc[at]!r} missing from the mapping file{source} "
            "(--unmapped drop or other to keep going)",
            path,
            data_row(events, at),
            "event",
        )
    if missing.any() and stats is not None:
        stats.unmapped_events += int(events[missing].nunique())
        if unmapped == "drop":
            stats.dropped_unmapped += int(missing.sum())
        else:
            stats.mapped_other += int(missing.sum())
    if unmapped == "other":
        return intents.fillna(OTHER_INTENT).astype(str)
    return intents.astype(object).where(~missing, None) if missing.any() else intents.astype(str)


# --------------------------------------------------------------------------- canonical


def canonicalize(df: pd.DataFrame, path=None, mapping=None, mapping_path=None, schema=None,
                 stats=None) -> pd.DataFrame:
    """Checks and converts a table to the canonical event table (see the module docstring).

    Args:
        df: DataFrame with at least ``user_id, timestamp, event`` and ``intent`` (or a
            ``mapping``); its index is taken as the 0-based data row for error messages.
        path: the file it came from, for error messages.
        mapping: dict event -> intent, used when there is no ``intent`` column.
        mapping_path: the mapping's file, for error messages.
        schema: :class:`pitune_tf.data.schema.Schema` or None. Its column names are
            renamed first; its time unit, time zone, unmapped rule and merge gap applied.
        stats: :class:`pitune_tf.data.schema.ReadStats` or None; counts what was done.
    """
    schema = schema or Schema()
    df = schema.rename(df, path)
    if stats is not None:
        stats.rows_read += len(df)
    try:
        return _canonicalize(df, path, mapping, mapping_path, schema, stats)
    except DataError as err:  # name the file's own column
        if err.column in schema.columns:
            raise DataError(err.message, err.path, err.row, schema.columns[err.column]) from None
        raise


def _canonicalize(df, path, mapping, mapping_path, schema, stats) -> pd.DataFrame:
    required = list(REQUIRED_COLUMNS)
    if "intent" not in df.columns and mapping is None:
        required.append("intent")
    for column in required:
        if column not in df.columns:
            found = ", ".join(map(str, df.columns))
            hint = " (or give an event-to-intent mapping file)" if column == "intent" else ""
            raise DataError(f"missing column{hint} (found: {found})", path, row=0, column=column)
    out = {}
    for column in ("user_id", "event", "intent", "location"):
        if column in df.columns:
            out[column] = check_tokens(df[column], path, column)
    out["timestamp"] = parse_timestamps(df["timestamp"], path, "timestamp", schema.time_unit,
                                        schema.timezone, stats)
    if "intent" not in out:
        out["intent"] = apply_mapping(out["event"], mapping, path, mapping_path,
                                      schema.unmapped, stats)
    elif mapping is not None:
        logger.info("%s has an intent column; the mapping file is not used", path or "table")
    if "location" not in out:
        out["location"] = pd.Series(NO_LOCATION, index=df.index, dtype=str)
    table = pd.DataFrame({c: out[c] for c in CANONICAL_COLUMNS})
    kept = table["intent"].notna().to_numpy()
    if not kept.all():
        table = table[kept]
        if len(table) == 0:
            raise DataError("no event left: none is in the mapping file "
                            f"{mapping_path or ''} (--unmapped drop)".replace("  ", " "), path)
        table = table.astype({"intent": str})
    return merge_repeats(sort_events(table), schema.merge_gap_s, stats)


def sort_events(df: pd.DataFrame) -> pd.DataFrame:
    """Sorts by ``user_id`` then ``timestamp`` (stable) and resets the index."""
    codes, uniques = pd.factorize(df["user_id"], sort=False)
    times = df["timestamp"].to_numpy()
    names = np.asarray(uniques, dtype=object)
    grouped = bool(np.all(codes[1:] >= codes[:-1]))
    if grouped and bool(np.all(names[1:] > names[:-1])):
        new_user = codes[1:] != codes[:-1]
        if bool(np.all(new_user | (times[1:] >= times[:-1]))):
            return df.reset_index(drop=True)
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(names, kind="stable")] = np.arange(len(names))
    order = np.lexsort((times, rank[codes]))
    return df.iloc[order].reset_index(drop=True)


def read_events(path, mapping=None, schema=None, stats=None) -> pd.DataFrame:
    """Reads a canonical event table from CSV or Parquet.

    Args:
        path: CSV or Parquet file with columns ``user_id, timestamp, event`` and, optionally,
            ``intent`` and ``location`` (other columns are ignored), or the columns that
            ``schema.columns`` names.
        mapping: path of an event-to-intent mapping (CSV with columns ``event,intent`` or a
            JSON object), used when the file has no ``intent`` column.
        schema: :class:`pitune_tf.data.schema.Schema` or None (the canonical schema).
        stats: :class:`pitune_tf.data.schema.ReadStats` or None; counts what was done.

    Returns:
        The canonical DataFrame (see the module docstring).

    Raises:
        DataError: naming the file, row and column of the first problem.
    """
    path = Path(path)
    table = read_table(path)
    mapping_dict = None
    intent_column = (schema.columns.get("intent", "intent") if schema is not None
                     else "intent")
    if intent_column not in table.columns and mapping is not None:
        mapping_dict = read_mapping(mapping)
    return canonicalize(table, path, mapping_dict, mapping, schema, stats)


def write_events(df: pd.DataFrame, path, row_group_size=None) -> Path:
    """Writes a canonical event table atomically, as Parquet or CSV by the file suffix
    (``row_group_size``: Parquet rows per row group, None = pyarrow's default)."""
    missing = [c for c in CANONICAL_COLUMNS if c not in df.columns]
    if missing:
        raise UserInputError(f"not a canonical event table: missing column(s) {missing}")
    return write_table(df[list(CANONICAL_COLUMNS)], path, row_group_size)


def write_table(table: pd.DataFrame, path, row_group_size=None) -> Path:
    """Writes a table atomically, as Parquet or CSV by the file suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PARQUET_SUFFIXES + CSV_SUFFIXES:
        raise UserInputError(f"{path}: unknown output format {suffix!r} (use .csv or .parquet)")
    with atomic_path(path) as tmp:
        if suffix in PARQUET_SUFFIXES:
            table.to_parquet(tmp, index=False, row_group_size=row_group_size)
        else:
            table.to_csv(tmp, index=False)
    return path
