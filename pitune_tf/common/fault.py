"""A testing hook: ``kill -9`` of this process at a named point, for the fault-injection
suite (``tests/test_faults.py``). Never set in normal use."""

from __future__ import annotations

import os
import signal

FAULT_VARIABLE = "PITUNE_FAULT"  # e.g. PITUNE_FAULT=teacher_epoch:1


def fault_point(name: str) -> None:
    """Kills this process with SIGKILL (no cleanup, no ``finally``) when the environment
    variable ``PITUNE_FAULT`` equals ``name``; does nothing otherwise.

    The library calls it at a few named points, so a test can interrupt a run exactly there
    and check that the rerun resumes to the uninterrupted result:

    - ``teacher_epoch:N`` / ``student_epoch:N``: population phase, epoch N's checkpoint and
      state written; ``teacher_checkpoint:N`` / ``student_checkpoint:N``: the checkpoint
      written, its ``state.json`` not yet; ``teacher_best:N`` / ``student_best:N``: the best
      epoch's weights written, ``best.json`` not yet.
    - ``uaf_<stage>_epoch:N``: a UAF fit (stage ``pretrain`` or a mode, e.g. ``soft``) after
      epoch N's backup; ``uaf_<stage>_best:N``: the best weights written, ``state.json`` not
      yet; ``uaf_<stage>_scored:N``: ``state.json`` written, the epoch's backup not yet.
    - ``user:N``: the individual stage, after the N-th user's results are kept.
    - ``write:<file name>``: an atomic write, the temporary file complete, not yet renamed.

    Args:
        name: str. The point reached.
    """
    if os.environ.get(FAULT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
