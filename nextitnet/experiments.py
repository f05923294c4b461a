"""UAF's tables and figures from one command (``python -m trainers.experiments uaf``):
Table 2 (every mode and baseline), Table 3 (the learned policies against UAF-Random),
Table 4 (GRU policy network), Table 5 (10% of the training data, the same test set),
Table 7 (user-profile prediction), Figure 3 (per-block utilisation of the fine-tuned
blocks) and Figure 4 (validation HR@5 per epoch), each over several seeds (mean ± std).

Every number comes from ``nextitnet.uaf_run.run_uaf`` run directories, one per seed and
setting, under ``OUT/runs/<setting>/seed<k>`` (resumable; a finished mode is reused):

- ``main``: every mode of ``RUN_MODES`` (Tables 2-3, Figures 3-4);
- ``gru``: the UAF modes with ``policy="gru"`` (Table 4), reusing ``main``'s backbone;
- ``fraction<f>``: every mode with ``train_fraction=f`` (Table 5), reusing ``main``'s
  backbone; ``encode_recommendation_task`` draws the split on all rows first and subsamples
  the training rows only, so validation and test rows are those of ``main`` (checked here
  on the encoded tasks, and in tests/test_nextitnet.py);
- ``profile``: the profile task (gender / age, Table 7), reusing ``main``'s backbone.

Seeds: seed k runs with ``config.seed = base + k`` (split, initialization, batch order,
sampled negatives). Synthetic data is generated once with the base seed, so every seed sees
the same dataset, as with real data. Each table carries the trivial baselines MostPop and
Random (``nextitnet.baselines``); the synthetic cross-domain generator has no user oracle.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from nextitnet import analysis
from nextitnet.data.encoding import encode_recommendation_task, fit_source_vocab
from nextitnet.modes import ORACLE, SCORE_MODES
from nextitnet.uaf_config import UAFConfig
from nextitnet.uaf_model import UAF_MODES
from nextitnet.uaf_run import RUN_MODES, run_uaf
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.experiment_suite import Registry, TrivialCheck, mean_std, run_suite
from pitune_tf.common.plotting import bar_chart, line_chart

TRIVIAL = SCORE_MODES  # the trivial rows of every table
registry = Registry("UAF (Chen et al., TKDE)", trivial=TrivialCheck("mode", TRIVIAL, "mrr@5", exempt=(ORACLE,)))
POLICY_MODES = ("hard", "soft", "rl")
PROFILE_MODES = TRIVIAL + ("finetune-cls", "finetune-all", "peterrec") + POLICY_MODES  # Table 7's rows


@dataclasses.dataclass
class UAFSuite:
    """The settings of one UAF suite (the ``context`` of its experiments).

    Args:
        config: UAFConfig. The base configuration; seed k runs with ``seed = config.seed + k``.
        data: CrossDomainData.
        data_source: str. Where the data came from (recorded in each run's config.json).
        seeds: int. Number of seeds.
        out_dir: Path. The experiments folder (runs under ``out_dir/runs``).
        modes: tuple of str. Table 2's modes (default: every mode).
        profile_modes: tuple of str. Table 7's modes.
        train_fraction: float. Table 5's share of the training split.
        verbose: Keras fit verbosity.
    """

    config: UAFConfig
    data: object
    data_source: str
    seeds: int = 3
    out_dir: Path = Path("runs/uaf_experiments")
    modes: tuple = RUN_MODES
    profile_modes: tuple = PROFILE_MODES
    train_fraction: float = 0.1
    verbose: object = 2
    _results: dict = dataclasses.field(default_factory=dict, repr=False)

    def seed_list(self) -> list[int]:
        return [self.config.seed + k for k in range(self.seeds)]

    def run_dir(self, setting, seed) -> Path:
        return Path(self.out_dir) / "runs" / setting / f"seed{seed}"

    def run(self, setting, seed, modes=None, task="recommendation", **changes) -> dict:
        """``run_uaf``'s results for ``setting`` and ``seed`` (finished modes are reused,
        results kept in memory). ``main`` always runs every mode of ``self.modes`` (its
        reports list them all); the other settings run ``modes`` with ``changes`` to the
        config and reuse ``main``'s pretrained backbone."""
        key = (setting, seed)
        if key not in self._results:
            config = dataclasses.replace(self.config, seed=seed, **changes)
            pretrained = None
            if setting == "main":
                modes = list(self.modes)
            else:
                self.run("main", seed)
                pretrained = self.run_dir("main", seed)
            self._results[key] = run_uaf(config, self.data, self.run_dir(setting, seed), modes, task=task,
                                         pretrained=pretrained, data_source=self.data_source,
                                         verbose=self.verbose)
        return self._results[key]


