"""Reading a JSON file a user or a run wrote: every problem is one clear UserInputError."""

from __future__ import annotations

import json
from pathlib import Path

from pitune_tf.common.errors import UserInputError


def read_json(path, kind=dict, missing=None):
    """The content of JSON file ``path``, which must be a ``kind`` (dict or list).

    Args:
        path: str or Path.
        kind: type. The JSON type expected at the top level.
        missing: str or None. The message's hint when the file does not exist, e.g. "not a
            UAF run directory?" (None: a missing file raises FileNotFoundError as usual).
    Raises:
        UserInputError: a missing file (with ``missing``), invalid JSON or UTF-8, another type.
    """
    path = Path(path)
    if missing is not None and not path.is_file():
        raise UserInputError(f"{path} not found ({missing})")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserInputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(value, kind):
        raise UserInputError(f"{path}: expected a JSON {'object' if kind is dict else kind.__name__}")
    return value
