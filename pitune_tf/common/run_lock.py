"""One writer per run directory: a lock file that a second command on the same folder meets."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pitune_tf.common.errors import UserInputError


def process_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def real_path(path) -> Path:
    """``path`` made absolute with every symbolic link resolved, in the folders above it
    too (a link to a folder that does not exist yet resolves to the folder it names)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def lock_holder(path) -> int:
    """The process id a lock file names (0 when unreadable)."""
    try:
        return int(Path(path).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


@contextlib.contextmanager
def run_lock(directory):
    """Holds the lock file ``.<directory name>.lock`` beside ``directory`` (so replacing the
    directory keeps it) with this process id while the block runs.

    The lock is named after the directory's real path (:func:`real_path`: symbolic links
    resolved, in the folders above it too), so two commands reaching one folder by
    different paths meet the same lock. A second process on the same directory gets a
    :class:`UserInputError` naming the holder; a lock left by a process that no longer
    exists (killed) is taken over.
    """
    typed = Path(directory)
    if typed.exists() and not typed.is_dir():
        raise UserInputError(f"{typed} is a file, not a run directory")
    directory = real_path(typed)
    directory.parent.mkdir(parents=True, exist_ok=True)
    path = directory.parent / f".{directory.name}.lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = lock_holder(path)
            if holder and holder != os.getpid() and process_alive(holder):
                raise UserInputError(f"{typed} is in use by another run (process {holder}); "
                                     "wait for it or use another --out") from None
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        break
    else:
        raise UserInputError(f"{typed}: could not take the run lock {path}")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
