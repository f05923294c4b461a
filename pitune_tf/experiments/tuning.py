"""One tuning protocol for every method of PITuning's individual-level comparison
(``python -m trainers.experiments pituning_tuned``): the same search, on validation windows
only, for each method.

Per method an Optuna study (TPE, the sampler seeded with the suite's first seed; stored in
``OUT/runs/tuning/<protocol>.db``, so an interrupted search resumes) runs ``trials`` trials over
the method's own hyperparameters (:data:`SEARCH`: the learning rate and the patience of its
fine-tuning, and its own knobs). A trial is an individual-stage run with ``holdout=
"validation"`` on the suite's users: the test windows are never read, the validation windows
are scored as the test set and the newest training windows stand in for validation. The
objective is the pooled Prec_w of those windows. The best trial's values then run once on the
test windows. Both protocols are offered:

- ``paper``: the individual stage's paper preset, no post-hoc option for any method;
- ``default``: our defaults, and the post-hoc options (the prior shift after tuning, the refit)
  searched as two more choices for every method that takes them (:data:`POST_HOC_METHODS`).

Each row records the trial count, the chosen values and the tuning's wall time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.experiment_suite import Registry, TrivialCheck, mean_std, run_suite
from pitune_tf.common.search import search
from pitune_tf.common.search import suggest as search_values
from pitune_tf.experiments.pituning_suite import METRICS, PITuningSuite, metric_row
from pitune_tf.individual.individual_config import PAPER_CHOICES
from pitune_tf.individual.methods import ORACLES, TRIVIAL_METHODS, check_methods

# method -> {IndividualConfig key: ("log" | "float" | "int", low, high)}
_FIT = {"learning_rate": ("log", 1e-4, 1e-2), "patience": ("int", 1, 5)}
SEARCH = {
    "prior": {"prior_pseudo_count": ("log", 1.0, 100.0)},
    "finetune": _FIT,
    "focal": {**_FIT, "focal_gamma": ("float", 0.5, 5.0)},
    "oversample": {**_FIT, "oversample_ratio": ("float", 0.1, 1.0)},
    "mpda": {**_FIT, "mpda_neighbours": ("int", 1, 10), "mpda_ratio": ("float", 0.25, 2.0)},
    "pituning": {**_FIT, "unlearn_learning_rate": ("log", 1e-4, 1e-2), "lam": ("float", 0.1, 2.0),
                 "unlearn_steps": ("int", 1, 20)},
    # the Table 2 baselines: the same per-user fine-tuning knobs and their own (each trial
    # pretrains again: a knob may change the network)
    "lsat": {**_FIT, "lora_rank": ("int", 1, 16), "lora_alpha": ("log", 1.0, 32.0),
             "lsat_short_share": ("float", 0.1, 0.6)},
    "eodrec": {**_FIT, "eodrec_codebooks": ("int", 2, 8), "eodrec_codebook_size": ("int", 4, 64)},
    "metabert4rec": {**_FIT, "meta_inner_learning_rate": ("log", 1e-3, 0.3),
                     "meta_step_size": ("float", 0.1, 1.0), "meta_inner_steps": ("int", 1, 8)},
    "clover": {**_FIT, "meta_inner_learning_rate": ("log", 1e-3, 0.3), "meta_step_size": ("float", 0.1, 1.0),
               "meta_inner_steps": ("int", 1, 8), "clover_adversary_weight": ("float", 0.05, 2.0)},
    "tallrec": {**_FIT, "lora_rank": ("int", 1, 16), "lora_alpha": ("log", 1.0, 32.0)},
    "p5": _FIT,
    "instructrec": _FIT,
}
DEFAULT_METHODS = ("prior", "finetune", "focal", "oversample", "mpda", "pituning")  # the tuned
#   table's rows unless --methods names others (the baselines add a pretraining per trial)
POST_HOC = ("prior_after_tuning", "refit")
POST_HOC_METHODS = check_methods("finetune", "focal", "oversample", "mpda", "pituning")
PROTOCOLS = ("paper", "default")
OBJECTIVE = "prec_w"  # pooled over the users' validation windows
registry = Registry("PITuning (Gong et al., KDD 2024): every method under one tuning protocol",
                    trivial=TrivialCheck("method", TRIVIAL_METHODS, "prec_w", exempt=ORACLES,
                                         within=("protocol",)))


def suggest(trial, method, protocol) -> dict:
    """One trial's config changes for ``method``: its :data:`SEARCH` space and, in the
    ``default`` protocol, the post-hoc options it takes."""
    values = search_values(trial, SEARCH[method])
    if protocol == "default" and method in POST_HOC_METHODS:
        values.update({key: trial.suggest_categorical(key, [True, False]) for key in POST_HOC})
    return values


def profile(protocol) -> dict:
    """The individual stage's settings a protocol starts from."""
    return dict(PAPER_CHOICES) if protocol == "paper" else {}


