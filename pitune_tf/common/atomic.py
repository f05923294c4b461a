"""Write outputs under a temporary name and rename on success, so a failed run leaves
nothing half-written."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path

from pitune_tf.common.fault import fault_point
from pitune_tf.common.run_lock import process_alive


def _remove_stale_temporaries(path: Path) -> None:
    """Removes the temporary files of ``path`` left by writers that no longer run (a process
    killed between writing and renaming): ``.<name>.<pid>.<random>.tmp`` of a dead pid (with
    any suffix a writer added to it, e.g. ``.keras``)."""
    prefix = f".{path.name}."
    for stale in path.parent.glob(f"{glob.escape(prefix)}*.tmp*"):
        pid = stale.name[len(prefix):].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; renames it to ``path`` if the block succeeds.

    Works for files and for directories (whatever the block creates at the yielded path).
    The temporary name holds the process id, so the temporaries of a writer that was killed
    are removed by the next write of ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
    except OSError as err:  # a read-only folder: the error names the output, not the temporary
        err.filename = str(path)
        raise
    os.close(fd)
    os.unlink(tmp)
    tmp = Path(tmp)
    try:
        try:
            yield tmp
        except OSError as err:  # a failed write (file too large, disk full) names no file
            if err.filename is None:
                err.filename = str(path)
            raise
        fault_point(f"write:{path.name}")
        if path.is_dir() and not path.is_symlink():
            if not tmp.is_dir():  # never delete a user's folder to put a file in its place
                from pitune_tf.common.errors import UserInputError

                raise UserInputError(f"{path} is a directory: not replaced by a file")
            # swap: the old directory goes only once the new one is in place
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(path, text: str) -> None:
    """Atomically writes ``text`` to ``path``."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json(path, obj) -> None:
    """Atomically writes ``obj`` as indented JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
