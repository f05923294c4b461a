"""The one run-directory reader: what every reader of a finished run (PITuning's population
run, the individual stage's output, a UAF run, an experiment's run) checks before it trusts
the folder, with one clear error for each problem.

Each method's reader builds on it: ``pitune_tf.population.run_directory.Run`` (a PITuning
population run) and ``nextitnet.uaf_recommender.UAFRecommender.from_run`` (a UAF run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pitune_tf.common.errors import UserInputError, not_found
from pitune_tf.common.json_files import read_json
from pitune_tf.common.types import PathLike

_REQUIRED = object()


class RunFiles:
    """A run directory read back.

    Args:
        run_dir: the folder.
        required: file or folder names that must be there (one error names the first missing).
        what: how errors name the folder, e.g. ``"UAF run directory"``.

    Raises:
        UserInputError: the folder is not there (or unreadable), or a required name is missing.
    """

    def __init__(self, run_dir: PathLike, required: tuple[str, ...] = (),
                 what: str = "run directory") -> None:
        self.path = Path(run_dir)
        self.what = what
        if not self.path.is_dir():
            raise UserInputError(not_found(what, self.path))
        for name in required:
            if not (self.path / name).exists():
                raise UserInputError(f"{what} {self.path} is missing {name}")

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def file(self, name: str, hint: str = "") -> Path:
        """The path of file ``name``, which must exist (``hint``: what to do otherwise)."""
        path = self.path / name
        if not path.is_file():
            raise UserInputError(f"{self.what} {self.path} is missing {name}"
                                 + (f" ({hint})" if hint else ""))
        return path

    def json(self, name: str, kind: type = dict, default: Any = _REQUIRED) -> Any:
        """The content of JSON file ``name`` (a ``kind``); ``default`` when the file is
        missing and a default is given, else one error naming the missing file."""
        path = self.path / name
        if default is not _REQUIRED and not path.is_file():
            return default
        self.file(name)
        return read_json(path, kind)
