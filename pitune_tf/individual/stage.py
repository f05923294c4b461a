"""The individual stage as one function: every user of an individual log personalized from a
population run, on the Keras or the LiteRT backend, in one or several processes, with the
results written to a directory (``per_user.csv``, ``summary.json``, ``results.md``,
``gains.png``, optionally ``predictions.csv`` and ``compare.md``), which replace an earlier
run's as one set (``OUTPUTS``, :func:`pitune_tf.common.output_set.output_set`). When the log
comes with a user oracle (``pitune_tf.data.intent_oracle``), every table gets its ``oracle``
row and every method its ``gap_closed`` (``pitune_tf.individual.report``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from pitune_tf.common.atomic import atomic_path, write_json, write_text
from pitune_tf.common.console import is_quiet, progress_bars, set_quiet
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.fault import fault_point
from pitune_tf.common.output_set import output_set
from pitune_tf.common.run_lock import run_lock
from pitune_tf.individual.shards import RECORDS, load_part, load_records, save_records

logger = logging.getLogger(__name__)

BACKENDS = ("keras", "litert")
# The methods each backend runs when none are asked for (litert: what the phone runs).
DEFAULT_METHODS = {"litert": ("most_frequent", "last_event_intent", "none", "finetune", "pituning")}

_ENGINE = None  # the worker process's PersonalizationEngine
FINISHED_USERS = ".users"  # inside the output directory while unfinished: one file per user done
# What the stage writes in its output directory, replaced as one set (the user records too:
# the finished stage has none); any other file there is kept.
OUTPUTS = ("per_user.csv", "summary.json", "results.md", "gains.png", "predictions.csv",
           "compare.md", RECORDS, FINISHED_USERS)


def set_single_thread():
    """One TF thread per process (workers run side by side; results independent of threads)."""
    from pitune_tf.common.keras import tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime is already up (an embedding process, the tests)
        logger.debug("TensorFlow already initialized; thread counts unchanged")


def build_engine(run, config, backend="keras", model=None, litert_backend="auto"):
    """The personalization engine of ``run`` on ``backend``.

    Args:
        run: the population run (``load_run``).
        config: IndividualConfig.
        backend: str. ``"keras"`` (the student in Keras; the teacher-based baselines too) or
            ``"litert"`` (the ``model`` file's signatures only).
        model: str or Path. The ``student.tflite`` for ``backend="litert"``.
        litert_backend: str. The interpreter (``pitune_tf.litert.runtime.Runtime``'s ``backend``).
    """
    from pitune_tf.common.keras import keras
    from pitune_tf.individual.engine import PersonalizationEngine

    n_intents = int(run.vocabs.n_intents)
    if backend == "keras":
        from pitune_tf.individual.keras_backend import KerasBackend
        from pitune_tf.individual.teacher_methods import TeacherMethods

        keras.utils.set_random_seed(config.seed)
        student = KerasBackend(run.student, n_intents, learning_rate=config.learning_rate,
                               unlearn_learning_rate=config.unlearn_learning_rate,
                               lam=config.lam, min_log_prob=config.min_log_prob,
                               focal_gamma=config.focal_gamma, train_part=config.train_part)
        teacher_methods = TeacherMethods(run, config)
        from pitune_tf.individual.mpda import MPDA
        from pitune_tf.individual.table2 import table2_methods

        mpda = MPDA(run, neighbours=config.mpda_neighbours, ratio=config.mpda_ratio)
        engine = PersonalizationEngine(student, run, config,
                                       extra_methods={**teacher_methods.as_dict(), "mpda": mpda,
                                                      **table2_methods(run, config)})
        engine.teacher_methods = teacher_methods  # Table 3's FP / PP rows
        return engine
    if backend == "litert":
        from pitune_tf.individual.litert_backend import LiteRTBackend
        from pitune_tf.litert.runtime import Runtime

        if model is None:
            raise UserInputError("--backend litert needs --model (a student.tflite)")
        runtime = Runtime(model, backend=litert_backend)
        if runtime.history != int(run.config.history):
            raise UserInputError(f"the model's window length is {runtime.history}, the run's "
                                 f"{run.config.history}: was it converted from this run?")
        student = LiteRTBackend(runtime, n_intents, learning_rate=config.learning_rate,
                                unlearn_learning_rate=config.unlearn_learning_rate,
                                lam=config.lam, train_part=config.train_part)
        return PersonalizationEngine(student, run, config, batch_size=runtime.batch_size)
    raise UserInputError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def _init_worker(run_dir, config, backend, model, litert_backend):
    global _ENGINE
    set_single_thread()
    set_quiet(is_quiet())  # the command's --quiet (PITUNE_QUIET, inherited) for its loggers
    from pitune_tf.population import load_run

    _ENGINE = build_engine(load_run(run_dir), config, backend, model, litert_backend)


def _work(user, methods):
    return _ENGINE.run_user(user, methods)


def user_methods(config, n_users):
    """Per user, the methods it runs: the per-user teacher methods (FP / PP) on the first
    ``config.fp_users`` users only."""
    from pitune_tf.individual.teacher_methods import PER_USER_TEACHER_METHODS

    return [[m for m in config.methods if m not in PER_USER_TEACHER_METHODS or i < config.fp_users]
            for i in range(n_users)]


class FinishedUsers:
    """The per-user records of an unfinished individual stage, one ``<i>.npz`` per user in
    ``directory`` (written atomically as each user finishes; plain arrays and JSON,
    :func:`pitune_tf.individual.shards.save_records`), so a rerun after an interruption
    (``kill -9`` included) personalizes only the users not done yet. ``key.json`` holds the
    run's fingerprint (config, run files, data, backend, users): records of another
    fingerprint are discarded. Each user's result depends only on the user and the seed
    (``engine.user_seed``), so the resumed stage equals an uninterrupted one. The pickle
    records of older versions (``<i>.pkl``) are never loaded (a pickle can run code): their
    users are personalized again.

    Args:
        directory: Path or None (None: nothing kept).
        fingerprint: dict. What the records were computed from (JSON-serializable).
    """

    def __init__(self, directory, fingerprint):
        self.directory = None if directory is None else Path(directory)
        if self.directory is None:
            return
        key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode())
        self.key = key.hexdigest()
        key_file = self.directory / "key.json"
        try:
            kept = json.loads(key_file.read_text()).get("key") if key_file.is_file() else None
        except (OSError, ValueError, AttributeError):  # a damaged key: the records are not trusted
            kept = None
        if self.directory.is_dir() and kept != self.key:
            shutil.rmtree(self.directory)  # records of another configuration
        pickles = sorted(self.directory.glob("*.pkl")) if self.directory.is_dir() else []
        if pickles:
            logger.warning("%s: %d user record(s) of an older version (%s) not loaded: a "
                           "pickle can run code; those users are personalized again",
                           self.directory, len(pickles), pickles[0].name)
        if not key_file.is_file():
            write_json(key_file, {"key": self.key})

    def _path(self, index) -> Path:
        return self.directory / f"{index}.npz"

    def load(self, index):
        """The record of user ``index``, or None when not done (or unreadable)."""
        if self.directory is None or not self._path(index).is_file():
            return None
        try:
            return load_records(self._path(index))[1][0]
        except Exception:  # noqa: BLE001  (a damaged record is recomputed)
            return None

    def save(self, index, record) -> None:
        if self.directory is not None:
            save_records(self._path(index), [record], {})


def run_users(run_dir, config, users, workers=1, progress=True, backend="keras", model=None,
              litert_backend="auto", engine=None, finished=None, methods=None):
    """Runs ``config.methods`` on every user; returns the per-user records of
    ``PersonalizationEngine.run_user`` in the order of ``users``. Serial (``workers <= 1``,
    in this process) and parallel runs give the same results.

    ``finished``: a :class:`FinishedUsers` (or None): users it holds are not run again, and
    each new record is saved to it as soon as it is known. ``methods``: per user, the methods
    it runs (default :func:`user_methods`).

    Returns ``(results, engine)``; ``engine`` is the in-process engine (None with workers).
    """
    finished = finished or FinishedUsers(None, {})
    tasks = list(zip(users, methods or user_methods(config, len(users))))
    results = [finished.load(i) for i in range(len(tasks))]
    todo = [i for i, r in enumerate(results) if r is None]
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc="users", unit="user",
               disable=not progress_bars(not progress))

    def keep(i, record):
        results[i] = record
        finished.save(i, record)
        bar.update(1)
        fault_point(f"user:{len(tasks) - sum(r is None for r in results)}")

    if workers <= 1 or not todo:
        set_single_thread()
        if engine is None and todo:
            from pitune_tf.population import load_run

            engine = build_engine(load_run(run_dir), config, backend, model, litert_backend)
        for i in todo:
            keep(i, engine.run_user(*tasks[i]))
    else:
        engine = None
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                 initializer=_init_worker,
                                 initargs=(str(run_dir), config, backend,
                                           None if model is None else str(model),
                                           litert_backend)) as pool:
            futures = {pool.submit(_work, *tasks[i]): i for i in todo}
            for future in as_completed(futures):
                keep(futures[future], future.result())
    bar.close()
    return results, engine


def stage_fingerprint(run_dir, config, data_path, backend, model, litert_backend, users) -> dict:
    """What the per-user records depend on: the run's files (by size and modification
    time), the config, the data, the backend and the users, in order."""
    def stamp(path):
        stat = Path(path).stat()
        return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]

    run_files = [stamp(Path(run_dir) / name)
                 for name in ("config.json", "vocab.json", "student.keras", "p_out.json")]
    return {"run": run_files, "config": dataclasses.asdict(config), "data": stamp(data_path),
            "backend": backend, "litert_backend": litert_backend,
            "model": None if model is None else stamp(model), "users": [u.user for u in users]}


def load_users(run, data=None, mapping=None, config=None, n_users=0, schema=None):
    """The individual users' :class:`UserData` and the skip statistics.

    ``data`` (a log) is read with the run's schema and mapping file (``config.json``,
    ``data_schema`` and ``mapping``): ``schema`` overrides fields of the former (a dict, as
    :meth:`~pitune_tf.population.run_directory.Run.log_schema` takes it, or a whole
    :class:`pitune_tf.data.schema.Schema`), ``mapping`` replaces the latter. Without
    ``data``, the run's own ``data/individual.parquet`` (canonical already) is read."""
    from pitune_tf.data import read_events
    from pitune_tf.data.schema import ReadStats
    from pitune_tf.individual.user_data import prepare_users

    data_path = Path(data) if data else run.individual_data_path
    if data_path is None:
        raise UserInputError(f"run directory {run.run_dir} is missing data/individual.parquet; "
                             "pass --data")
    stats = ReadStats()
    if data:
        df = read_events(data_path, mapping=mapping or run.mapping,
                         schema=run.log_schema(schema), stats=stats)
    else:
        df = read_events(data_path, mapping=mapping, stats=stats)
    stats.warn(data_path)
    users, stats = prepare_users(df, run.vocabs, history=run.config.history,
                                 slot_minutes=run.config.slot_minutes, fractions=config.fractions,
                                 days=config.split_days, train_days=config.train_days,
                                 min_history=config.min_history)
    if config.holdout == "validation":  # the test windows are never read
        from pitune_tf.individual.user_data import validation_holdout

        users = [u for u in map(validation_holdout, users) if u is not None]
    if n_users:
        users = users[:n_users]
    if not users:
        raise UserInputError(f"no user of {data_path} has both training and test windows ({stats})")
    return users, stats, data_path


