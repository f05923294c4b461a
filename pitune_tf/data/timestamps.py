"""Timestamps of a user's log read as the canonical ``timestamp``: naive local wall time
(``datetime64[ns]``) from datetimes, unix seconds or milliseconds, Tsinghua's
``YYYYMMDDhhmmss`` or ISO 8601 text, with the time unit and time zone of
:class:`pitune_tf.data.schema.Schema` (its module docstring states the rule)."""

from __future__ import annotations

import numbers
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from pitune_tf.common.errors import DataError, UserInputError
from pitune_tf.data.cells import check_no_missing, data_row, describe_value

TIME_UNITS = ("auto", "s", "ms")
MS_THRESHOLD = 1e11  # auto time unit: a first value at or above this is milliseconds
#   (1e11 unix seconds is the year 5138; 1e11 ms is 1973-03-03)
_TSINGHUA_MIN, _TSINGHUA_MAX = 10**13, 10**14  # YYYYMMDDhhmmss as an integer


def check_timezone(name: str) -> str:
    """``name`` if it is a known IANA time zone, else :class:`UserInputError`."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise UserInputError(f"unknown time zone {name!r} (an IANA name such as "
                             "Asia/Shanghai, Europe/Paris or UTC)") from None
    return name


def parse_timestamps(values: pd.Series, path=None, column: str = "timestamp",
                     time_unit: str = "auto", timezone: str | None = None,
                     stats=None) -> pd.Series:
    """Parses a timestamp column to ``datetime64[ns]`` naive local time.

    Accepts, per column: datetimes (time-zone-aware ones become their local wall time, or
    ``timezone``'s), unix seconds or milliseconds (ints or floats), the Tsinghua App Usage
    format ``YYYYMMDDhhmmss`` (a 14-digit integer) and ISO 8601 strings
    (``2016-04-20 08:09:33``, ``2016-04-20T08:09``). With ``time_unit="auto"`` the first
    value decides between ``YYYYMMDDhhmmss``, unix milliseconds (>= 1e11) and unix seconds.
    The first value that does not parse is a :class:`DataError` with its row (the series
    index + 1).

    Args:
        values: the column.
        path, column: for error messages.
        time_unit: ``auto``, ``s`` or ``ms`` (see :class:`pitune_tf.data.schema.Schema`).
        timezone: str or None. Unix times (instants) and zone-aware datetimes become this
            zone's wall time (None: UTC's, and an aware datetime keeps its own).
        stats: :class:`pitune_tf.data.schema.ReadStats` or None; gets ``time_unit`` and a
            hint when unix times are read without a time zone.
    """
    check_no_missing(values, path, column)
    _check_scalar_times(values, path, column)
    if pd.api.types.is_datetime64_any_dtype(values):
        return _local_wall_time(values, timezone, values, path, column)
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all():
        return _parse_numeric(numbers, values, path, column, time_unit, timezone, stats)
    if time_unit != "auto":
        _raise_first_bad(numbers.isna(), values, path, column, time_unit)
    try:
        parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
    except (ValueError, TypeError) as err:  # mixed time-zone offsets
        raise DataError(f"unparseable timestamps ({err})", path, column=column) from None
    _raise_mixed(numbers.notna() & parsed.isna(), parsed.notna(), values, path, column,
                 "a number (unix seconds or YYYYMMDDhhmmss)", "ISO 8601 text")
    _raise_first_bad(parsed.isna(), values, path, column)
    return _local_wall_time(parsed, timezone, values, path, column)


def _check_scalar_times(values: pd.Series, path, column) -> None:
    """A boolean, a list or a struct where a timestamp is expected is a located error (a
    boolean would otherwise read as unix second 0 or 1)."""
    if pd.api.types.is_bool_dtype(values):
        at = 0
    elif values.dtype == object:
        odd = values.map(lambda v: isinstance(v, (bool, np.bool_)) or not (
            isinstance(v, (str, numbers.Number)) or hasattr(v, "isoformat"))).to_numpy(bool)
        if not odd.any():
            return
        at = int(np.flatnonzero(odd)[0])
    else:
        return
    raise DataError(f"expected a timestamp, got {describe_value(values.iloc[at])}", path,
                    data_row(values, at), column)


def _local_wall_time(parsed: pd.Series, timezone, values, path, column) -> pd.Series:
    """Naive ``datetime64[ns]``: aware values as ``timezone``'s (or their own) wall time;
    ``values`` (the column as read), ``path``, ``column`` for :func:`_as_ns`' errors."""
    if getattr(parsed.dt, "tz", None) is not None:
        if timezone is not None:
            parsed = parsed.dt.tz_convert(timezone)
        parsed = parsed.dt.tz_localize(None)
    return _as_ns(parsed, values, path, column)


def _as_ns(parsed: pd.Series, values: pd.Series, path, column) -> pd.Series:
    """Naive datetimes of any resolution as ``datetime64[ns]``, which holds 1677-09-21 to
    2262-04-11: a time outside is a :class:`DataError` naming its row (year 2300 is not
    read as something else, nor a traceback)."""
    _raise_outside((parsed.notna() & ((parsed < pd.Timestamp.min) | (parsed > pd.Timestamp.max))
                    ).to_numpy(dtype=bool), values, path, column)
    return parsed.astype("datetime64[ns]")


