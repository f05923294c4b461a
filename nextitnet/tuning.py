"""One tuning protocol for every mode of UAF's Table 2 (``python -m trainers.experiments
uaf_tuned``): the same search, on the validation split only, for each mode.

Per mode an Optuna study (TPE, the sampler seeded with the config's seed; stored in
``OUT/runs/tuning/<protocol>.db``, so an interrupted search resumes) runs ``trials`` trials
over the mode's own hyperparameters (:data:`SEARCH`: the fine-tuning learning rate and
patience, and its own knobs). Every trial fine-tunes from the protocol's one pretrained
backbone (the search is over fine-tuning; pretraining is shared, as in the paper's grid) and
is scored by its best validation MRR@5; the best trial's values then run on the test split.
Protocols: ``paper`` (``uaf_config.PAPER_CHOICES``) and ``default`` (the config). The trivial
baselines (MostPop, Random) come with every run. Each row records the trial count, the chosen
values and the search's wall time.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from nextitnet.experiments import UAFSuite, plot_rank_bars, rec_metrics
from nextitnet.modes import MODES, ORACLE, SCORE_MODES
from nextitnet.uaf_config import PAPER_CHOICES
from nextitnet.uaf_run import run_uaf
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.experiment_suite import Registry, TrivialCheck, mean_std, run_suite
from pitune_tf.common.search import search, suggest

_FIT = {"learning_rate": ("log", 1e-4, 1e-2), "patience": ("int", 1, 5)}
_GATES = {**_FIT, "temperature": ("log", 1.0, 100.0)}
SEARCH = {
    **{mode: _FIT for mode in MODES},
    "hard": _GATES,
    "soft": _GATES,
    "rl": {**_FIT, "gamma": ("log", 1.0, 30.0), "entropy_weight": ("float", 0.0, 1.0)},
    "peterrec": {**_FIT, "adapter_dim": ("int", 2, 32)},
}
DEFAULT_MODES = ("finetune-all", "finetune-last2", "peterrec", "hard", "soft", "rl")
PROTOCOLS = ("paper", "default")
registry = Registry("UAF (Chen et al., TKDE): every mode under one tuning protocol",
                    trivial=TrivialCheck("mode", SCORE_MODES, "mrr@5", exempt=(ORACLE,), within=("protocol",)))


def _config(suite, protocol, **changes):
    profile = dict(PAPER_CHOICES) if protocol == "paper" else {}
    return dataclasses.replace(suite.config, **{**profile, **changes})


def backbone(suite: UAFSuite, protocol) -> Path:
    """The protocol's pretrained backbone (its run directory; pretrained once)."""
    path = Path(suite.out_dir) / "runs" / "tuning" / protocol / "backbone"
    run_uaf(_config(suite, protocol), suite.data, path, ("finetune-all",), data_source=suite.data_source,
            verbose=suite.verbose)
    return path


def tune(suite: UAFSuite, mode, protocol, trials) -> dict:
    """The best values of ``trials`` trials for ``mode`` under ``protocol`` (resumed from the
    study's store), with the trial count, the best validation MRR@5, the wall time and the
    backbone the trials started from."""
    store = Path(suite.out_dir) / "runs" / "tuning"
    pretrained = backbone(suite, protocol)

    def objective(trial):
        path = store / protocol / mode / f"trial{trial.number}"
        result = run_uaf(_config(suite, protocol, **suggest(trial, SEARCH[mode])), suite.data, path, (mode,),
                         pretrained=pretrained, data_source=suite.data_source, verbose=suite.verbose)
        return float(max(result[mode]["val_curve"]))

    return {**search(store / f"{protocol}.db", mode, objective, trials, suite.config.seed),
            "pretrained": pretrained}


def tuned_table(suite: UAFSuite, modes=DEFAULT_MODES, trials=20) -> pd.DataFrame:
    """Every mode of ``modes`` tuned under both protocols, then run with its chosen values on
    each seed (mean ± std over seeds; one row per protocol and mode, the trivial baselines
    once per protocol)."""
    rows = []
    for protocol in PROTOCOLS:
        for mode in modes:
            found = tune(suite, mode, protocol, trials)
            for seed in suite.seed_list():
                path = Path(suite.out_dir) / "runs" / "tuning" / protocol / mode / f"chosen_seed{seed}"
                results = run_uaf(_config(suite, protocol, seed=seed, **found["values"]), suite.data, path,
                                  (mode,), pretrained=found["pretrained"] if seed == suite.config.seed else None,
                                  data_source=suite.data_source, verbose=suite.verbose)
                for name, result in results.items():
                    if name == mode or (name in (*SCORE_MODES, ORACLE) and mode == modes[0]):
                        rows.append({"protocol": protocol, "mode": name, "seed": seed, **result["test"],
                                     "trials": found["trials"] if name == mode else None,
                                     "validation_mrr@5": found["validation"] if name == mode else None,
                                     "chosen": json.dumps(found["values"], sort_keys=True) if name == mode else None,
                                     "tuning_seconds": round(found["seconds"], 1) if name == mode else None})
    frame = pd.DataFrame(rows)
    table = mean_std(frame, ["protocol", "mode"], rec_metrics(suite.config))
    extra = frame.groupby(["protocol", "mode"], sort=False, dropna=False)[
        ["trials", "validation_mrr@5", "chosen", "tuning_seconds"]].first().reset_index()
    return table.merge(extra, on=["protocol", "mode"], how="left")


def plot_tuned(frame, path, suite) -> None:
    """Table 2's bars, one per mode and protocol."""
    plot_rank_bars(frame.assign(model=frame["mode"] + " (" + frame["protocol"] + ")"), path, suite)


@registry.register("uaf_tuned", "UAF Table 2 under one tuning protocol (test, mean ± std over seeds)",
                   plot=plot_tuned,
                   note="Each mode: the same number of Optuna TPE trials (sampler seed fixed) over "
                        "its own fine-tuning hyperparameters (nextitnet/tuning.py SEARCH) from the "
                        "protocol's one pretrained backbone, scored by the best validation MRR@5; "
                        "the chosen values then run on each seed (the first from that backbone, "
                        "the others pretrain their own). paper: UAF's choices "
                        "(uaf_config.PAPER_CHOICES); default: ours.")
def uaf_tuned(suite: UAFSuite) -> pd.DataFrame:
    return tuned_table(suite, suite.modes, getattr(suite, "trials", 20))


def run_uaf_tuning(config, data, data_source, out_dir, seeds=3, modes=None, trials=20) -> dict:
    """Runs ``uaf_tuned`` into ``out_dir``."""
    unknown = [m for m in (modes or ()) if m not in SEARCH]
    if unknown:
        raise UserInputError(f"no search space for {', '.join(unknown)}; tunable modes: {', '.join(SEARCH)}")
    suite = UAFSuite(config, data, data_source, seeds=seeds, out_dir=Path(out_dir),
                     modes=tuple(modes or DEFAULT_MODES))
    suite.trials = int(trials)
    return run_suite(registry, suite, out_dir)
