"""A testing hook: ``kill -9`` of this process, or a full disk, at a named point, for the
fault-injection suite (``tests/test_faults.py``). Never set in normal use."""

from __future__ import annotations

import collections
import errno
import os
import signal

FAULT_VARIABLE = "PITUNE_FAULT"  # e.g. PITUNE_FAULT=teacher_epoch:1
TRACE_VARIABLE = "PITUNE_FAULT_TRACE"  # a file: every point reached is appended to it
NO_SPACE = "enospc@"  # PITUNE_FAULT=enospc@write:summary.json: a full disk there

_reached = collections.Counter()  # this process's count of each point reached


def fault_point(name: str) -> None:
    """Kills this process with SIGKILL (no cleanup, no ``finally``) when the environment
    variable ``PITUNE_FAULT`` names this point; does nothing otherwise.

    ``PITUNE_FAULT`` is ``<name>`` (the first time the point is reached), ``<name>#<n>``
    (the n-th time, counted in this process), or either after ``enospc@``: then the point
    raises ``OSError(ENOSPC)``, as a full disk would, instead of killing. With
    ``PITUNE_FAULT_TRACE=<file>``, each point reached is appended to the file as a line
    ``<name>#<n>``: what a test enumerates to fault a command at every point it reaches.

    The library calls it at named points, so a test can interrupt a run exactly there
    and check that the rerun resumes to the uninterrupted result:

    - ``teacher_epoch:N`` / ``student_epoch:N``: population phase, epoch N's checkpoint and
      state written; ``teacher_checkpoint:N`` / ``student_checkpoint:N``: the checkpoint
      written, its ``state.json`` not yet; ``teacher_best:N`` / ``student_best:N``: the best
      epoch's weights written, ``best.json`` not yet; ``teacher_scored:N`` /
      ``student_scored:N``: ``best.json`` written, the epoch's checkpoint not yet.
    - ``uaf_<stage>_epoch:N``: a UAF fit (stage ``pretrain`` or a mode, e.g. ``soft``) after
      epoch N's checkpoint (``uaf_<stage>_checkpoint:N``: the checkpoint written, its
      ``backup/state.json`` not yet); ``uaf_<stage>_best:N``: the best weights written,
      ``state.json`` not yet; ``uaf_<stage>_scored:N``: ``state.json`` written, the epoch's
      checkpoint not yet.
    - ``user:N``: the individual stage, after the N-th user's results are kept.
    - ``write:<name>``: every atomic write (``pitune_tf.common.atomic.atomic_path``), the
      temporary file or folder complete, not yet renamed; for an output folder replaced as
      a set (``pitune_tf.common.output_set``), the new folder complete, not yet swapped in.
    - ``replaced:<name>``: a folder swapped in, the folder it replaced not yet deleted;
      ``moved_aside:<name>``: where folders cannot be exchanged in one step, the old
      folder moved aside, the new one not yet in its place.

    Args:
        name: str. The point reached.
    """
    _reached[name] += 1
    trace = os.environ.get(TRACE_VARIABLE)
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{name}#{_reached[name]}\n")
    wanted = os.environ.get(FAULT_VARIABLE)
    if not wanted:
        return
    no_space = wanted.startswith(NO_SPACE)
    wanted = wanted[len(NO_SPACE):] if no_space else wanted
    point, _, count = wanted.partition("#")
    if point != name or _reached[name] != (int(count) if count else 1):
        return
    if no_space:
        raise OSError(errno.ENOSPC, f"No space left on device (simulated at {name})")
    os.kill(os.getpid(), signal.SIGKILL)
