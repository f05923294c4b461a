"""An output folder's files replaced as one set, never file by file.

    with output_set(out, owned=("per_user.csv", "summary.json", "results.md")) as new:
        ...  # write the new files into ``new``, a private folder beside ``out``
    # ``out`` now holds what the block wrote, and every entry it held before that is not
    # one of ``owned`` (a user's own files, a run's other files)

The switch is one atomic exchange of the two folders (``renameat2(RENAME_EXCHANGE)`` on
Linux; elsewhere two renames, the old folder put back by the next write if the process dies
between them: :func:`pitune_tf.common.atomic.atomic_path`). At every moment ``out`` is the
old complete set or the new one: a kill or a full disk before the switch leaves ``out`` as
it was (the unfinished new folder waits beside it as a hidden temporary, removed by the next
write of ``out``); after it, ``out`` is the new set. The entries ``out`` keeps are carried
into the new folder as hard links (copies where the file system has none), so carrying them
costs no space.

A folder another live process is writing inside (its run lock or its temporary files
there) is not replaced: the entries that process writes after the carry-over would be lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from pitune_tf.common.atomic import atomic_path
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.run_lock import lock_holder, process_alive, real_path

# ``.<name>.<pid>.<random>.tmp[...]`` (pitune_tf.common.atomic) and ``.<name>.lock``
# (pitune_tf.common.run_lock): the marks of a writer inside a folder
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[^./]+\.tmp(\..*)?$")
_LOCK = re.compile(r"^\..+\.lock$")


def _writer(folder: Path, name: str) -> int:
    """The process id that the entry ``name`` of ``folder`` marks as writing there (a run
    lock or a temporary file), or 0."""
    if _LOCK.match(name):
        return lock_holder(folder / name)
    match = _TEMPORARY.match(name)
    return int(match.group(1)) if match else 0


def _live_writer(folder: Path, name: str) -> int:
    """:func:`_writer` when that process runs and is not this one, else 0."""
    pid = _writer(folder, name)
    return pid if pid and pid != os.getpid() and process_alive(pid) else 0


def _stale(folder: Path, name: str) -> bool:
    """Whether ``name`` is the lock or temporary of a process that no longer runs."""
    pid = _writer(folder, name)
    return bool(pid) and pid != os.getpid() and not process_alive(pid)


def check_no_writer_inside(folder, typed=None) -> None:
    """Raises UserInputError when another live process writes inside ``folder``."""
    for parent, _, names in os.walk(folder):
        for name in names:
            pid = _live_writer(Path(parent), name)
            if pid:
                where = Path(parent) / name
                raise UserInputError(
                    f"{typed or folder} is being written by another process ({pid}: {where}); "
                    "wait for it to finish")


def _link_or_copy(source, target):
    """A hard link of ``source`` at ``target``; a copy where the file system has none."""
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)
    return target


def carry_over(folder: Path, new: Path, owned) -> None:
    """Links every entry of ``folder`` that is not ``owned``, not already in ``new`` and not
    a dead process's lock or temporary into ``new`` (folders recreated, links kept)."""
    def ignore(parent, names):
        return {name for name in names if _stale(Path(parent), name)}

    for entry in os.scandir(folder):
        target = new / entry.name
        if entry.name in owned or os.path.lexists(target) or _stale(folder, entry.name):
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            shutil.copytree(entry.path, target, symlinks=True, copy_function=_link_or_copy,
                            ignore=ignore)
        else:
            _link_or_copy(entry.path, target)


@contextlib.contextmanager
def output_set(folder, owned):
    """Yields a new, empty folder for the block to write; when the block succeeds, it
    replaces ``folder`` (its real path: a symbolic link to it is kept) in one atomic step,
    holding what the block wrote and every entry of ``folder`` not in ``owned``.

    Args:
        folder: str or Path. The output folder (created when missing).
        owned: iterable of str. The names (entries of ``folder``) that the block's set
            replaces: those the block does not write are gone afterwards.
    """
    typed = Path(folder)
    if typed.exists() and not typed.is_dir():
        raise UserInputError(f"{typed} is a file, not an output directory")
    folder = real_path(typed)
    owned = frozenset(owned)
    with atomic_path(folder) as new:
        new.mkdir()
        yield new
        if folder.is_dir():
            check_no_writer_inside(folder, typed)
            carry_over(folder, new, owned)