def load_oracle_scores(users, data_path, oracle, intent_tokens):
    """``(path, {user: {"oracle_scores": probabilities [n_test, n_intents] on its test
    windows, and "oracle_context_scores" when an ``_oracle_context`` file is beside the
    log}})``, or ``(None, None)`` without an oracle.

    Args:
        users: list of UserData.
        data_path: the individual log (its oracle is looked for beside it).
        oracle: None (the oracle file beside ``data_path``, if any), False (none), or the
            path of an oracle file.
        intent_tokens: the run's intent names, by id.
    """
    from pitune_tf.data.intent_oracle import IntentOracle, find_oracle

    if oracle is False:
        return None, None
    path = find_oracle(data_path) if oracle is None else Path(oracle)
    if path is None:
        return None, None
    files = {"oracle_scores": path}
    context = find_oracle(data_path, kind="context") if oracle is None else None
    if context is not None:  # the upper bound that knows each event's own context
        files["oracle_context_scores"] = context
    scores = {u.user: {} for u in users}
    for key, file in files.items():
        table = IntentOracle.read(file)
        for u in users:
            scores[u.user][key] = table.scores(u.user, u.test.timestamp, intent_tokens)
    return path, scores


def write_results(out, results, header, device_rows, stats, intent_tokens, p_pop, n_rare=3,
                  dump_predictions=False) -> dict:
    """Writes the individual stage's files of ``results`` (per-user records in run order) to
    ``out``: ``per_user.csv``, the plots, ``predictions.csv`` (with ``dump_predictions``),
    ``summary.json`` and ``results.md``; returns ``summary.json``'s content with the markdown
    tables under ``"table"``. One run and the merge of its shards both write through here,
    into the new folder of :func:`pitune_tf.common.output_set.output_set` (``OUTPUTS``).

    Args:
        out: Path. The output directory.
        results: list of ``PersonalizationEngine.run_user`` records.
        header: dict. ``summary.json``'s leading keys (run, data, backend, config, users, ...).
        device_rows: dict, or a function returning it (called once the results are
            written: it times the models). Table 3's model rows by method (the backends'
            ``describe()``; LightGBM's and the Table 2 baselines' come from the records:
            ``report.recorded_device_rows``).
        stats: dict. ``prepare_users``' skip statistics.
        intent_tokens: list of str. The run's intent names, by id.
        p_pop: float [n_intents]. The population's intent shares.
        n_rare: int. How many of the population's rarest intents get their recall.
    """
    from pitune_tf.common.plotting import markdown_images
    from pitune_tf.individual.evaluation import predictions_frame
    from pitune_tf.individual.plots import write_individual_plots
    from pitune_tf.individual.report import (
        METHOD_ORDER,
        device_models,
        markdown_tables,
        method_scores,
        recorded_device_rows,
        summarize,
    )

    summary, per_user = summarize(results, intent_tokens, p_pop, n_rare)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "per_user.csv") as tmp:
        per_user.to_csv(tmp, index=False)
    plots = write_individual_plots(out, per_user, summary) if results else []  # failing: a warning
    if dump_predictions and results:
        frames = [predictions_frame(np.full(r["n_test"], r["user"]), r["timestamp"], r["y_true"],
                                    scores, intent_tokens, method=method)
                  for r in results for method, scores in method_scores(r).items()]
        with atomic_path(out / "predictions.csv") as tmp:
            pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
    summary_json = {
        **header,
        "skipped": {k: v for k, v in stats.items() if k != "skipped_users"},
        "skipped_users": stats["skipped_users"],
        "rare_intents": next(iter(summary.values()))["rare"] if summary else {},
        "methods": summary, "device_models": {},
        "forget_sets": {r["user"]: [intent_tokens[i] for i in r["forget"]] for r in results},
    }
    rows = {**(device_rows() if callable(device_rows) else device_rows), **recorded_device_rows(results)}
    rows = {m: rows[m] for m in METHOD_ORDER if m in rows}  # Table 3's row order
    device = device_models(rows, results, p_pop)
    summary_json["device_models"] = device
    write_json(out / "summary.json", summary_json)
    table = markdown_tables(summary, device, stats, None)
    figures = markdown_images(plots, out)
    write_text(out / "results.md", table + "".join(f"\n{line}\n" for line in figures))
    summary_json["table"] = table
    return summary_json


