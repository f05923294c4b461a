"""UAF's ledger of deviations (``python -m trainers.experiments uaf_ledger``): each of our
departures from UAF as written, measured on its own in both directions, on several seeds,
and the paper's claims beside ours.

A switch is one departure: a key where ``uaf_config.PAPER_CHOICES`` differs from the run's
config (:func:`switches`; the RL warm-up's two keys are one switch), derived, never listed by
hand. For each seed (``config.seed + k``) the ledger runs the paper profile (the config with
``PAPER_CHOICES``) and the default profile (the config), each with Finetune-All, UAF-Soft and
UAF-RL (and the trivial baselines ``run_uaf`` adds), then flips one switch at a time: on from
the paper, off from the defaults. A switch of UAF-RL's reward (``gamma``, ``entropy_weight``,
the warm-up) is read on UAF-RL, every other on UAF-Soft (the paper's best mode); a switch that
changes pretraining (``learning_rate``, ``pretrain_loss``) pretrains its own backbone, the
others reuse their profile's. Each effect is (with the deviation) - (without), MRR@5 and
HR@5 over the test rows (sampled protocol) of every seed, with a 95% paired bootstrap over
users (:func:`pitune_tf.metrics.paired_mean_bootstrap`; each user of each seed one group).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from nextitnet.data.encoding import fit_source_vocab
from nextitnet.experiments import UAFSuite, plot_rank_bars, rec_metrics
from nextitnet.fine_tuning_stage import TEST_RANKS
from nextitnet.modes import ORACLE, SCORE_MODES
from nextitnet.pretraining_loss import resolve_pretrain_loss
from nextitnet.uaf_config import PAPER_CHOICES, UAFConfig
from nextitnet.uaf_run import run_uaf
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
from pitune_tf.metrics import difference_cell, paired_mean_bootstrap

registry = Registry("UAF (Chen et al., TKDE): the ledger of our deviations",
                    trivial=TrivialCheck("mode", SCORE_MODES, "mrr@5", exempt=(ORACLE,)))
GROUPED = {"rl warm-up": ("rl_warmup_epochs", "rl_warmup_gates")}
RL_KEYS = {"gamma", "beta", "reward_form", "entropy_weight", "rl_warmup_epochs", "rl_warmup_gates"}
PRETRAINING_KEYS = {"learning_rate", "pretrain_loss"}
PROFILE_MODES = ("finetune-all", "soft", "rl")
CUTOFF = 5
# UAF Table 2: UAF-Soft over Finetune-All in MRR@5 on ColdRec-1/2/4 (Sec. 5.2: +1.4% to +3.6%)
PAPER_CLAIMS = (("UAF-Soft over Finetune-All (Table 2)", "soft", "finetune-all", (0.014, 0.036)),
                ("UAF-RL over Finetune-All (Table 2)", "rl", "finetune-all", None))


@dataclasses.dataclass(frozen=True)
class Switch:
    """One departure from UAF: ``name`` (a key or a group), ``paper`` and ``ours`` values."""

    name: str
    paper: dict
    ours: dict

    @property
    def mode(self) -> str:
        return "rl" if set(self.paper) <= RL_KEYS else "soft"

    @property
    def pretrains(self) -> bool:
        return bool(set(self.paper) & PRETRAINING_KEYS)


def switches(config: UAFConfig) -> list[Switch]:
    """Every key where ``config`` departs from :data:`PAPER_CHOICES`, as switches."""
    return [Switch(*found) for found in departures(PAPER_CHOICES, dataclasses.asdict(config), GROUPED)]


def same_on(suite: UAFSuite, switch: Switch) -> bool:
    """Whether ``switch`` changes nothing on the suite's data: ``pretrain_loss`` ``auto`` is
    ``full`` below 100,000 source items (``resolve_pretrain_loss``)."""
    if set(switch.paper) != {"pretrain_loss"}:
        return False
    n_items = len(fit_source_vocab(suite.data))
    return resolve_pretrain_loss(switch.paper["pretrain_loss"], n_items) == resolve_pretrain_loss(
        switch.ours["pretrain_loss"], n_items)


def _run(suite: UAFSuite, profile, seed, switch=None) -> tuple[Path, dict]:
    """The run directory of one cell of the ledger (trained when not finished) and its
    ``run_uaf`` results, kept in the suite's results (each cell is read by several rows: it
    runs, or is reloaded from its folder, once)."""
    setting = f"ledger_{profile}" + (f"_{switch.name.replace(' ', '_')}" if switch is not None else "")
    path = Path(suite.out_dir) / "runs" / setting / f"seed{seed}"
    if (setting, seed) in suite._results:
        return path, suite._results[setting, seed]
    changes = dict(PAPER_CHOICES) if profile == "paper" else {}
    modes, pretrained = PROFILE_MODES, None
    if switch is not None:
        changes.update(switch.ours if profile == "paper" else switch.paper)
        modes = (switch.mode,)
        if not switch.pretrains:
            pretrained = _run(suite, profile, seed)[0]  # the same pretraining as the profile's
    config = dataclasses.replace(suite.config, seed=seed, **changes)
    suite._results[setting, seed] = run_uaf(config, suite.data, path, modes, pretrained=pretrained,
                                            data_source=suite.data_source, verbose=suite.verbose)
    return path, suite._results[setting, seed]


def _ranks(path, mode) -> tuple:
    with np.load(Path(path) / "modes" / mode / TEST_RANKS) as f:
        return f["user"], f["ranks"]


def paired_effect(pairs, mode_with, mode_without=None, k=CUTOFF) -> dict:
    """``{"mrr@k": {diff, low, high, base}, "hr@k": ...}``: ``mode_with`` in the "with" runs
    against ``mode_without`` (default the same) in the "without" runs, over ``pairs``
    (``[(seed, with_dir, without_dir)]``) pooled, each (seed, user) one bootstrap group."""
    users, with_ranks, without_ranks = [], [], []
    for seed, with_dir, without_dir in pairs:
        user_a, a = _ranks(with_dir, mode_with)
        user_b, b = _ranks(without_dir, mode_without or mode_with)
        if not np.array_equal(user_a, user_b):
            raise ValueError(f"{with_dir} and {without_dir} score different test rows")
        users.append(np.char.add(f"{seed}:", user_a.astype(str)))
        with_ranks.append(a)
        without_ranks.append(b)
    a, b, groups = (np.concatenate(x) for x in (with_ranks, without_ranks, users))
    return {f"mrr@{k}": paired_mean_bootstrap(np.where(a <= k, 1.0 / a, 0.0),
                                              np.where(b <= k, 1.0 / b, 0.0), groups),
            f"hr@{k}": paired_mean_bootstrap((a <= k).astype(float), (b <= k).astype(float), groups)}


@registry.register("uaf_ledger", "UAF: each deviation from the paper, measured on its own",
                   note="Each of our departures from UAF as written (the keys where "
                        "PAPER_CHOICES differ from the config), switched on from the paper "
                        "profile (from_paper) and off from the defaults (from_default), one at a "
                        "time; each cell: with the deviation minus without it over the test rows "
                        "of every seed (sampled protocol), 95% paired bootstrap interval over "
                        "users. UAF-RL's reward switches are read on rl, the others on soft.")
def ledger(suite: UAFSuite) -> pd.DataFrame:
    seeds = suite.seed_list()
    metrics = (f"mrr@{CUTOFF}", f"hr@{CUTOFF}")
    rows = []
    for switch in switches(suite.config):
        row = {"switch": switch.name, "ours": values_text(switch.ours), "paper": values_text(switch.paper),
               "measured_on": switch.mode}
        if same_on(suite, switch):
            rows.append({**row, "verdict": "the same run on this data (not run)"})
            continue
        cells = []
        for direction, profile in (("from_paper", "paper"), ("from_default", "default")):
            pairs = [(s, _run(suite, profile, s, switch)[0], _run(suite, profile, s)[0]) for s in seeds]
            if profile == "default":
                pairs = [(s, without, with_) for s, with_, without in pairs]
            effect = paired_effect(pairs, switch.mode)
            for metric in metrics:
                row[f"{direction}:{metric}"] = difference_cell(effect[metric])
                cells.append(effect[metric])
        row["verdict"] = verdict(cells)
        rows.append(row)
    for mode in ("soft", "rl"):
        whole = paired_effect([(s, _run(suite, "default", s)[0], _run(suite, "paper", s)[0])
                               for s in seeds], mode)
        rows.append({"switch": "every deviation", "ours": "defaults", "paper": "paper profile",
                     "measured_on": mode, **{f"from_paper:{m}": difference_cell(whole[m]) for m in metrics},
                     "verdict": verdict([whole[m] for m in metrics])})
    return pd.DataFrame(rows)


@registry.register("uaf_claims", "UAF's claims beside ours (relative MRR@5 improvement, pooled over users)",
                   note="UAF Table 2 / Sec. 5.2: UAF-Soft over Finetune-All by +1.4% to +3.6% "
                        "MRR@5 on ColdRec-1/2/4; ours: (mode - Finetune-All) / Finetune-All over "
                        "the test rows of every seed, in each profile; the interval is the paired "
                        "bootstrap interval of the difference over users divided by Finetune-All's.")
def claims(suite: UAFSuite) -> pd.DataFrame:
    rows = []
    for claim, ours, baseline, paper in PAPER_CLAIMS:
        for profile in ("paper", "default"):
            runs = [(s, _run(suite, profile, s)[0]) for s in suite.seed_list()]
            cell = paired_effect([(s, r, r) for s, r in runs], ours, baseline)[f"mrr@{CUTOFF}"]
            rows.append({"claim": claim, "profile": profile,
                         "paper": " to ".join(f"{v:+.1%}" for v in paper) if paper else "not stated",
                         **claim_cells(cell, min(paper) if paper else None)})
    return pd.DataFrame(rows)


@registry.register("uaf_profiles", "UAF: the paper profile against the default profile (test, mean ± std over seeds)",
                   plot=plot_rank_bars)
def profiles(suite: UAFSuite) -> pd.DataFrame:
    rows = []
    for profile in ("paper", "default"):
        for s in suite.seed_list():
            for mode, result in _run(suite, profile, s)[1].items():
                shared = mode in (*SCORE_MODES, ORACLE)
                if shared and profile == "default":
                    continue  # the trivial baselines score the same rows: listed once
                rows.append({"model": mode if shared else f"{mode} ({profile} profile)", "mode": mode,
                             "seed": s, **result["test"]})
    return mean_std(pd.DataFrame(rows), ["model", "mode"], rec_metrics(suite.config))


def run_uaf_ledger(config, data, data_source, out_dir, seeds=3) -> dict:
    """Runs ``uaf_ledger``, ``uaf_claims`` and ``uaf_profiles`` into ``out_dir``."""
    suite = UAFSuite(config, data, data_source, seeds=seeds, out_dir=Path(out_dir))
    return run_suite(registry, suite, out_dir)