def _raise_outside(outside: np.ndarray, values: pd.Series, path, column, how="") -> None:
    if outside.any():
        at = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"timestamp {_shown(values.iloc[at])}{how} is outside the dates that can be held "
            f"({pd.Timestamp.min:%Y-%m-%d} to {pd.Timestamp.max:%Y-%m-%d})",
            path, data_row(values, at), column)


def _shown(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _parse_numeric(numbers: pd.Series, values: pd.Series, path, column, time_unit="auto",
                   timezone=None, stats=None) -> pd.Series:
    array = numbers.to_numpy(dtype=np.float64)
    integral = np.floor(array) == array
    tsinghua = integral & (array >= _TSINGHUA_MIN) & (array < _TSINGHUA_MAX)
    unix = np.isfinite(array) & (np.abs(array) < 9.2e12)  # unix seconds or milliseconds
    if time_unit == "auto" and tsinghua[0]:  # the first value decides the column's format
        _raise_mixed(pd.Series(unix & ~tsinghua, index=values.index),
                     pd.Series(tsinghua, index=values.index),
                     values, path, column, "unix time", "YYYYMMDDhhmmss")
        _raise_first_bad(pd.Series(~tsinghua, index=values.index), values, path, column)
        v = array.astype(np.int64)
        parts = pd.DataFrame(
            {
                "year": v // 10**10,
                "month": v // 10**8 % 100,
                "day": v // 10**6 % 100,
                "hour": v // 10**4 % 100,
                "minute": v // 100 % 100,
                "second": v % 100,
            },
            index=values.index,
        )
        bad = (parts["hour"] > 23) | (parts["minute"] > 59) | (parts["second"] > 59)
        parsed = pd.to_datetime(parts, errors="coerce")
        _raise_first_bad(parsed.isna() | bad, values, path, column)
        if stats is not None:
            stats.time_unit = "YYYYMMDDhhmmss"
        return _as_ns(parsed, values, path, column)
    if time_unit == "auto":
        _raise_mixed(pd.Series(tsinghua, index=values.index), pd.Series(unix & ~tsinghua, index=values.index),
                     values, path, column, "YYYYMMDDhhmmss", "unix time")
        time_unit = "ms" if abs(array[0]) >= MS_THRESHOLD else "s"
    scale = 10**9 if time_unit == "s" else 10**6  # nanoseconds per unit
    limit = 9.2e18 / scale  # datetime64[ns] holds up to the year 2262
    _raise_first_bad(pd.Series(~np.isfinite(array), index=values.index), values, path,
                     column, time_unit)
    _raise_outside(np.abs(array) >= limit, values, path, column,
                   f", read as unix {'seconds' if time_unit == 's' else 'milliseconds'} "
                   f"(--time-unit {time_unit})")
    if integral.all():
        ns = array.astype(np.int64) * np.int64(scale)
    else:
        ns = np.round(array * scale).astype(np.int64)
    parsed = pd.Series(ns.view("datetime64[ns]"), index=values.index)
    if stats is not None:
        stats.time_unit = time_unit
        if timezone is None:
            stats.hints.append(
                f"timestamps are unix {'seconds' if time_unit == 's' else 'milliseconds'}, "
                "read as UTC: weekdays and time slots follow UTC; give --timezone ZONE for "
                "the users' local time")
    if timezone is not None:
        parsed = parsed.dt.tz_localize("UTC").dt.tz_convert(timezone).dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _raise_first_bad(bad: pd.Series, values: pd.Series, path, column, time_unit="auto") -> None:
    if bool(bad.any()):
        at = int(np.flatnonzero(bad.to_numpy())[0])
        expected = {"s": "unix seconds (--time-unit s)", "ms": "unix milliseconds (--time-unit ms)"}
        raise DataError(
            f"unparseable timestamp {values.iloc[at]!r} (expected "
            f"{expected.get(time_unit, 'ISO 8601, unix seconds or milliseconds, or YYYYMMDDhhmmss')})",
            path,
            data_row(values, at),
            column,
        )


def _raise_mixed(odd: pd.Series, usual: pd.Series, values: pd.Series, path, column,
                 odd_format: str, usual_format: str) -> None:
    """A column whose values come in two formats (the ``odd`` rows in ``odd_format``, the
    ``usual`` rows in ``usual_format``) is one error naming both, not a valid value reported
    as unparseable."""
    if bool(odd.any()) and bool(usual.any()):
        at = int(np.flatnonzero(odd.to_numpy())[0])
        other = int(np.flatnonzero(usual.to_numpy())[0])
        raise DataError(
            f"mixed timestamp formats: {values.iloc[at]!r} is {odd_format} but row "
            f"{data_row(values, other)} ({values.iloc[other]!r}) is {usual_format}; use one format "
            "per column",
            path,
            data_row(values, at),
            column,
        )
