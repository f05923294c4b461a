"""Resuming an interrupted individual stage: the per-user records kept while it runs, and
the fingerprint of what they were computed from."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path

from pitune_tf.common.atomic import write_json
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.run_files import RunFiles
from pitune_tf.individual.shards import load_records, save_records

logger = logging.getLogger(__name__)

FINISHED_USERS = ".users"  # inside the output directory while unfinished: one file per user done


class FinishedUsers:
    """The per-user records of an unfinished individual stage, one ``<i>.npz`` per user in
    ``directory`` (written atomically as each user finishes; plain arrays and JSON,
    :func:`pitune_tf.individual.shards.save_records`), so a rerun after an interruption
    (``kill -9`` included) personalizes only the users not done yet. ``key.json`` holds the
    run's fingerprint (config, run files, data, backend, users): records of another
    fingerprint are discarded. Each user's result depends only on the user and the seed
    (``engine.user_seed``), so the resumed stage equals an uninterrupted one. The pickle
    records of older versions (``<i>.pkl``) are never loaded (a pickle can run code): their
    users are personalized again.

    Args:
        directory: Path or None (None: nothing kept).
        fingerprint: dict. What the records were computed from (JSON-serializable).
    """

    def __init__(self, directory, fingerprint):
        self.directory = None if directory is None else Path(directory)
        if self.directory is None:
            return
        key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode())
        self.key = key.hexdigest()
        key_file = self.directory / "key.json"
        try:
            kept = (RunFiles(self.directory, what="user records").json("key.json").get("key")
                    if key_file.is_file() else None)
        except (OSError, UserInputError):  # a damaged key: the records are not trusted
            kept = None
        if self.directory.is_dir() and kept != self.key:
            shutil.rmtree(self.directory)  # records of another configuration
        pickles = sorted(self.directory.glob("*.pkl")) if self.directory.is_dir() else []
        if pickles:
            logger.warning("%s: %d user record(s) of an older version (%s) not loaded: a "
                           "pickle can run code; those users are personalized again",
                           self.directory, len(pickles), pickles[0].name)
        if not key_file.is_file():
            write_json(key_file, {"key": self.key})

    def _path(self, index) -> Path:
        return self.directory / f"{index}.npz"

    def load(self, index):
        """The record of user ``index``, or None when not done (or unreadable)."""
        if self.directory is None or not self._path(index).is_file():
            return None
        try:
            return load_records(self._path(index))[1][0]
        except Exception:  # noqa: BLE001  (a damaged record is recomputed)
            return None

    def save(self, index, record) -> None:
        if self.directory is not None:
            save_records(self._path(index), [record], {})


def stage_fingerprint(run_dir, config, data_path, backend, model, litert_backend, users, schema=None,
                      mapping=None) -> dict:
    """What the per-user records depend on: the run's files (by size and modification
    time), the config, the data and how it is read (``schema`` and ``mapping`` overrides: a
    mapping file by its stamp), the backend and the users, in order."""
    def stamp(path):
        stat = Path(path).stat()
        return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]

    run_files = [stamp(Path(run_dir) / name)
                 for name in ("config.json", "vocab.json", "student.keras", "p_out.json")]
    return {"run": run_files, "config": dataclasses.asdict(config), "data": stamp(data_path),
            "backend": backend, "litert_backend": litert_backend,
            "model": None if model is None else stamp(model), "users": [u.user for u in users],
            # the overrides only when given: the records of a stage without them still resume
            **({"schema": _plain(schema)} if schema is not None else {}),
            **({"mapping": stamp(mapping) if isinstance(mapping, (str, Path)) else _plain(mapping)}
               if mapping is not None else {})}


def _plain(value):
    """``value`` as JSON-able data: a dataclass (a whole ``Schema``) by its fields."""
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
