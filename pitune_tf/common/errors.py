"""User-facing errors: one type for bad input, reported by the CLIs as one line, exit 2."""

from __future__ import annotations

import os


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


def os_error_message(err: OSError, output=None) -> str:
    """One line for an operating-system error: the path(s) it names and the system's words
    for it (``runs/x: Permission denied``, ``runs/x/student.keras: File too large``). An
    error that names no path (a failed write) names ``output`` (the command's ``--out``)
    when given."""
    reason = err.strerror or str(err) or type(err).__name__
    paths = [str(p) for p in (err.filename, getattr(err, "filename2", None)) if p is not None]
    if paths:
        return f"{' -> '.join(paths)}: {reason}"
    if output is not None:
        return f"{reason} (writing under {output})"
    return reason


def path_problem(path) -> str | None:
    """Why ``path`` cannot be read, in the system's words, or None when it can be looked
    up: ``file not found`` (missing, or a link to nothing), ``Too many levels of symbolic
    links`` (a link loop), ``File name too long``, ``Not a directory``, ``Permission
    denied``."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return "file not found"
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the name
        return getattr(err, "strerror", None) or str(err)
    return None


def not_found(what: str, path) -> str:
    """The message for a ``what`` (``"config file"``, ``"run directory"``) at ``path`` that
    is not there: ``WHAT not found: PATH``, unless the system says more than "not found" (a
    link loop, a name too long, no permission): ``WHAT PATH: <the system's words>``."""
    problem = path_problem(path)
    if problem in (None, "file not found"):
        return f"{what} not found: {path}"
    return f"{what} {path}: {problem}"
