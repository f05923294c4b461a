"""The individual stage's two entry points: :func:`run_individual`, every user of an
individual log personalized from a population run, on the Keras or the LiteRT backend
(``pitune_tf.individual.backends``), in one or several processes (``user_pool``), resumable
(``resume``), with the results written to a directory (``outputs``); and :func:`merge_parts`,
the parts of a sharded run (``shards``) into the outputs of one run. When the log comes with
a user oracle (``oracle_scores``), every table gets its ``oracle`` row and every method its
``gap_closed`` (``summary``)."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from pitune_tf.common.atomic import write_text
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.output_set import output_set
from pitune_tf.common.run_lock import run_lock
from pitune_tf.individual.backends import build_engine
from pitune_tf.individual.comparison import compare_tables
from pitune_tf.individual.methods import KERAS, LITERT, PER_USER_TEACHER_METHODS, user_methods
from pitune_tf.individual.oracle_scores import load_oracle_scores
from pitune_tf.individual.outputs import COMPARISON, OUTPUTS, write_results
from pitune_tf.individual.resume import FINISHED_USERS, FinishedUsers, stage_fingerprint
from pitune_tf.individual.shards import RECORDS, load_part, save_part, shard_indices
from pitune_tf.individual.user_data import load_users
from pitune_tf.individual.user_pool import run_users
from pitune_tf.population import load_run

logger = logging.getLogger(__name__)


def run_individual(run_dir, config, out=None, data=None, mapping=None, n_users=0, workers=1,
                   backend=KERAS, model=None, litert_backend="auto", dump_predictions=False,
                   compare=None, progress=True, oracle=None, schema=None, shard=None) -> dict:
    """The whole individual stage; writes ``out`` (default ``RUN/individual``, or
    ``RUN/device`` on the LiteRT backend) and returns ``summary.json``'s content with the
    markdown tables under ``"table"`` (and ``"comparison"`` with ``compare``).

    ``oracle``: the user oracle's file; None looks beside the log (``<stem>_oracle.parquet``,
    e.g. ``RUN/data/individual_oracle.parquet``), False runs without one. ``data`` is read
    with the run's schema and mapping file; ``schema`` (a dict of fields, or a whole
    :class:`pitune_tf.data.schema.Schema`) and ``mapping`` override them (:func:`load_users`).

    ``shard``: ``(I, N)`` runs only shard I of N of the users and writes, besides the tables
    over its users, the records :func:`merge_parts` combines
    (partition and format in ``pitune_tf.individual.shards``)."""
    if workers < 1:
        raise UserInputError(f"--workers must be >= 1, got {workers}")
    if n_users < 0:
        raise UserInputError(f"--users must be >= 0, got {n_users}")
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / ("individual" if backend == KERAS else "device")
    if out.exists() and not out.is_dir():  # checked again under the lock; here before any work
        raise UserInputError(f"{out} is a file, not an output directory")
    run = load_run(run_dir)
    if not config.min_history:  # the run's
        config = dataclasses.replace(config, min_history=int(run.config.min_history))
    if backend == LITERT:
        model = Path(model) if model else None
    probe = build_engine(run, config, backend, model, litert_backend)
    unknown = [m for m in config.methods if m not in probe.methods]
    if unknown:
        raise UserInputError(f"method(s) {', '.join(unknown)} not available on the {backend} "
                             f"backend (it runs {', '.join(probe.methods)})")
    if backend == LITERT:
        config = dataclasses.replace(config, batch_size=probe.batch_size)
        probe.config = config
    all_users, stats, data_path = load_users(run, data, mapping, config, n_users, schema)
    indices = shard_indices(len(all_users), *shard) if shard else range(len(all_users))
    if shard and not indices:
        logger.warning("shard %d/%d has no user (%d users)", *shard, len(all_users))
    users = [all_users[i] for i in indices]
    methods = user_methods(config, len(all_users))  # fp / pp: the first users of the whole run
    tokens = list(run.vocabs.intent.tokens)
    oracle_path, oracle_scores = load_oracle_scores(users, data_path, oracle, tokens)
    with run_lock(out):  # one writer per output directory
        start = time.perf_counter()
        finished = FinishedUsers(out / FINISHED_USERS, stage_fingerprint(
            run_dir, config, data_path, backend, model, litert_backend, users, schema, mapping))
        results, _ = run_users(run_dir, config, users, workers, progress, backend, model,
                               litert_backend, engine=probe if workers <= 1 else None,
                               finished=finished, methods=[methods[i] for i in indices])
        elapsed = time.perf_counter() - start
        for r in results if oracle_scores else ():
            r.update(oracle_scores[r["user"]])
        header = {
            "run": str(run_dir), "data": str(data_path), "backend": backend,
            "oracle": None if oracle_path is None else str(oracle_path),
            **({"model": str(model)} if model is not None else {}),
            "config": dataclasses.asdict(config), "users": len(users), "n_users": n_users,
            "workers": workers,
            "seconds": elapsed, **({"shard": f"{shard[0]}/{shard[1]}"} if shard else {}),
        }
        rows = {}

        def device_rows():  # timed once the results are written
            rows["pituning"] = probe.backend.describe()
            for method in PER_USER_TEACHER_METHODS:
                if method in config.methods:
                    rows[method] = probe.teacher_methods.describe(partial=method == "pp")
            return rows

        with output_set(out, OUTPUTS) as new:  # the old outputs go as one set
            summary_json = write_results(new, results, header, device_rows, stats, tokens,
                                         run.p_pop, n_rare=config.n_rare,
                                         dump_predictions=dump_predictions)
            if shard:  # the records merge reads
                save_part(new / RECORDS, results, {
                    "index": shard[0], "count": shard[1], "n_users": len(all_users),
                    "indices": list(indices), "header": header, "device_rows": rows,
                    "stats": stats, "intent_tokens": tokens, "p_pop": run.p_pop,
                    "backend": backend, "config": header["config"],
                    "dump_predictions": bool(dump_predictions)})
            if compare:
                summary_json["comparison"] = compare_tables(new, compare, labels=(backend, "other"))
                write_text(new / COMPARISON, summary_json["comparison"])
        summary_json["out"] = str(out)
        return summary_json


# What the parts of one run share (anything else differing is an error).
_SAME = ("count", "n_users", "backend", "config", "intent_tokens", "p_pop", "stats")


def merge_parts(parts, out) -> dict:
    """Combines the output directories of ``trainers.individual --shard I/N`` (I = 0..N-1)
    into ``out``: ``per_user.csv``, ``summary.json``, ``results.md`` (and ``predictions.csv``
    when every part dumped its predictions) equal to one run's on all users; returns
    ``summary.json``'s content with the markdown tables under ``"table"``."""
    if not parts:
        raise UserInputError("merge needs the part directories (trainers.individual --shard I/N --out PART)")
    loaded = []
    for part in map(Path, parts):
        if not (part / RECORDS).is_file():
            raise UserInputError(f"{part} is not a shard part (no {RECORDS}; write one with "
                                 "trainers.individual --shard I/N --out DIR)")
        loaded.append((part, *load_part(part / RECORDS)))
    first = loaded[0][1]
    for part, meta, _ in loaded[1:]:
        differ = [key for key in _SAME if meta.get(key) != first.get(key)]
        if differ:
            raise UserInputError(f"{part} is not a shard of the same run as {loaded[0][0]} "
                                 f"(different {', '.join(differ)})")
    seen = {}
    for part, meta, _ in loaded:
        if meta["index"] in seen:
            raise UserInputError(f"{part} and {seen[meta['index']]} are both shard "
                                 f"{meta['index']}/{meta['count']}")
        seen[meta["index"]] = part
    missing = sorted(set(range(first["count"])) - set(seen))
    if missing:
        count = first["count"]
        raise UserInputError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: "
                             f"merge needs all {count} parts")
    numbered = sorted((i, r) for _, meta, records in loaded
                      for i, r in zip(meta["indices"], records))
    if [i for i, _ in numbered] != list(range(first["n_users"])):
        raise UserInputError("the parts do not hold every user exactly once")
    base = min(loaded, key=lambda item: item[1]["index"])[1]
    header = {**base["header"], "users": first["n_users"],
              "workers": sum(meta["header"]["workers"] for _, meta, _ in loaded),
              "seconds": sum(meta["header"]["seconds"] for _, meta, _ in loaded),
              "shards": first["count"], "parts": [str(part) for part, _, _ in loaded]}
    header.pop("shard", None)
    out = Path(out)
    with run_lock(out), output_set(out, OUTPUTS) as new:  # the old files go as one set
        return write_results(new, [r for _, r in numbered], header, base["device_rows"],
                             first["stats"], first["intent_tokens"], np.asarray(first["p_pop"]),
                             n_rare=first["config"]["n_rare"],
                             dump_predictions=all(m["dump_predictions"] for _, m, _ in loaded))
