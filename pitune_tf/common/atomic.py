"""Write outputs under a temporary name and rename on success, so a failed run leaves
nothing half-written."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.fault import fault_point
from pitune_tf.common.run_lock import process_alive


def _remove_stale_temporaries(path: Path) -> None:
    """Removes the temporary files of ``path`` left by writers that no longer run (a process
    killed between writing and renaming): ``.<name>.<pid>.<random>.tmp`` of a dead pid (with
    any suffix a writer added to it, e.g. ``.keras``). A folder that a killed writer had
    moved aside (``.<name>.<pid>.old.tmp``, where folders cannot be swapped in one step) is
    put back first when ``path`` is missing."""
    prefix = f".{path.name}."
    stale = []
    for candidate in path.parent.glob(f"{glob.escape(prefix)}*.tmp*"):
        pid = candidate.name[len(prefix):].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            stale.append(candidate)
    for candidate in stale:
        if candidate.name.endswith(".old.tmp") and not os.path.lexists(path):
            os.replace(candidate, path)  # the previous folder, never swapped out for good
        elif candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)


_RENAME_EXCHANGE = 2  # linux/fs.h


def exchange(first, second) -> bool:
    """Swaps two existing paths in one atomic step (Linux ``renameat2`` with
    ``RENAME_EXCHANGE``); returns False, leaving both as they are, where the system or the
    file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # glibc before 2.28, another C library
        return False
    at_cwd = -100
    if renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def _swap_folder(tmp: Path, path: Path) -> None:
    """Puts the folder ``tmp`` in the place of the folder ``path`` and deletes the old one:
    one atomic exchange where the system allows it; else two renames, the old folder kept
    as ``.<name>.<pid>.old.tmp`` in between (put back by the next write of ``path`` if this
    process dies there)."""
    if exchange(tmp, path):
        fault_point(f"replaced:{path.name}")
        shutil.rmtree(tmp, ignore_errors=True)  # now the old folder
        return
    old = path.with_name(f".{path.name}.{os.getpid()}.old.tmp")
    os.replace(path, old)
    try:
        fault_point(f"moved_aside:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    fault_point(f"replaced:{path.name}")
    shutil.rmtree(old, ignore_errors=True)


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
                raise UserInputError(f"{path} is a directory: not replaced by a file")
            _swap_folder(tmp, path)  # the old directory goes only once the new one is in place
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
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
