"""One column of a table read from a file, checked cell by cell with located errors: ids
and names as text (:func:`check_tokens`), and what each such error tells: the value
(:func:`describe_value`), its data row (:func:`data_row`), a missing cell
(:func:`check_no_missing`). Timestamps: :mod:`pitune_tf.data.timestamps`."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from pitune_tf.common.errors import DataError


def describe_value(value) -> str:
    """How an error names a value that is not text: ``a list [1, 2]``, ``a boolean True``,
    ``null``, ``a date-time 2020-01-01 00:00:00``, ``bytes b'\\xff'``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return f"a boolean {bool(value)}"
    if isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "isoformat"):
        return f"a date-time {value}"
    if isinstance(value, bytes):
        return f"bytes that are not UTF-8 text {value[:20]!r}"
    if isinstance(value, dict):
        text, kind = repr(value), "a struct"
    elif isinstance(value, (list, tuple, set, np.ndarray)):
        text, kind = repr(np.asarray(value, dtype=object).tolist()), "a list"
    elif isinstance(value, numbers.Number):
        text, kind = repr(value), "a number"
    else:
        text, kind = repr(value), f"a {type(value).__name__}"
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


def _is_token(value) -> bool:
    """Text, or a number other than a boolean (an id written as a number)."""
    return isinstance(value, str) or (isinstance(value, numbers.Number)
                                      and not isinstance(value, (bool, np.bool_)))


def check_tokens(values: pd.Series, path=None, column: str = "event") -> pd.Series:
    """``values`` (a column of ids or names: users, events, intents, locations) as ``str``.

    A missing or empty value, or one that is not text nor a number (a list, a struct, a
    boolean, a date-time, bytes that are not UTF-8) is a :class:`DataError` naming the
    file, its row (the series index + 1) and ``column``. Numbers become their text."""
    missing = values.isna().to_numpy(dtype=bool)
    if isinstance(values.dtype, pd.StringDtype) or pd.api.types.is_numeric_dtype(values) and \
            not pd.api.types.is_bool_dtype(values):
        odd = np.zeros(len(values), dtype=bool)
    elif values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
        odd = ~missing & ~values.map(_is_token, na_action="ignore").to_numpy(dtype=bool,
                                                                            na_value=True)
    else:  # booleans, date-times, durations
        odd = ~missing
    if odd.any() and not (missing.any() and np.argmax(missing) < np.argmax(odd)):
        at = int(np.argmax(odd))
        raise DataError(f"expected text (an id or a name), got {describe_value(values.iloc[at])}",
                        path, data_row(values, at), column)
    check_no_missing(values, path, column)
    text = values if isinstance(values.dtype, pd.StringDtype) else values.astype(str)
    empty = (text == "").to_numpy(dtype=bool)
    if empty.any():
        at = int(np.flatnonzero(empty)[0])
        raise DataError("empty value (expected an id or a name)", path, data_row(values, at), column)
    return text


def data_row(values: pd.Series, position: int) -> int:
    """The 1-based data row of ``values``' cell at ``position`` (its index label + 1, the
    header being row 0)."""
    label = values.index[position]
    return int(label) + 1 if isinstance(label, (int, np.integer)) else position + 1


def check_no_missing(values: pd.Series, path, column: str) -> None:
    """A missing cell of ``values`` is a :class:`DataError` naming its row."""
    missing = values.isna().to_numpy()
    if missing.any():
        at = int(np.flatnonzero(missing)[0])
        raise DataError("missing value", path, data_row(values, at), column)