def tune(suite: PITuningSuite, method, protocol, trials) -> dict:
    """The best values of ``trials`` trials for ``method`` under ``protocol`` (resumed from
    the study's store), with the trial count and the search's wall time."""

    def objective(trial):
        changes = {**profile(protocol), **suggest(trial, method, protocol), "holdout": "validation"}
        summary = suite.individual(suite.run_dir, f"tuning/{protocol}/{method}/trial{trial.number}",
                                   suite.first_seed, (method,), users=suite.settings.get("table_users"),
                                   **changes)
        return float(summary[method]["pooled"][OBJECTIVE])

    return search(Path(suite.out_dir) / "runs" / "tuning" / f"{protocol}.db", method, objective,
                  trials, suite.first_seed)


def tuned_table(suite: PITuningSuite, methods=DEFAULT_METHODS, trials=None) -> pd.DataFrame:
    """Every method of ``methods`` tuned under both protocols (on the first seed), then run on
    the test windows with its chosen values on every seed of the suite: mean ± std over seeds,
    one row per protocol and method, the trivial baselines and the oracle once per protocol."""
    trials = int(trials or suite.settings.get("tuning_trials", 20))
    rows, found = [], {}
    for protocol in PROTOCOLS:
        for method in methods:
            found[protocol, method] = tune(suite, method, protocol, trials)
            changes = {**profile(protocol), **found[protocol, method]["values"]}
            for seed in suite.seed_list():
                summary = suite.individual(suite.run_dir, f"tuning/{protocol}/{method}/chosen", seed,
                                           (method,), users=suite.settings.get("table_users"), **changes)
                rows += [{"protocol": protocol, "method": name, "seed": seed, **metric_row(result)}
                         for name, result in summary.items()
                         if name == method or (name in (*TRIVIAL_METHODS, *ORACLES) and method == methods[0])]
    table = mean_std(pd.DataFrame(rows), ["protocol", "method"], METRICS)
    searched = pd.DataFrame([{"protocol": protocol, "method": method, "trials": f["trials"],
                              f"validation_{OBJECTIVE}": f["validation"],
                              "chosen": json.dumps(f["values"], sort_keys=True),
                              "tuning_seconds": round(f["seconds"], 1)}
                             for (protocol, method), f in found.items()])
    table = table.merge(searched, on=["protocol", "method"], how="left")  # baselines: no search
    return table


@registry.register("pituning_tuned", "PITuning: every individual method under one tuning protocol",
                   note="Each method: the same number of Optuna TPE trials (sampler seed fixed) "
                        "over its own hyperparameters (pitune_tf/experiments/tuning.py SEARCH), "
                        "each trial an individual-stage run with holdout=validation (the test "
                        "windows never read), objective the pooled validation Prec_w, on the first "
                        "seed; then the chosen values on the test windows of every seed (mean ± std). paper: the individual "
                        "stage's paper preset, no post-hoc option for any method; default: our "
                        "defaults with the prior shift after tuning and the refit searched for "
                        "every method that takes them. chosen: the values; tuning_seconds: the "
                        "search's wall time.")
def pituning_tuned(suite: PITuningSuite) -> pd.DataFrame:
    return tuned_table(suite, suite.settings.get("tuning_methods", DEFAULT_METHODS))


def run_tuning(run_dir, out_dir, preset="demo", trials=None, methods=None, seeds=3, first_seed=None,
               workers=1) -> dict:
    """Runs ``pituning_tuned`` on the population run ``run_dir`` into ``out_dir`` (tuned on the
    first seed, the chosen values run on ``seeds`` seeds)."""
    suite = PITuningSuite(run_dir, out_dir, preset=preset, seeds=seeds, first_seed=0, workers=workers)
    suite.first_seed = int(suite.run.config.seed) if first_seed is None else int(first_seed)
    if trials is not None:
        suite.settings = {**suite.settings, "tuning_trials": int(trials)}
    if methods:
        unknown = [m for m in methods if m not in SEARCH]
        if unknown:
            raise UserInputError(f"no search space for {', '.join(unknown)}; tunable methods: "
                                 f"{', '.join(SEARCH)}")
        suite.settings = {**suite.settings, "tuning_methods": tuple(methods)}
    return run_suite(registry, suite, out_dir)
