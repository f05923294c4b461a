"""PITuning's ledger of deviations (``pituning_ledger``, ``pituning_profiles``): each of our
departures from the paper measured on its own, in both directions, on several seeds.

A *switch* is one departure: the config keys where a stage's paper choices
(``population_config.PAPER_CHOICES``, ``individual_config.PAPER_CHOICES``) differ from the
defaults of the run (:func:`switches`; the two population learning rates are one switch).
The list is derived from the configs, never written by hand, so a new deviation shows up
in the ledger by itself. For each seed k (population and individual seed ``RUN's seed + k``):

- the **paper profile**: a population run of RUN's config with the paper's choices, then the
  individual stage's ``--preset paper``; the **default profile**: RUN's config (RUN itself
  for the first seed) and the individual stage's defaults;
- **from the paper, one switch on**: a population switch is a population run of the paper
  profile with that switch at our value; an individual switch is the individual stage's
  paper preset with that switch at our value, on the paper profile's population run;
- **from the defaults, one switch off**: the same from the default profile, the switch at
  the paper's value.

What is compared: a population switch changes the shipped student, so its effect is the
student's (method ``none``) on the individual users' test windows; an individual switch
changes the per-user tuning, so its effect is ``pituning``'s. Each effect is signed so that
positive means the deviation helps: (with it) - (without it). The interval is a 95% paired
bootstrap over users (:func:`pitune_tf.metrics.paired_bootstrap`), each user of each seed one
group, the seeds' test windows pooled. A switch's verdict (:func:`verdict`) reads both
directions: ``helps`` when some interval lies above 0 and none below, ``hurts`` the reverse,
``mixed`` when both, ``no measurable effect`` when every interval holds 0.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd

from pitune_tf.common.experiment_suite import (
    Registry,
    TrivialCheck,
    claim_cells,
    departures,
    mean_std,
    run_suite,
    values_text,
    verdict,
)
from pitune_tf.common.plotting import pyplot, save_png
from pitune_tf.experiments.pituning_suite import METRICS, PITuningSuite, metric_row
from pitune_tf.individual.individual_config import OPTIONS as INDIVIDUAL_OPTIONS
from pitune_tf.individual.individual_config import PAPER_CHOICES as INDIVIDUAL_PAPER
from pitune_tf.individual.individual_config import IndividualConfig
from pitune_tf.individual.methods import ORACLES, TRIVIAL_METHODS
from pitune_tf.metrics import bootstrap_groups, difference_cell, intent_metrics, paired_bootstrap
from pitune_tf.population.population_config import OPTIONS as POPULATION_OPTIONS
from pitune_tf.population.population_config import PAPER_CHOICES as POPULATION_PAPER

LEDGER_METRICS = ("prec_w", "rec_m", "ndcg@3")  # the effects reported per switch
GROUPED = {"learning rates": ("teacher_learning_rate", "student_learning_rate")}  # one switch
PROFILE_METHODS = ("none", "finetune", "pituning", "mpda")  # mpda: the claims table
MEASURED_BY = {"population": "none", "individual": "pituning"}  # the method an effect is read on
DIRECTIONS = {"from_paper": "the paper + this deviation", "from_default": "the defaults - this deviation"}
registry = Registry("PITuning (Gong et al., KDD 2024): the ledger of our deviations",
                    trivial=TrivialCheck("method", TRIVIAL_METHODS, "prec_w", exempt=ORACLES))


@dataclasses.dataclass(frozen=True)
class Switch:
    """One departure from the paper.

    Args:
        name: str. The config key, or the group's name (``learning rates``).
        stage: str. ``population`` or ``individual``.
        paper: dict. The paper's value of each key.
        ours: dict. The run's (our default) value of each key; for an option, its "on" value.
        option: bool. An option of ours off in both profiles (``OPTIONS``): switched on from
            each profile, ``paper`` holding its "off" value.
    """

    name: str
    stage: str
    paper: dict
    ours: dict
    option: bool = False


def switches(population_config, individual_config: IndividualConfig, options=False) -> list[Switch]:
    """Every departure of ``population_config`` (a PopulationConfig: RUN's) and
    ``individual_config`` (the default profile's) from the paper's choices, population first;
    with ``options``, then each of our ``OPTIONS`` that both leave off."""
    stages = (("population", POPULATION_PAPER, population_config.to_dict(), POPULATION_OPTIONS),
              ("individual", INDIVIDUAL_PAPER, dataclasses.asdict(individual_config), INDIVIDUAL_OPTIONS))
    found = [Switch(name, stage, paper_values, ours_values) for stage, paper, ours, _ in stages
             for name, paper_values, ours_values in departures(paper, ours, GROUPED)]
    if options:
        found += [Switch(key, stage, {key: ours[key]}, {key: on}, option=True)
                  for stage, paper, ours, table in stages for key, on in table.items()
                  if ours[key] != on and paper.get(key, ours[key]) == ours[key]]
    return found


# ----------------------------------------------------------------------------- the runs


class LedgerRuns:
    """The ledger's runs in a suite (cached under ``OUT/runs``; every individual run over
    all the individual users of the preset's ``table_users``, with its predictions)."""

    def __init__(self, suite: PITuningSuite):
        self.suite = suite
        self.users = suite.settings.get("table_users", 0)
        self.default_individual = suite.individual_config(0, ())
        self.switches = switches(suite.run.config, self.default_individual,
                                 options=suite.settings.get("ledger_options", False))

    def population(self, profile, seed, switch=None):
        """The population run of ``profile`` (``paper`` / ``default``) at ``seed``, with
        ``switch`` flipped (on from the paper, off from the defaults)."""
        changes = dict(POPULATION_PAPER) if profile == "paper" else {}
        if switch is not None and switch.stage == "population":
            changes.update(switch.ours if profile == "paper" or switch.option else switch.paper)
        name = f"ledger_{profile}" + (f"_{switch.name.replace(' ', '_')}" if switch is not None
                                      and switch.stage == "population" else "")
        return self.suite.population_run(f"{name}_seed{seed}", seed=seed, **changes)

    def individual(self, profile, seed, switch=None) -> dict:
        """``{"summary": {method: evaluate_users result}, "out": the run's folder}`` of the
        individual stage for one cell of the ledger."""
        changes = dict(INDIVIDUAL_PAPER) if profile == "paper" else {}
        methods = PROFILE_METHODS
        if switch is not None:
            methods = (MEASURED_BY[switch.stage],)
            if switch.stage == "individual":
                changes.update(switch.ours if profile == "paper" or switch.option else switch.paper)
        population = self.population(profile, seed, switch)
        key = f"ledger_{profile}" + (f"_{switch.stage}_{switch.name.replace(' ', '_')}" if switch else "")
        out = self.suite.individual_dir(key, seed)
        summary = self.suite.individual(population, key, seed, methods, users=self.users,
                                        predictions=True, **changes)
        return {"summary": summary, "out": out}


def run_predictions(out, method) -> tuple:
    """``(user ids, y_true, scores, timestamps)`` of ``method`` in an individual run's
    ``predictions.csv``, in the run's window order."""
    frame = pd.read_csv(out / "predictions.csv")
    frame = frame[frame["method"] == method]
    columns = [c for c in frame.columns if c.startswith("score_")]
    intents = [c[len("score_"):] for c in columns]
    y_true = pd.Categorical(frame["true_intent"].astype(str), categories=intents).codes
    return (frame["user_id"].astype(str).to_numpy(), np.asarray(y_true),
            frame[columns].to_numpy(np.float64), frame["timestamp"].to_numpy())


def paired_effect(pairs, method_with, method_without=None) -> dict:
    """The effect (with - without) of ``method_with`` in the "with" runs against
    ``method_without`` (default the same method) in the "without" runs, pooled over
    ``pairs`` (``[(seed, with_out, without_out)]``, the runs' folders), each (seed, user) one
    bootstrap group. The runs of a pair must score the same windows (same data and split).
    Each metric's entry also carries ``base``: the "without" side's pooled value."""
    ys, a, b, groups = [], [], [], []
    for seed, with_out, without_out in pairs:
        users, y, scores_a, when = run_predictions(with_out, method_with)
        users_b, y_b, scores_b, when_b = run_predictions(without_out, method_without or method_with)
        if not (np.array_equal(users, users_b) and np.array_equal(y, y_b) and np.array_equal(when, when_b)):
            raise ValueError(f"{with_out} and {without_out} score different test windows")
        ys.append(y)
        a.append(scores_a)
        b.append(scores_b)
        groups.append(np.char.add(f"{seed}:", users.astype(str)))
    groups = np.concatenate(groups)
    y, b = np.concatenate(ys), np.concatenate(b)
    effect = paired_bootstrap(y, np.concatenate(a), b, groups=bootstrap_groups(groups))
    base = intent_metrics(y, b)
    return {metric: {**cell, "base": float(base[metric])} for metric, cell in effect.items()}


def plot_ledger(frame, path, suite) -> None:
    """Each switch's effect on Prec_w and Rec_m with its interval, both directions."""
    plt = pyplot()
    metrics = ("prec_w", "rec_m")
    fig, axes = plt.subplots(1, len(metrics), figsize=(11, 0.55 * len(frame) + 1.6), sharey=True)
    y = np.arange(len(frame))
    for ax, metric in zip(axes, metrics):
        for shift, (direction, label) in zip((-0.15, 0.15), DIRECTIONS.items()):
            column = f"{direction}:{metric}"
            if column not in frame:
                continue
            cells = [[float(v) for v in re.findall(r"[-+]?\d+\.\d+", str(c))] or [np.nan] * 3
                     for c in frame[column]]
            diff, low, high = (np.array([c[i] for c in cells]) for i in range(3))
            ax.errorbar(diff, y + shift, xerr=[diff - low, high - diff], fmt="o", capsize=3, label=label)
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set_title(f"{metric}: with - without (95% interval over users)", fontsize=10)
    axes[0].set_yticks(y, [f"{st}: {sw}" for st, sw in zip(frame["stage"], frame["switch"])], fontsize=8)
    axes[0].invert_yaxis()  # the table's order, top down (the axes share y)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path)


LEDGER_NOTE = (
    "Each of our departures from PITuning as written, derived from the configs (the keys "
    "where a stage's PAPER_CHOICES differ from the run's defaults), measured on its own in "
    "both directions: switched on from the paper profile of both stages (from_paper), and "
    "switched off from the default profile (from_default). Each cell is the effect with the "
    "deviation minus without it, pooled over the individual users' test windows of every "
    "seed, with a 95% paired bootstrap interval over users (each user of each seed one "
    "group). A population switch changes the shipped student: measured on 'none' (the "
    "student, no tuning) on the individual users; an individual switch on 'pituning'. "
    "verdict: helps (some interval above 0, none below), hurts, mixed, or no measurable "
    "effect. Last row: every deviation at once (the default profiles against the paper's). "
    "With --options, the rows marked 'option' are options of ours off in both profiles, "
    "switched on from each (with it minus without it, as for a deviation).")


@registry.register("pituning_ledger", "PITuning: each deviation from the paper, measured on its own",
                   plot=plot_ledger, note=LEDGER_NOTE)
def ledger(suite: PITuningSuite) -> pd.DataFrame:
    """One row per switch: its two effects (switched on from the paper; switched off from the
    defaults) on each of :data:`LEDGER_METRICS` with their intervals, and the verdict; then the
    whole default profile against the whole paper profile (``pituning``)."""
    runs = LedgerRuns(suite)
    seeds = suite.seed_list()
    base = {(profile, s): runs.individual(profile, s)["out"] for profile in ("paper", "default")
            for s in seeds}
    rows = []
    for switch in runs.switches:
        method = MEASURED_BY[switch.stage]
        row = {"stage": switch.stage, "switch": switch.name,
               "ours": values_text(switch.ours) + (" (option, off by default)" if switch.option else ""),
               "paper": values_text(switch.paper), "measured_on": method}
        cells = []
        for direction, profile in (("from_paper", "paper"), ("from_default", "default")):
            flipped = [(s, runs.individual(profile, s, switch)["out"], base[profile, s]) for s in seeds]
            if profile == "default" and not switch.option:  # with the deviation: the default run
                flipped = [(s, without, with_) for s, with_, without in flipped]
            effect = paired_effect(flipped, method)
            for metric in LEDGER_METRICS:
                row[f"{direction}:{metric}"] = difference_cell(effect[metric])
                cells.append(effect[metric])
        row["verdict"] = verdict(cells)
        rows.append(row)
    whole = paired_effect([(s, base["default", s], base["paper", s]) for s in seeds], "pituning")
    rows.append({"stage": "both", "switch": "every deviation", "ours": "defaults",
                 "paper": "paper profiles", "measured_on": "pituning",
                 **{f"from_paper:{m}": difference_cell(whole[m]) for m in LEDGER_METRICS},
                 "verdict": verdict([whole[m] for m in LEDGER_METRICS])})
    return pd.DataFrame(rows)


# PITuning's claims we can check on the ledger's runs: (claim, our method, the named
# baseline, metric, the paper's relative improvement on Honor and on Mobile, where stated).
PAPER_CLAIMS = (
    ("PITuning over MPDA (Table 2)", "pituning", "mpda", "prec_w", (0.0863, 0.1100)),
    ("PITuning over MPDA (Table 2)", "pituning", "mpda", "prec_m", (0.3771, 0.2838)),
    ("PITuning over MPDA (Table 2)", "pituning", "mpda", "rec_m", (0.2601, 0.2423)),
    ("PITuning over MPDA (Table 2)", "pituning", "mpda", "ndcg@3", (0.0298, 0.1129)),
    # Sec. 4.3, Fig. 4: "the omission of the adaptive unlearning ... a significant reduction
    # in Prec_m by approximately 37%": pituning = finetune / (1 - 0.37), +59% over it
    ("unlearning: PITuning over w/o I-unlearning (Fig. 4)", "pituning", "finetune", "prec_m",
     (1 / (1 - 0.37) - 1,)),
)


@registry.register("pituning_claims", "PITuning's claims beside ours (relative improvement, pooled over users)",
                   note="The paper's relative improvements (Table 2's Improv. row: Honor; Mobile; "
                        "Fig. 4's unlearning ablation) beside ours on this data, in each profile, "
                        "from the profiles' runs: (ours - baseline) / baseline pooled over the "
                        "users of every seed; the interval is the paired bootstrap interval of "
                        "the difference over users divided by the baseline's pooled value. "
                        "mpda here is pitune_tf.individual.mpda on the student (the paper's MPDA "
                        "uses OFA as its backbone).")
def claims(suite: PITuningSuite) -> pd.DataFrame:
    runs = LedgerRuns(suite)
    seeds = suite.seed_list()
    rows = []
    for claim, ours, baseline, metric, paper in PAPER_CLAIMS:
        for profile in ("paper", "default"):
            outs = [(s, runs.individual(profile, s)["out"]) for s in seeds]
            cell = paired_effect([(s, out, out) for s, out in outs], ours, baseline)[metric]
            rows.append({"claim": claim, "metric": metric, "profile": profile,
                         "paper": " / ".join(f"{v:+.1%}" for v in paper),
                         **claim_cells(cell, min(paper))})
    return pd.DataFrame(rows)


@registry.register("pituning_profiles", "PITuning: the paper profile against the default profile, end to end",
                   note="Both stages in each profile (population PAPER_CHOICES + the individual "
                        "stage's --preset paper, against RUN's config + the individual defaults); "
                        "mean ± std over seeds of the metrics pooled over all individual users; "
                        "the trivial baselines and the oracle score the same windows.")
def profiles(suite: PITuningSuite) -> pd.DataFrame:
    """Both profiles end to end (mean ± std over seeds, pooled over the users): the shipped
    student, fine-tuning and PITuning, with the trivial baselines and the oracle."""
    runs = LedgerRuns(suite)
    rows = []
    for profile in ("paper", "default"):
        for s in suite.seed_list():
            for method, summary in runs.individual(profile, s)["summary"].items():
                shared = method in (*TRIVIAL_METHODS, *ORACLES)
                if shared and profile == "default":
                    continue  # the same windows: listed once
                label = method if shared else f"{method} ({profile} profile)"
                rows.append({"method": label, "seed": s, **metric_row(summary)})
    return mean_std(pd.DataFrame(rows), ["method"], METRICS)


def run_ledger(run_dir, out_dir, preset="demo", seeds=3, first_seed=None, workers=1, options=False) -> dict:
    """Runs the ledger (``pituning_ledger``, ``pituning_claims``, ``pituning_profiles``) on the
    population run ``run_dir`` into ``out_dir``; the arguments as ``run_pituning_suite``'s;
    ``options``: the ledger also switches on each of our options off in both profiles."""
    suite = PITuningSuite(run_dir, out_dir, preset=preset, seeds=seeds, first_seed=0, workers=workers)
    suite.settings = {**suite.settings, "ledger_options": bool(options)}
    suite.first_seed = int(suite.run.config.seed) if first_seed is None else int(first_seed)
    return run_suite(registry, suite, out_dir)
