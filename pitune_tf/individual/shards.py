"""The individual stage split across machines: ``--shard I/N`` runs a deterministic part of
the users, ``merge`` combines the parts into the tables of one run.

Partition: the users a full run would process (the log's users with training and test
windows, sorted by id, the first ``--users`` of them) are numbered 0, 1, ... in that order;
shard ``I`` of ``N`` (``0 <= I < N``) takes the users whose number is ``I`` modulo ``N``
(round-robin, so shards differ by at most one user and the ``--fp-users`` users, the first
by id, are spread over the shards). Every shard reads the whole log (the skip statistics are
the log's) and personalizes its users only; a user's result does not depend on the users run
before it (per-user seeds), so the parts of N shards hold the records of one run.

A part is an ordinary output directory (``per_user.csv``, ``summary.json`` with
``"shard": "I/N"``, ``results.md`` over its users) plus ``shard_records.npz``: each user's
record (test labels, timestamps and every method's test probabilities as arrays, the rest as
JSON), what the pooled metrics need. :func:`pitune_tf.individual.stage.merge_parts` checks
that the parts are the N shards of one configuration, orders their records as one run does and writes the same files
as one run, replacing the files of an earlier merge (or run) in ``out`` as one set; the timings
(``seconds``, ``s/user`` and Table 3's ``infer_ms``) are the parts' (Table 3's rows from
shard 0). The same format holds the per-user records of an unfinished run
(``pitune_tf.individual.resume.FinishedUsers``)."""

from __future__ import annotations

import json

import numpy as np

from pitune_tf.common.atomic import _json_default, atomic_path
from pitune_tf.common.errors import UserInputError

RECORDS = "shard_records.npz"
_ARRAYS = ("y_true", "val_y_true", "timestamp", "oracle_scores", "oracle_context_scores")  # a record's arrays besides the scores


def parse_shard(text) -> tuple:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``; anything else is a UserInputError."""
    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise UserInputError(f"--shard must be I/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise UserInputError(f"--shard {text}: need N >= 1 and 0 <= I < N (shards are numbered "
                             "from 0)")
    return index, count


def shard_indices(n_users, index, count) -> list:
    """The numbers (positions in the full run's user order) of shard ``index`` of ``count``."""
    return list(range(index, n_users, count))


def save_records(path, records, meta) -> None:
    """Writes ``records`` (``PersonalizationEngine.run_user`` records) and ``meta`` (JSON-able)
    atomically to ``path``: an ``.npz`` of plain arrays (never a pickle: loading it runs no
    code), each record's other values as JSON in its ``meta`` entry."""
    arrays, plain = {}, []
    for k, record in enumerate(records):
        for key in _ARRAYS:
            if key in record:
                arrays[f"{k}/{key}"] = np.asarray(record[key])
        for method, entry in record["methods"].items():
            arrays[f"{k}/scores/{method}"] = np.asarray(entry["scores"])
            if "val_scores" in entry:
                arrays[f"{k}/val_scores/{method}"] = np.asarray(entry["val_scores"])
        plain.append({**{key: v for key, v in record.items() if key not in (*_ARRAYS, "methods")},
                      "methods": {m: {"info": e["info"]} for m, e in record["methods"].items()}})
    objects = [name for name, array in arrays.items() if array.dtype.hasobject]
    if objects:  # np.savez would pickle them
        raise ValueError(f"record arrays of Python objects: {', '.join(objects)}")
    arrays["meta"] = np.array(json.dumps({**meta, "records": plain}, default=_json_default))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_records(path) -> tuple:
    """``(meta, records)`` of a file written by :func:`save_records` (pickles refused);
    raises OSError, ValueError or KeyError on a file that is not one."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        records = []
        for k, plain in enumerate(meta.pop("records")):
            record = {key: v for key, v in plain.items() if key != "methods"}
            record.update({key: data[f"{k}/{key}"] for key in _ARRAYS
                           if f"{k}/{key}" in data.files})
            record["methods"] = {m: {"scores": data[f"{k}/scores/{m}"], "info": e["info"]}
                                 for m, e in plain["methods"].items()}
            for m, entry in record["methods"].items():
                if f"{k}/val_scores/{m}" in data.files:
                    entry["val_scores"] = data[f"{k}/val_scores/{m}"]
            records.append(record)
    return meta, records


def save_part(path, records, meta) -> None:
    """A shard part's records (:func:`save_records`)."""
    save_records(path, records, meta)


def load_part(path) -> tuple:
    """``(meta, records)`` of a ``shard_records.npz`` written by :func:`save_part`."""
    try:
        return load_records(path)
    except (OSError, ValueError, KeyError) as err:
        raise UserInputError(f"{path}: not a shard part's records ({err})") from None
