"""RecBole-style atomic files of a same-user cross-domain set (the field's data format).

A folder holds ``source.inter`` and ``target.inter``, tab-separated with a typed header
(``user_id:token	item_id:token	timestamp:float``), and optionally one ``*.user`` file
(``user_id:token`` plus profile columns such as ``gender:token``, ``age:token``). Ids are
kept as strings; each user's interactions are ordered by timestamp (ties keep file order).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from nextitnet.data.cross_domain_data import CrossDomainData
from pitune_tf.common.errors import DataError, UserInputError, path_problem

log = logging.getLogger(__name__)
INTER_COLUMNS = ("user_id", "item_id", "timestamp")
PROFILE_COLUMNS = ("gender", "age")  # the profile labels of UAF 5.4 read from a .user file


def read_atomic_table(path, columns) -> pd.DataFrame:
    """A tab-separated atomic file as strings, its header's ``name:type`` reduced to
    ``name``; a missing column, an empty value in ``columns`` or a parse error is a
    :class:`DataError` naming the file (and the row: 1-based after the header)."""
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except Exception as err:  # noqa: BLE001  (parser errors of any kind)
        raise DataError(f"cannot parse as tab-separated: {err}", path) from err
    df.columns = [c.split(":")[0] for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}", path, 0)
    for column in columns:
        empty = np.flatnonzero(df[column].str.strip().to_numpy() == "")
        if len(empty):
            raise DataError("empty value", path, int(empty[0]) + 1, column)
    return df


def parse_timestamps(df, path) -> np.ndarray:
    """The ``timestamp`` column as float64 [n]; a non-numeric value is a :class:`DataError`."""
    values = pd.to_numeric(df["timestamp"], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy())
    if len(bad):
        raise DataError("non-numeric timestamp", path, int(bad[0]) + 1, "timestamp")
    return values.to_numpy(np.float64)


def _sequences(path) -> dict[str, list[str]]:
    df = read_atomic_table(path, INTER_COLUMNS)
    if df.empty:
        raise UserInputError(f"{path}: no interactions")
    df["ts"] = parse_timestamps(df, path)
    df = df.sort_values(["user_id", "ts"], kind="stable")
    return {user: group["item_id"].tolist() for user, group in df.groupby("user_id", sort=True)}


def read_atomic(folder) -> CrossDomainData:
    """Reads ``source.inter``, ``target.inter`` and an optional ``*.user`` file.

    Every user of ``source.inter`` is a row (pretraining sequence and fine-tuning source
    sequence), with their target items in time order (possibly none); users found only in
    ``target.inter`` are left out (counted in ``skipped_lines``, logged). The ``.user``
    file's ``gender`` / ``age`` columns become profiles ("<unknown>" for users it lacks).
    """
    folder = Path(folder)
    problem = path_problem(folder)
    if problem not in (None, "file not found"):  # a link loop, a name too long...
        raise UserInputError(f"{folder}: {problem}")
    if not folder.is_dir():
        raise UserInputError(f"{folder}: atomic-file folder not found")
    for name in ("source.inter", "target.inter"):
        if not (folder / name).is_file():
            raise UserInputError(f"{folder}: missing {name} (RecBole atomic files source.inter, target.inter)")
    source = _sequences(folder / "source.inter")
    target = _sequences(folder / "target.inter")
    users = list(source)
    orphans = sorted(set(target) - set(source))
    if orphans:
        log.warning("%d target users have no source interactions and are left out, e.g. %s",
                    len(orphans), orphans[:3])
    profiles = {}
    user_files = sorted(folder.glob("*.user"))
    if len(user_files) > 1:
        raise UserInputError(f"{folder}: more than one .user file ({', '.join(p.name for p in user_files)})")
    if user_files:
        table = read_atomic_table(user_files[0], ("user_id",)).drop_duplicates("user_id").set_index("user_id")
        for label in PROFILE_COLUMNS:
            if label in table.columns:
                values = table[label].to_dict()
                profiles[label] = [values.get(u) or "<unknown>" for u in users]
    return CrossDomainData(
        [source[u] for u in users], users, [source[u] for u in users], [target.get(u, []) for u in users],
        profiles, name=f"atomic:{folder.name}", skipped_lines=len(orphans),
    )
