"""Where PITuning's ideas pay off (``pituning_payoff``): the individual stage on synthetic
worlds that differ in one of the paper's premises at a time, each world with its oracle.

A *knob* is one option of the synthetic generator (``pitune_tf.data.synthetic_config``)
that a premise of the paper is about: how far the users depart from the population at all
(``users_differ``; at ``none`` the individual users are drawn from the population itself,
so personalization cannot help), the share of users with long-tail preferences and how
strongly they prefer those intents (Sec. 3.3.1's unlearning targets them), the days of data
per user (Fig. 9), and how skewed the population, hence the shipped model, is toward popular
intents (the Zipf exponent). Each knob takes three values, the middle one the demo world.

For each knob value and seed: a population run of RUN's config on that world (the suite's
budget, seed ``RUN's seed + k``, the world drawn with that seed), then the individual stage
in three profiles: the paper's (``--preset paper``), our defaults, and our defaults with the
shipped guard (``shipped_guard``: a user keeps the shipped model unless validation shows the
tuned one better). Every row carries the oracle gap closed, ``(m - none) / (oracle - none)``
of the metrics pooled over users and seeds, and the paired difference against ``finetune``
of the same profile (95% bootstrap interval over users, each user of each seed one group):
unlearning pays off where ``pituning`` beats ``finetune``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.experiment_suite import Registry, mean_std, run_suite
from pitune_tf.common.plotting import value_panels
from pitune_tf.experiments.ledger import paired_effect
from pitune_tf.experiments.pituning_suite import METRICS, PITuningSuite, metric_row
from pitune_tf.individual.individual_config import PAPER_CHOICES as INDIVIDUAL_PAPER
from pitune_tf.metrics import difference_cell

registry = Registry("PITuning (Gong et al., KDD 2024): where its ideas pay off")

# knob -> ((label, the generator's options), ...): three worlds, the middle one the demo's
KNOBS = {
    "users_differ": (("none", {"user_pref_sigma": 0.0, "longtail_fraction": 0.0}), ("demo", {}),
                     ("twice", {"user_pref_sigma": 1.2, "longtail_fraction": 0.6})),
    "longtail_fraction": (("0.0", {"longtail_fraction": 0.0}), ("0.3", {}),
                          ("0.7", {"longtail_fraction": 0.7})),
    "longtail_boost": (("0.0", {"longtail_boost": 0.0}), ("2.0", {}), ("4.0", {"longtail_boost": 4.0})),
    "n_days": (("14", {"n_days": 14}), ("28", {}), ("56", {"n_days": 56})),
    "zipf_exponent": (("0.6", {"zipf_exponent": 0.6}), ("1.1", {}), ("1.6", {"zipf_exponent": 1.6})),
}
PROFILES = {"paper": INDIVIDUAL_PAPER, "default": {}, "default + guard": {"shipped_guard": True}}
PAYOFF_METHODS = ("none", "prior", "finetune", "pituning")
PROFILE_DEPENDENT = ("finetune", "pituning")  # the rest (none, prior, trivial, oracle) are the same in every profile
GAP_METRICS = ("prec_w", "prec_m", "rec_m")  # the targets: the oracle gap closed
PAIRED_METRICS = ("prec_w", "rec_m")  # against finetune, with intervals


def world_name(options: dict) -> str:
    """The folder name of a world: its options against the demo world's (``demo``)."""
    return "_".join(f"{k}={v}" for k, v in sorted(options.items())) or "demo"


def run_world(suite: PITuningSuite, options: dict, seed: int) -> dict:
    """``{profile: (summary, out)}`` of one world at ``seed``: its population run (RUN's
    config and the suite's budget on the world with ``options``), then the individual stage
    in each of :data:`PROFILES`, with predictions."""
    if suite.run.config.data:
        raise UserInputError("pituning_payoff draws its own worlds: RUN must be a run on the embedded "
                             "synthetic data (trainers.population without --data)")
    name = world_name(options)
    synthetic = {**suite.run.config.synthetic, **options}
    population = suite.population_run(f"payoff_{name}_seed{seed}", seed=seed, synthetic=synthetic)
    out = {}
    for profile, changes in PROFILES.items():
        key = f"payoff_{name}_{profile.replace(' + ', '_')}"
        summary = suite.individual(population, key, seed, PAYOFF_METHODS, users=0, predictions=True,
                                   **changes)
        out[profile] = (summary, suite.individual_dir(key, seed))
    return out


