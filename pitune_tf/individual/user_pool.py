"""Running the individual stage's methods on many users: in this process, or split among
worker processes (``--workers``), each holding one engine for its life; serial and parallel
runs give the same records."""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed

from tqdm.auto import tqdm

from pitune_tf.common.console import is_quiet, progress_bars, set_quiet
from pitune_tf.common.fault import fault_point
from pitune_tf.common.keras import tf
from pitune_tf.individual.backends import build_engine
from pitune_tf.individual.methods import KERAS, user_methods
from pitune_tf.individual.resume import FinishedUsers
from pitune_tf.population import load_run

logger = logging.getLogger(__name__)

_ENGINE = None  # the worker process's PersonalizationEngine


def set_single_thread():
    """One TF thread per process (workers run side by side; results independent of threads)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime is already up (an embedding process, the tests)
        logger.debug("TensorFlow already initialized; thread counts unchanged")


def _init_worker(run_dir, config, backend, model, litert_backend):
    global _ENGINE
    set_single_thread()
    set_quiet(is_quiet())  # the command's --quiet (PITUNE_QUIET, inherited) for its loggers
    _ENGINE = build_engine(load_run(run_dir), config, backend, model, litert_backend)


def _work(user, methods):
    return _ENGINE.run_user(user, methods)


def run_users(run_dir, config, users, workers=1, progress=True, backend=KERAS, model=None,
              litert_backend="auto", engine=None, finished=None, methods=None):
    """Runs ``config.methods`` on every user; returns the per-user records of
    ``PersonalizationEngine.run_user`` in the order of ``users``. Serial (``workers <= 1``,
    in this process) and parallel runs give the same results.

    ``finished``: a :class:`~pitune_tf.individual.resume.FinishedUsers` (or None): users it
    holds are not run again, and each new record is saved to it as soon as it is known.
    ``methods``: per user, the methods it runs (default
    :func:`pitune_tf.individual.methods.user_methods`).

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
