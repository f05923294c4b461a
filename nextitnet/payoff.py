"""Where UAF's ideas pay off (``python -m trainers.experiments uaf_payoff``): every mode on
synthetic cross-domain worlds that differ in one of the paper's premises at a time, each
world with its oracle.

A *knob* is one option of the generator (:mod:`nextitnet.data.synthetic`) that a premise
of UAF is about: how related each user's target behaviour is to their source behaviour
(``related``: the share r of target items that follow the source tastes; at 0 the source
tells nothing, and pretraining cannot help), how much that relation varies across users
(``related_spread``: r_u uniform in [0.5 - s, 0.5 + s]; a per-user policy is for users who
differ), and the target data per user (``max_targets``, Table 5). Each knob takes three
values; the demo world is r = 1, s = 0, 5 targets (``related_spread``'s worlds all have
r = 0.5, so that the spread has room on both sides).

For each value and seed (``config.seed + k``, the world drawn with that seed): UAF's run in
the paper profile (``PAPER_CHOICES``) and in the default profile, each with
:data:`PAYOFF_MODES` (MostPop, Random and the oracle come with every run). Every row carries
the oracle gap closed, ``(m - MostPop) / (oracle - MostPop)`` of MRR@5 pooled over users and
averaged over seeds, and the paired difference against Finetune-All and against UAF-Random
(random gates) of the same profile (95% bootstrap interval over users, each user of each
seed one group): source pretraining pays off where Finetune-All beats Finetune-Zero, the
per-user policy where a policy mode beats random gates.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from nextitnet.data.synthetic import CrossDomainSyntheticConfig, generate_cross_domain
from nextitnet.experiments import UAFSuite
from nextitnet.ledger import CUTOFF, paired_effect
from nextitnet.modes import ORACLE, SCORE_MODES
from nextitnet.uaf_config import PAPER_CHOICES
from nextitnet.uaf_run import run_uaf
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.experiment_suite import Registry, TrivialCheck, mean_std, run_suite
from pitune_tf.common.plotting import value_panels
from pitune_tf.metrics import difference_cell

registry = Registry("UAF (Chen et al., TKDE): where its ideas pay off",
                    trivial=TrivialCheck("mode", SCORE_MODES, f"mrr@{CUTOFF}", exempt=(ORACLE,),
                                         within=("value",)))

# knob -> ((label, the generator's options), ...): three worlds each
KNOBS = {
    "related": (("0.0", {"p_target_related": 0.0}), ("0.5", {"p_target_related": 0.5}), ("1.0", {})),
    "related_spread": tuple((str(s), {"p_target_related": 0.5, "related_spread": s}) for s in (0.0, 0.25, 0.5)),
    "max_targets": (("2", {"max_targets": 2}), ("5", {}), ("10", {"max_targets": 10})),
}
PROFILES = {"paper": PAPER_CHOICES, "default": {}}
PAYOFF_MODES = ("finetune-zero", "finetune-all", "random", "hard", "soft", "rl")
REFERENCES = ("finetune-all", "random")  # each mode's paired difference against these
SHARED = (*SCORE_MODES, ORACLE)  # the same in both profiles: listed once


def world_name(options: dict) -> str:
    """The folder name of a world: its options that differ from the generator's defaults
    (``demo`` when none does), so that one world named two ways runs once."""
    defaults = dataclasses.asdict(CrossDomainSyntheticConfig())
    return "_".join(f"{k}={v}" for k, v in sorted(options.items()) if defaults.get(k) != v) or "demo"


def run_world(suite: UAFSuite, options: dict, seed: int, profile: str) -> tuple[Path, dict]:
    """The run directory and ``run_uaf`` results of one world at ``seed`` in ``profile`` (a
    world shared by two knobs, e.g. the demo world, runs once)."""
    name = world_name(options)
    setting = f"payoff_{name}_{profile}"
    path = suite.run_dir(setting, seed)
    if (setting, seed) not in suite._results:
        data = generate_cross_domain(suite.config.synthetic, seed=seed, **options)
        config = dataclasses.replace(suite.config, seed=seed, **PROFILES[profile])
        suite._results[setting, seed] = run_uaf(config, data, path, PAYOFF_MODES, verbose=suite.verbose,
                                                data_source=f"synthetic:{suite.config.synthetic}:{name}")
    return path, suite._results[setting, seed]


def knob_table(suite: UAFSuite, knob: str) -> pd.DataFrame:
    """One row per (value, profile, mode): the test metrics (mean and std over seeds), the
    oracle gap closed on MRR@5, and the paired MRR@5 / HR@5 differences against Finetune-All
    and UAF-Random."""
    seeds, metrics = suite.seed_list(), (f"mrr@{CUTOFF}", f"hr@{CUTOFF}")
    rows, paired = [], []
    for label, options in KNOBS[knob]:
        for profile in PROFILES:
            runs = {s: run_world(suite, options, s, profile) for s in seeds}
            for s, (_, results) in runs.items():
                rows += [{"value": label, "profile": "both" if mode in SHARED else profile, "mode": mode,
                          "seed": s, **result["test"]}
                         for mode, result in results.items() if profile == "default" or mode not in SHARED]
            pairs = [(s, path, path) for s, (path, _) in runs.items()]
            for mode in PAYOFF_MODES:
                row = {"value": label, "profile": profile, "mode": mode}
                for reference in REFERENCES:
                    if mode != reference:
                        effect = paired_effect(pairs, mode, reference)
                        row.update({f"vs_{reference}:{m}": difference_cell(effect[m]) for m in metrics})
                paired.append(row)
    table = mean_std(pd.DataFrame(rows), ["value", "profile", "mode"], list(metrics))
    shared = table[table["profile"] == "both"].set_index(["value", "mode"])[f"mrr@{CUTOFF}_mean"]

    def gap(row):  # NaN where a world has no oracle, or the oracle does not beat MostPop
        low, high = shared.get((row["value"], "mostpop")), shared.get((row["value"], ORACLE))
        if low is None or high is None or not high > low:
            return np.nan
        return (row[f"mrr@{CUTOFF}_mean"] - low) / (high - low)

    table[f"gap_closed:mrr@{CUTOFF}"] = np.round([gap(row) for _, row in table.iterrows()], 4)
    table = table.merge(pd.DataFrame(paired), on=["value", "profile", "mode"], how="left")
    table.insert(0, "knob", knob)
    return table


def plot_knob(frame, path, suite) -> None:
    """MRR@5's share of the MostPop -> oracle gap closed across the knob's values, one line
    per mode: left the paper profile, right the default profile."""
    values = list(dict.fromkeys(frame["value"].astype(str)))
    column = f"gap_closed:mrr@{CUTOFF}"
    panels = {f"{profile} profile: MRR@{CUTOFF}, share of MostPop -> oracle closed": {
        mode: part.set_index(part["value"].astype(str))[column].reindex(values)
        for mode, part in frame[frame["profile"] == profile].groupby("mode", sort=False)}
        for profile in PROFILES}
    value_panels(panels, values, path, xlabel=str(frame["knob"].iloc[0]))


PAYOFF_NOTE = (
    "Each value of the knob is a synthetic cross-domain world of its own (the generator's "
    "option), drawn with each seed, with UAF's run in the paper profile and the default "
    "profile (MostPop, Random and the oracle: profile both). gap_closed: (mode - MostPop) / "
    "(oracle - MostPop) of MRR@5 over the test rows (sampled protocol), averaged over seeds; "
    "vs_finetune-all, vs_random: the mode minus Finetune-All / UAF-Random of the same profile, "
    "95% paired bootstrap interval over users (each user of each seed one group).")

for _knob in KNOBS:
    registry.register(f"uaf_payoff_{_knob}", f"UAF's modes as {_knob} varies",
                      plot=plot_knob, note=PAYOFF_NOTE)(lambda suite, knob=_knob: knob_table(suite, knob))


def run_uaf_payoff(config, out_dir, seeds=3, knobs=None) -> dict:
    """Runs the payoff study (one experiment per knob of ``knobs``, default all) on worlds of
    ``config.synthetic`` into ``out_dir``."""
    unknown = [k for k in knobs or () if k not in KNOBS]
    if unknown:
        raise UserInputError(f"unknown knob(s) {', '.join(unknown)}; choose from {', '.join(KNOBS)}")
    suite = UAFSuite(config, None, f"synthetic:{config.synthetic}", seeds=seeds, out_dir=Path(out_dir))
    return run_suite(registry, suite, out_dir, only=[f"uaf_payoff_{k}" for k in knobs] if knobs else None)
