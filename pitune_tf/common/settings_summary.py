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

from pitune_tf.common.config import read_config_file


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


def setting_sources(presets: dict, preset_name=None, config_file=None, overrides=None) -> dict:
    """Field name -> where its value came from: ``preset NAME``, ``--config FILE`` or
    ``command line`` (a later source wins, as in
    :func:`pitune_tf.common.config.resolve_config`; ``None`` overrides are not given); fields
    of none of them keep the dataclass default. The ``notes`` of :func:`format_settings`."""
    sources = {}
    if preset_name is not None:
        sources.update({k: f"preset {preset_name}" for k in presets.get(preset_name, {})})
    if config_file is not None:
        sources.update({k: f"--config {config_file}" for k in read_config_file(config_file)})
    sources.update({k: "command line" for k, v in (overrides or {}).items() if v is not None})
    return sources


def format_summary(config, fields=(), notes: dict | None = None) -> str:
    """One line for the start of a run: ``key=value`` (JSON values) for ``fields`` and for
    every field with a note, which follows in brackets (e.g. where a value was set)::

        embedding_dim=32, epochs=1 (command line), loss="bpr" (preset paper)
    """
    notes = {k: v for k, v in (notes or {}).items() if v}
    names = [f.name for f in dataclasses.fields(config) if f.name in fields or f.name in notes]
    return ", ".join(f"{name}={format_value(getattr(config, name))}"
                     + (f" ({notes[name]})" if name in notes else "") for name in names)