def rec_metrics(config: UAFConfig) -> list[str]:
    """The recommendation columns: MRR, HR and NDCG at the first and last cut-off (sampled
    negatives), and full-ranking MRR and HR at the first."""
    cuts = sorted({config.topk[0], config.topk[-1]})
    k0 = config.topk[0]
    return [f"{m}@{k}" for k in cuts for m in ("mrr", "hr", "ndcg")] + [f"full_mrr@{k0}", f"full_hr@{k0}"]


def _rows(results: dict, seed, modes, suffix="") -> list[dict]:
    """The rows of ``modes`` in ``results``, and the oracle's where the run has it (the
    ceiling of data whose process is known; once per table: not in a variant's ``suffix`` rows)."""
    modes = [*[m for m in modes if m != ORACLE], *([] if suffix else [ORACLE])]
    return [{"model": analysis.LABELS.get(m, m) + suffix, "mode": m, "seed": seed, **results[m]["test"]}
            for m in modes if m in results]


def _table(suite, setting, modes, metrics=None, suffix="", **changes) -> pd.DataFrame:
    rows = []
    for seed in suite.seed_list():
        rows += _rows(suite.run(setting, seed, modes, **changes), seed, modes, suffix)
    return mean_std(pd.DataFrame(rows), ["model", "mode"], metrics or rec_metrics(suite.config))


def plot_rank_bars(frame, path, suite) -> None:
    k = suite.config.topk[0]
    bar_chart(frame, "model", [f"mrr@{k}", f"hr@{k}", f"ndcg@{k}"], path, ylabel="test score")


@registry.register("uaf_table2", "UAF Table 2: every mode and baseline (test, mean ± std over seeds)",
                   plot=plot_rank_bars,
                   note="Ranking among 1 positive + n_negatives sampled items (mrr/hr/ndcg@k) and "
                        "over all target items (full_*). MostPop and Random are the trivial baselines.")
def table2(suite: UAFSuite) -> pd.DataFrame:
    return _table(suite, "main", suite.modes)


@registry.register("uaf_table3", "UAF Table 3: learned policies against a random policy (UAF-Random)",
                   plot=plot_rank_bars)
def table3(suite: UAFSuite) -> pd.DataFrame:
    k = suite.config.topk[0]
    modes = [m for m in TRIVIAL + ("random",) + POLICY_MODES if m in suite.modes]
    return _table(suite, "main", modes, [f"mrr@{k}", f"hr@{k}"])


@registry.register("uaf_table4", "UAF Table 4: NextItNet against GRU policy network", plot=plot_rank_bars)
def table4(suite: UAFSuite) -> pd.DataFrame:
    k = suite.config.topk[0]
    metrics = [f"mrr@{k}", f"hr@{k}"]
    main = _table(suite, "main", [m for m in TRIVIAL + POLICY_MODES if m in suite.modes], metrics)
    gru = _table(suite, "gru", [m for m in POLICY_MODES if m in suite.modes], metrics, suffix="-GRU",
                 policy="gru")
    return pd.concat([main, gru], ignore_index=True)


@registry.register("uaf_table5", "UAF Table 5: limited target data (share of the training split), same test set",
                   plot=plot_rank_bars,
                   note="Every model fine-tuned on a random share of the training rows; the validation "
                        "and test rows are those of Table 2 (checked on the encoded tasks).")
def table5(suite: UAFSuite) -> pd.DataFrame:
    check_same_test_rows(suite)
    k = suite.config.topk[0]
    frame = _table(suite, f"fraction{suite.train_fraction:g}", suite.modes, [f"mrr@{k}", f"hr@{k}"],
                   train_fraction=suite.train_fraction)
    frame.insert(2, "train_fraction", suite.train_fraction)
    return frame


def check_same_test_rows(suite: UAFSuite) -> None:
    """Raises RuntimeError unless ``train_fraction`` leaves the validation and test rows of
    every seed unchanged (Table 5 against Table 2 on the same test set)."""
    vocab = fit_source_vocab(suite.data)
    c = suite.config
    for seed in suite.seed_list():
        full, part = (encode_recommendation_task(suite.data, c.max_len, c.fractions, seed, f, vocab)
                      for f in (1.0, suite.train_fraction))
        for name in ("val", "test"):
            for key in ("source", "target"):
                if not np.array_equal(full.splits[name][key], part.splits[name][key]):
                    raise RuntimeError(f"train_fraction changed the {name} rows (seed {seed})")


