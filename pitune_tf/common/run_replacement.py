"""``--overwrite`` for run directories, one behaviour for every command (``trainers.population``,
``trainers.uaf``): the old run is moved aside, not deleted, and put back if the new run fails;
it is removed only once the new run has finished.

    replaced = prepare_run_dir(out_dir, record, overwrite)   # record -> out_dir/config.json
    try:
        ...  # the run
    except BaseException:
        finish_replacement(out_dir, replaced, succeeded=False)
        raise
    finish_replacement(out_dir, replaced, succeeded=True)

The old run waits beside ``out_dir`` as ``.<name>.replaced``; a replacement killed half-way
(``kill -9``) is found there by the next command on ``out_dir``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from pitune_tf.common.atomic import write_json
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.json_files import read_json
from pitune_tf.common.run_lock import real_path


def aside_path(out_dir) -> Path:
    """Where a replaced run waits: ``.<name>.replaced`` beside ``out_dir`` (its real path:
    a run reached through a symbolic link waits beside the folder the link names)."""
    out_dir = real_path(out_dir)
    return out_dir.with_name(f".{out_dir.name}.replaced")


def move_aside(out_dir) -> Path:
    """Moves the run in ``out_dir`` to :func:`aside_path` (dropping an older one there)."""
    aside = aside_path(out_dir)
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(real_path(out_dir), aside)  # the folder, never a link to it
    return aside


def _saved_config(path):
    """The run's saved config, or None when the file is not a JSON object (a run that
    ``--overwrite`` replaces like any other)."""
    try:
        return read_json(path)
    except UserInputError:
        return None


def with_defaults(saved: dict, defaults: dict) -> dict:
    """A saved config (read from JSON) with each key it lacks (one added to the config since
    it was written) at its value in ``defaults``, in JSON form: how a run written before a
    key existed is compared with a config of today."""
    return {**json.loads(json.dumps(defaults)), **saved}


def prepare_run_dir(out_dir, record, overwrite, finished_file="metrics.json",
                    refuse_finished=True, defaults=None):
    """Creates ``out_dir`` and writes ``record`` (a JSON-able dict) as its ``config.json``.

    A finished run (``finished_file`` present) is replaced with ``overwrite``; without it, it
    is an error when ``refuse_finished`` (else it is resumed, if its config is ``record``). A
    run whose config differs from ``record`` is replaced with ``overwrite``, else an error;
    one with the same config is resumed.

    ``defaults`` (a dict like ``record``, or None): the value of a key the saved config lacks
    (one added to the config since the run was written: such a run resumes).

    Returns:
        The replaced run's path aside (None when nothing was replaced), for
        :func:`finish_replacement`.
    """
    out_dir = Path(out_dir)
    config_path = out_dir / "config.json"
    finished = (out_dir / finished_file).exists()
    saved = _saved_config(config_path) if config_path.exists() else None
    if isinstance(saved, dict):
        saved = with_defaults(saved, defaults or {})
    differs = config_path.exists() and saved != json.loads(json.dumps(record))
    replaced = None
    if finished and (overwrite or refuse_finished):
        if not overwrite:
            raise UserInputError(
                f"{out_dir} already holds a finished run; pass --overwrite or another --out")
        replaced = move_aside(out_dir)
    elif differs:
        if not overwrite:
            state = "a finished" if finished else "an unfinished"
            raise UserInputError(
                f"{out_dir} holds {state} run with a different config; pass --overwrite to "
                "start over or use another --out")
        replaced = move_aside(out_dir)
    aside = aside_path(out_dir)
    if replaced is None and aside.exists():  # an earlier replacement was interrupted (kill -9)
        replaced = aside
    real_path(out_dir).mkdir(parents=True, exist_ok=True)  # through a link: the folder it names
    write_json(config_path, record)
    return replaced


def finish_replacement(out_dir, replaced, succeeded) -> None:
    """After a run that replaced ``replaced``: delete it (``succeeded``), or remove the new,
    unfinished run and put the old one back."""
    if replaced is None:
        return
    if succeeded:
        shutil.rmtree(replaced, ignore_errors=True)
    else:
        out_dir = real_path(out_dir)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(replaced, out_dir)
