"""One hyperparameter search of the equal-budget tuning protocol (``pituning_tuned``,
``uaf_tuned``): an Optuna study with a seeded TPE sampler, stored in SQLite so that an
interrupted search resumes, run up to a number of finished trials."""

from __future__ import annotations

import time
from pathlib import Path

import optuna


def suggest(trial, space: dict) -> dict:
    """One trial's values of ``space`` (``{key: ("log" | "float" | "int", low, high)}``)."""
    values = {}
    for key, (kind, low, high) in space.items():
        values[key] = (trial.suggest_int(key, int(low), int(high)) if kind == "int" else
                       trial.suggest_float(key, low, high, log=kind == "log"))
    return values


def search(store, study_name, objective, trials, seed) -> dict:
    """Runs ``objective(trial) -> float`` (maximized) until the study named ``study_name`` in
    the SQLite file ``store`` has ``trials`` finished trials.

    Returns:
        ``{"values": the best trial's values, "trials": completed trials, "validation": the
        best value, "seconds": this call's wall time}``.
    """
    Path(store).parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, direction="maximize", load_if_exists=True,
                                storage=f"sqlite:///{store}",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    start = time.perf_counter()
    remaining = trials - len([t for t in study.trials if t.state.is_finished()])
    if remaining > 0:
        study.optimize(objective, n_trials=remaining)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {"values": study.best_params, "trials": len(finished), "validation": float(study.best_value),
            "seconds": time.perf_counter() - start}
