"""The resolved settings of a run as text: printed at the start of a run and by
``--print-config`` (one formatter for every command).

Example::

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Config:
    ...     backbone: str = "random:2x64"
    ...     epochs: int | None = None
    ...     split: tuple = (0.6, 0.1, 0.3)
    >>> print(format_settings(Config(), notes={"epochs": "3 on the embedded data"}))
    backbone = "random:2x64"
    epochs = null  # 3 on the embedded data
    split = [0.6, 0.1, 0.3]
"""

from __future__ import annotations

import dataclasses
import json


def format_value(value) -> str:
    """``value`` as JSON, as a config file would hold it (tuples as lists, anything JSON
    cannot hold as its ``str``)."""
    return json.dumps(value, default=str, ensure_ascii=False)


def format_settings(config, notes: dict | None = None) -> str:
    """One ``key = value`` line per field of the dataclass instance ``config``, in the order
    the fields are declared; values as JSON (:func:`format_value`), so that a line can be
    copied into a JSON or YAML config file.

    Args:
        config: a dataclass instance.
        notes: dict or None. Field name -> a comment appended to its line (``  # ...``),
            e.g. what a ``None`` resolves to at run time.
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"format_settings needs a dataclass instance, got {config!r}")
    notes = notes or {}
    lines = []
    for f in dataclasses.fields(config):
        line = f"{f.name} = {format_value(getattr(config, f.name))}"
        if notes.get(f.name):
            line += f"  # {notes[f.name]}"
        lines.append(line)
    return "\n".join(lines)
