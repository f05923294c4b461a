"""The one table writer: every Markdown table the project writes (population report, the
individual stage's tables, the experiment suites, UAF's tables) and the plain-text table a
command prints go through :func:`markdown_table` / :func:`text_table`.

Cells: a float is written with ``digits`` decimals (``missing`` for None or NaN), anything
else with ``str``. A :class:`MeanStd` cell is ``mean ± std``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

MISSING = "—"


class MeanStd(NamedTuple):
    """A cell shown as ``mean ± std`` (just the mean when ``std`` is None or NaN)."""

    mean: float | None
    std: float | None = None


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value))


def cell(value: Any, digits: int = 4, missing: str = MISSING) -> str:
    """The text of one cell (see the module docstring)."""
    if isinstance(value, MeanStd):
        text = cell(value.mean, digits, missing)
        if text != missing and not _is_missing(value.std):
            text += f" ± {value.std:.{digits}f}"
        return text
    if _is_missing(value):
        return missing
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 4,
                   missing: str = MISSING, bold_best: Iterable[int] = ()) -> str:
    """A Markdown table (no trailing newline).

    Args:
        columns: the header cells.
        rows: one sequence of cells per row (see :func:`cell`).
        digits: decimals of a float cell.
        missing: the text of a None or NaN cell.
        bold_best: column indexes whose largest number is set in bold (every tie too).
    """
    rows = [list(row) for row in rows]
    best = {}
    for c in bold_best:
        values = [row[c] for row in rows if not _is_missing(row[c])]
        if values:
            best[c] = max(values)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [cell(v, digits, missing) for v in row]
        for c, top in best.items():
            if not _is_missing(row[c]) and row[c] == top:
                cells[c] = f"**{cells[c]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def text_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], first_width: int = 30,
               width: int = 9, digits: int = 4, missing: str = MISSING) -> str:
    """The same table as fixed-width plain text for a terminal: the first column left-aligned
    in ``first_width`` characters, the others right-aligned in ``width``."""
    def line(cells):
        head, *rest = cells
        return f"{head:<{first_width}}" + "".join(f"{c:>{width}}" for c in rest)

    return "\n".join([line(list(columns))]
                     + [line([cell(v, digits, missing) for v in row]) for row in rows])


def frame_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """``frame`` as a Markdown table; a ``<m>_mean``/``<m>_std`` column pair is one column
    ``m`` shown as ``mean ± std`` (just the mean when the std is missing)."""
    columns, shown = [], set()
    for c in frame.columns:
        if c in shown:
            continue
        if c.endswith("_mean") and f"{c[:-5]}_std" in frame.columns:
            columns.append((c[:-5], c, f"{c[:-5]}_std"))
            shown.update((c, f"{c[:-5]}_std"))
        elif not (c.endswith("_std") and f"{c[:-4]}_mean" in frame.columns):
            columns.append((c, c, None))
            shown.add(c)
    frame = frame.copy()
    for c in frame.columns:  # a count with gaps (a float column once read back): whole numbers
        values = frame[c].dropna()
        if frame[c].dtype.kind == "f" and len(values) and (values == values.round()).all() and not (
                c.endswith(("_mean", "_std"))):
            frame[c] = frame[c].astype("Int64")
    rows = [[row[value] if std is None else MeanStd(row[value], row[std])
             for _, value, std in columns] for _, row in frame.iterrows()]
    return markdown_table([name for name, _, _ in columns], rows, digits)
