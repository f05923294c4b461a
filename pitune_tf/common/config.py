"""One config resolver for every command: preset < config file < command line.

Configs are dataclasses with commented defaults; a key the dataclass does not have is an
error, in a file as on the command line. Values given as JSON lists become tuples where the
field's default is a tuple.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from pathlib import Path

import yaml

from pitune_tf.common.errors import UserInputError, not_found


def read_config_file(path) -> dict:
    """Key/value overrides from a config file (unknown keys are reported by :func:`replace`).

    Accepted, the same for every command: a JSON object (``.json`` or any other suffix), a
    YAML mapping (``.yaml`` / ``.yml``), or a run's own saved config: a run directory (its
    ``config.json`` is read) or a file whose object holds the keys under ``"config"`` (the
    UAF run's ``config.json``, the individual stage's ``summary.json``).
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserInputError(f"config: {path} is a directory without a config.json")
        path = path / "config.json"
    if not path.is_file():
        raise UserInputError(not_found("config file", path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserInputError(f"{path}: not UTF-8 text ({err.reason})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise UserInputError(f"{path}: not valid YAML ({err})") from None
        kind = "a YAML mapping"
    else:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserInputError(f"{path}: not valid JSON ({err})") from None
        kind = "a JSON object"
    if not isinstance(values, dict):
        raise UserInputError(f"{path}: expected {kind} of config keys")
    if isinstance(values.get("config"), dict):  # a run's record: the keys are under "config"
        values = values["config"]
    return values


def _tuple_fields(cls) -> set:
    names = set()
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if isinstance(default, tuple):
            names.add(f.name)
    return names


# Python types a value of a field annotated with these names may have (an int is a valid
# float, a bool is neither; NumPy scalars count); fields with other annotations are not checked.
_ANNOTATION_TYPES = {"int": (numbers.Integral,), "float": (numbers.Real,), "bool": (bool,), "str": (str,),
                     "tuple": (tuple, list), "list": (list, tuple), "None": (type(None),)}


def _check_type(field, value) -> None:
    """A value whose type does not match ``field``'s annotation (``int``, ``float | None``,
    ...) is a :class:`UserInputError` naming the key."""
    names = [name.strip() for name in str(field.type).split("|")]
    if any(name not in _ANNOTATION_TYPES for name in names):
        return
    allowed = tuple(t for name in names for t in _ANNOTATION_TYPES[name])
    if isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool)):
        return
    raise UserInputError(f"config key {field.name!r}: expected {field.type}, got {value!r}")


def replace(config, **changes):
    """A copy of the dataclass ``config`` with ``changes`` (its ``__post_init__`` runs
    again); an unknown key or a value of the wrong type raises :class:`UserInputError`."""
    cls = type(config)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise UserInputError(f"unknown config key(s): {', '.join(unknown)}")
    for name, value in changes.items():
        _check_type(fields[name], value)
    tuples = _tuple_fields(cls)
    changes = {k: tuple(v) if k in tuples and isinstance(v, list) else v
               for k, v in changes.items()}
    try:
        return dataclasses.replace(config, **changes)
    except TypeError as err:  # e.g. a value of the wrong type in a comparison
        raise UserInputError(f"invalid config value ({err})") from None


def resolve_config(cls, presets: dict, preset_name=None, config_file=None, overrides=None):
    """``cls()`` with, in increasing precedence, the preset's values, a JSON config file's
    and ``overrides`` (the command line; ``None`` values are ignored).

    Args:
        cls: a dataclass type.
        presets: dict of preset name -> dict of field values.
        preset_name: str or None. A key of ``presets`` (None: the dataclass defaults).
        config_file: str, Path or None. A JSON / YAML file of field values or a run's
            saved config (:func:`read_config_file`).
        overrides: dict or None.
    """
    if preset_name is not None and preset_name not in presets:
        raise UserInputError(f"unknown preset {preset_name!r}; choose from {', '.join(presets)}")
    config = cls()
    if preset_name is not None:
        config = replace(config, **presets[preset_name])
    if config_file is not None:
        config = replace(config, **read_config_file(config_file))
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    return replace(config, **changes)
