"""User-facing errors: one type for bad input, reported by the CLIs as one line, exit 2."""

from __future__ import annotations


class UserInputError(Exception):
    """A mistake in what the user gave us (a file, an option, a run directory).

    The command-line entry points catch it, print ``error: <message>`` on stderr and exit
    with status 2, without a traceback.
    """


class DataError(UserInputError):
    """Bad input data, located as precisely as known.

    Args:
        message: str. What is wrong.
        path: str or None. The file.
        row: int or None. 1-based data row (the header is row 0) or line number.
        column: str or None. The column.
    """

    def __init__(self, message, path=None, row=None, column=None):
        self.message = message
        self.path = None if path is None else str(path)
        self.row = row
        self.column = column
        where = []
        if self.path is not None:
            where.append(self.path)
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")