def knob_table(suite: PITuningSuite, knob: str) -> pd.DataFrame:
    """One row per (value, profile, method): the pooled metrics (mean and std over seeds),
    the oracle gap closed, and the paired difference against ``finetune``."""
    seeds = suite.seed_list()
    rows, paired = [], []
    for label, options in KNOBS[knob]:
        runs = {s: run_world(suite, options, s) for s in seeds}
        for profile in PROFILES:
            for s in seeds:
                summary = runs[s][profile][0]
                for method, result in summary.items():
                    if profile != "default" and method not in PROFILE_DEPENDENT:
                        continue  # the same in every profile: listed once
                    rows.append({"value": label, "profile": profile, "method": method, "seed": s,
                                 **metric_row(result)})
            pairs = [(s, runs[s][profile][1], runs[s][profile][1]) for s in seeds]
            for method in PAYOFF_METHODS:
                if method == "finetune" or (profile != "default" and method not in PROFILE_DEPENDENT):
                    continue
                effect = paired_effect(pairs, method, "finetune")
                paired.append({"value": label, "profile": profile, "method": method,
                               **{f"vs_finetune:{m}": difference_cell(effect[m]) for m in PAIRED_METRICS}})
    frame = pd.DataFrame(rows)
    table = mean_std(frame, ["value", "profile", "method"], METRICS)
    for metric in GAP_METRICS:  # (m - none) / (oracle - none), per world, pooled over seeds
        means = table.set_index(["value", "method"])[f"{metric}_mean"]
        none = table[table["profile"] == "default"].set_index(["value", "method"])[f"{metric}_mean"]
        gap = [(row[f"{metric}_mean"] - none[row["value"], "none"])
               / (none[row["value"], "oracle"] - none[row["value"], "none"])
               if (row["value"], "oracle") in means.index else np.nan for _, row in table.iterrows()]
        table[f"gap_closed:{metric}"] = np.round(gap, 4)
    table = table.merge(pd.DataFrame(paired), on=["value", "profile", "method"], how="left")
    table.insert(0, "knob", knob)
    return table


def plot_knob(frame, path, suite) -> None:
    """The oracle gap closed on Prec_w and Rec_m across the knob's values, one line per
    (profile, tuned method)."""
    values = list(dict.fromkeys(frame["value"].astype(str)))
    tuned = frame[frame["method"].isin(["prior", "finetune", "pituning"])]
    panels = {f"{metric}: share of the none -> oracle gap closed": {
        f"{method} ({profile})": part.set_index(part["value"].astype(str))[f"gap_closed:{metric}"].reindex(values)
        for (profile, method), part in tuned.groupby(["profile", "method"], sort=False)}
        for metric in ("prec_w", "rec_m")}
    value_panels(panels, values, path, xlabel=str(frame["knob"].iloc[0]))


PAYOFF_NOTE = (
    "Each value of the knob is a synthetic world of its own (the generator's option; the "
    "middle value is the demo world), with a population run at the suite's budget and the "
    "individual stage in three profiles: paper (--preset paper), default, and default + the "
    "shipped guard. gap_closed: (method - none) / (oracle - none), the metrics pooled over "
    "users, averaged over seeds; vs_finetune: the method minus finetune of the same profile, "
    "95% paired bootstrap interval over users (each user of each seed one group).")

for _knob in KNOBS:
    registry.register(f"pituning_payoff_{_knob}", f"PITuning's individual stage as {_knob} varies",
                      plot=plot_knob, note=PAYOFF_NOTE)(lambda suite, knob=_knob: knob_table(suite, knob))


def run_payoff(run_dir, out_dir, preset="demo", seeds=3, first_seed=None, workers=1, knobs=None) -> dict:
    """Runs the payoff study (one experiment per knob of ``knobs``, default all) on the
    population run ``run_dir`` into ``out_dir``; the other arguments as ``run_ledger``'s."""
    unknown = [k for k in knobs or () if k not in KNOBS]
    if unknown:
        raise UserInputError(f"unknown knob(s) {', '.join(unknown)}; choose from {', '.join(KNOBS)}")
    suite = PITuningSuite(run_dir, out_dir, preset=preset, seeds=seeds, first_seed=0, workers=workers)
    suite.first_seed = int(suite.run.config.seed) if first_seed is None else int(first_seed)
    only = [f"pituning_payoff_{k}" for k in knobs] if knobs else None
    return run_suite(registry, suite, out_dir, only=only)