def run_individual(run_dir, config, out=None, data=None, mapping=None, n_users=0, workers=1,
                   backend="keras", model=None, litert_backend="auto", dump_predictions=False,
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
    from pitune_tf.individual.shards import save_part, shard_indices
    from pitune_tf.individual.teacher_methods import PER_USER_TEACHER_METHODS
    from pitune_tf.population import load_run

    if workers < 1:
        raise UserInputError(f"--workers must be >= 1, got {workers}")
    if n_users < 0:
        raise UserInputError(f"--users must be >= 0, got {n_users}")
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / ("individual" if backend == "keras" else "device")
    if out.exists() and not out.is_dir():  # checked again under the lock; here before any work
        raise UserInputError(f"{out} is a file, not an output directory")
    run = load_run(run_dir)
    if not config.min_history:  # the run's
        config = dataclasses.replace(config, min_history=int(run.config.min_history))
    if backend == "litert":
        model = Path(model) if model else None
    probe = build_engine(run, config, backend, model, litert_backend)
    unknown = [m for m in config.methods if m not in probe.methods]
    if unknown:
        raise UserInputError(f"method(s) {', '.join(unknown)} not available on the {backend} "
                             f"backend (it runs {', '.join(probe.methods)})")
    if backend == "litert":
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
            run_dir, config, data_path, backend, model, litert_backend, users))
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
                from pitune_tf.individual.report import compare_tables

                summary_json["comparison"] = compare_tables(new, compare, labels=(backend, "other"))
                write_text(new / "compare.md", summary_json["comparison"])
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