@registry.register("uaf_table7", "UAF Table 7: user-profile prediction (accuracy, macro F1)",
                   plot=lambda frame, path, suite: _profile_bars(frame, path))
def table7(suite: UAFSuite) -> pd.DataFrame:
    rows = []
    for seed in suite.seed_list():
        results = suite.run("profile", seed, list(suite.profile_modes), task="profile")
        for mode in suite.profile_modes:
            row = {"model": analysis.LABELS.get(mode, mode), "mode": mode, "seed": seed}
            for label, result in results[mode].items():
                row.update({f"{label} {k}": result["test"][k] for k in ("accuracy", "f1")})
            rows.append(row)
    frame = pd.DataFrame(rows)
    metrics = [c for c in frame.columns if c not in ("model", "mode", "seed")]
    return mean_std(frame, ["model", "mode"], metrics)


def _profile_bars(frame, path) -> None:
    metrics = [c[:-5] for c in frame.columns if c.endswith("_mean")]
    bar_chart(frame, "model", metrics, path, ylabel="test score")


@registry.register("uaf_fig3", "UAF Figure 3: utilisation of each fine-tuned residual block (share of test users)",
                   plot=lambda frame, path, suite: analysis.plot_utilisation(
                       {m: part.sort_values("block")["utilisation_mean"].tolist()
                        for m, part in frame.groupby("mode", sort=False)}, path))
def fig3(suite: UAFSuite) -> pd.DataFrame:
    rows = []
    modes = [m for m in UAF_MODES if m in suite.modes]
    for seed in suite.seed_list():
        results = suite.run("main", seed)
        for mode in modes:
            for block, value in enumerate(results[mode]["utilisation"], start=1):
                rows.append({"model": analysis.LABELS[mode], "mode": mode, "block": block, "seed": seed,
                             "utilisation": value})
    return mean_std(pd.DataFrame(rows), ["model", "mode", "block"], ["utilisation"])


@registry.register("uaf_fig4", "UAF Figure 4: validation HR@5 per fine-tuning epoch",
                   plot=lambda frame, path, suite: line_chart(
                       frame, "epoch", "model", ["hr@5"], path, xlabel="epoch"),
                   note="Each mode stops early (patience); an epoch's mean is over the seeds that "
                        "reached it (n_seeds).")
def fig4(suite: UAFSuite) -> pd.DataFrame:
    rows = []
    for seed in suite.seed_list():
        results = suite.run("main", seed)
        for mode in suite.modes:
            curve = results[mode].get("val_curves", {}).get("hr@5", [])
            rows += [{"model": analysis.LABELS.get(mode, mode), "mode": mode, "epoch": epoch, "seed": seed,
                      "hr@5": value} for epoch, value in enumerate(curve, start=1)]
    if not rows:
        return pd.DataFrame(columns=["model", "mode", "epoch", "hr@5_mean", "hr@5_std", "n_seeds"])
    return mean_std(pd.DataFrame(rows), ["model", "mode", "epoch"], ["hr@5"])


def run_uaf_suite(config: UAFConfig, data, data_source, out_dir, seeds=3, modes=None, train_fraction=0.1,
                  only=None, verbose=2) -> dict:
    """Runs UAF's experiments (``only``: a subset of ``registry.names()``) into ``out_dir``;
    returns ``{name: "ran" | "reused"}`` (see ``pitune_tf.common.experiment_suite``).

    Args:
        config: UAFConfig. Base configuration (seed k uses ``config.seed + k``).
        data: CrossDomainData. data_source: str, recorded in each run's config.json.
        out_dir: str or Path. seeds: int >= 1. modes: Table 2's modes (None: all of RUN_MODES).
        train_fraction: float in (0, 1). Table 5's share of the training split.
    """
    if seeds < 1:
        raise UserInputError(f"--seeds must be >= 1, got {seeds}")
    if not 0.0 < train_fraction < 1.0:
        raise UserInputError(f"--train-fraction must be in (0, 1), got {train_fraction}")
    modes = tuple(modes or RUN_MODES)
    unknown = [m for m in modes if m not in RUN_MODES]
    if unknown:
        raise UserInputError(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(RUN_MODES)}")
    registry.select(only)  # unknown names fail before any work
    suite = UAFSuite(config, data, str(data_source), seeds=seeds, out_dir=Path(out_dir), modes=modes,
                     profile_modes=tuple(m for m in PROFILE_MODES if m in modes), train_fraction=train_fraction,
                     verbose=verbose)
    return run_suite(registry, suite, out_dir, only)


__all__ = ["UAFSuite", "registry", "rec_metrics", "check_same_test_rows", "run_uaf_suite"]
