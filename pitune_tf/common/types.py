"""Type aliases of the public API's annotations."""

from __future__ import annotations

import os

PathLike = str | os.PathLike[str]  # a file or folder: a string or a pathlib.Path
