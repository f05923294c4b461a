"""The run cache of PITuning's experiment suite: which population runs and individual-stage
runs an experiment needs, built once under ``OUT/runs`` and reused (the suite's sizes:
``pitune_tf.experiments.suite_presets``).

- Population runs (``OUT/runs/population/<name>``): the given run ``RUN`` is reused as is;
  a variant (no IAT, no reconstruction, another history length L, OFA) is ``RUN``'s config
  with the variant's changes and the preset's ``population`` budget (fewer windows and
  epochs on the tiny preset, for tests; RUN's own on the others), trained with
  ``pitune_tf.population.run_population`` (resumable; a finished one is reused). When the
  budget changes anything, the comparisons use a ``full`` run at that same budget, not
  ``RUN``, so every bar of a figure had the same training.
- Individual runs (``OUT/runs/individual/<key>/seed<k>``): ``run_individual`` with
  ``IndividualConfig(seed=k, ...)`` (a finished one, with its ``summary.json``, is reused).
  Seeds vary the individual stage (per-user batch order and initial state of the tuned
  heads); the population runs are trained once, with ``RUN``'s seed.

Every individual-level table carries the trivial baselines on the same users' test windows
(the individual engine's ``most_frequent``: the user's own intent frequencies;
``last_event_intent``: the intent of the window's last event) and, when the log comes with a
user oracle (the synthetic data), the ``oracle`` row.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pitune_tf import population
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.json_files import read_json
from pitune_tf.common.run_files import RunFiles
from pitune_tf.common.run_replacement import with_defaults
from pitune_tf.experiments.suite_presets import SUITE_PRESETS
from pitune_tf.individual import stage as individual_stage
from pitune_tf.individual.individual_config import IndividualConfig
from pitune_tf.individual.methods import TRIVIAL_METHODS

METRICS = ("prec_w", "rec_w", "prec_m", "rec_m", "ndcg@3", "ndcg@5")  # PITuning Table 2's columns


@dataclasses.dataclass
class PITuningSuite:
    """The context of PITuning's experiments.

    Args:
        run_dir: Path. The finished population run (``trainers.population --out``).
        out_dir: Path. The experiments folder (runs under ``out_dir/runs``).
        preset: str. A key of ``SUITE_PRESETS``.
        seeds: int. Seeds of each individual-level setting.
        first_seed: int. Seed k is ``first_seed + k``.
        workers: int. Processes of the individual stage.
    """

    run_dir: Path
    out_dir: Path
    preset: str = "demo"
    seeds: int = 3
    first_seed: int = 0
    workers: int = 1
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.preset not in SUITE_PRESETS:
            raise UserInputError(f"unknown suite preset {self.preset!r}; choose from {sorted(SUITE_PRESETS)}")
        if self.seeds < 1 or self.workers < 1:
            raise UserInputError(f"--seeds and --workers must be >= 1, got {self.seeds}, {self.workers}")
        self.run_dir, self.out_dir = Path(self.run_dir), Path(self.out_dir)
        self.settings = SUITE_PRESETS[self.preset]
        self._cache["run", str(self.run_dir)] = population.load_run(self.run_dir)  # a bad run fails first

    @property
    def run(self):
        """The given population run (``load_run``)."""
        return self.load_run(self.run_dir)

    def load_run(self, path):
        key = ("run", str(path))
        if key not in self._cache:
            self._cache[key] = population.load_run(path)
        return self._cache[key]

    def seed_list(self) -> list[int]:
        return [self.first_seed + k for k in range(self.seeds)]

    # ----------------------------------------------------------------- population runs

    def population_run(self, name: str, **changes) -> Path:
        """The population run of variant ``name``: ``RUN``'s config with ``changes`` and the
        preset's budget; ``RUN`` itself when that changes nothing."""
        base = self.run.config
        config = base.replace(**{**self.settings["population"], **changes})
        if config.to_dict() == base.to_dict():
            return self.run_dir
        if config.to_dict() == base.replace(**self.settings["population"]).to_dict():
            name = "full"  # e.g. L equal to RUN's: the budget's full run, trained once
        path = self.out_dir / "runs" / "population" / name
        if not (path / "metrics.json").is_file() or not _same_config(path, config):
            # not run yet, or run with another config (RUN or a default changed since):
            # (re)run, replacing its files
            print(f"population run {name}: {changes or 'the budget of the suite'}", flush=True)
            population.run_population(config, path, overwrite=(path / "metrics.json").is_file())
        return path

    def full_run(self) -> Path:
        """The complete method's population run at the suite's budget (``RUN`` when the
        budget is ``RUN``'s)."""
        return self.population_run("full")

    # ----------------------------------------------------------------- individual runs

    def individual_config(self, seed, methods, **changes):
        return IndividualConfig(**{**self.settings["individual"], **changes, "seed": seed,
                                   "methods": tuple(methods)})

    def individual_dir(self, key, seed) -> Path:
        """The folder of the individual run ``key`` at ``seed``."""
        return self.out_dir / "runs" / "individual" / key / f"seed{seed}"

    def individual(self, population_dir, key, seed, methods, users=None, predictions=False,
                   **changes) -> dict:
        """``{method: evaluate_users result}`` of an individual-stage run on
        ``population_dir``'s individual users (``users``: how many, 0 = all; default the
        preset's): the trivial baselines first, then ``methods``, then the oracle (when the
        log has one); ``predictions``: the run also writes ``predictions.csv``."""
        methods = (*TRIVIAL_METHODS, *(m for m in methods if m not in TRIVIAL_METHODS))  # the engine's baselines
        config = self.individual_config(seed, methods, **changes)
        out = self.individual_dir(key, seed)
        summary_file = out / "summary.json"
        done = read_json(summary_file) if summary_file.is_file() else None
        users = self.settings["users"] if users is None else users
        if done is None or done.get("n_users", users) != users or not _same_options(done["config"], config) or (
                predictions and not (out / "predictions.csv").is_file()):
            # not run yet, or run with other users, methods or options: (re)run, replacing
            # its files (a summary from before "n_users" was recorded counts as this preset's)
            print(f"individual stage {key}, seed {seed}: {', '.join(methods)}", flush=True)
            individual_stage.run_individual(population_dir, config, out=out, n_users=users,
                                            workers=self.workers, progress=False,
                                            dump_predictions=predictions)
        summary = RunFiles(out, what="individual run").json(summary_file.name)["methods"]
        ordered = {m: s for m, s in summary.items() if m != "oracle"}
        if "oracle" in summary:
            ordered["oracle"] = summary["oracle"]
        return ordered


def _same_options(saved: dict, config: IndividualConfig) -> bool:
    """Whether an individual run's saved config (``summary.json``) is ``config``: its
    ``min_history`` (resolved from the population run) aside, a key it lacks (added since)
    counting as the default."""
    saved = with_defaults(saved, dataclasses.asdict(IndividualConfig()))
    wanted = json.loads(json.dumps(dataclasses.asdict(dataclasses.replace(
        config, min_history=saved["min_history"]))))
    return saved == wanted


def _same_config(path: Path, config) -> bool:
    """Whether the population run in ``path`` was trained with ``config`` (its
    ``config.json``; the log's schema, recorded as the run reads the log, aside). A key the
    saved config lacks (added to the config since) counts as its default, as loading the
    run reads it."""
    if not (path / "config.json").is_file():
        return False
    saved = with_defaults(read_json(path / "config.json"), type(config)().to_dict())
    wanted = json.loads(json.dumps(config.to_dict()))
    return all(saved.get(k) == v for k, v in wanted.items() if k != "data_schema")


def metric_row(summary: dict) -> dict:
    """The pooled METRICS, the mean recall of the rarest intents and each one's recall
    (``rec[<intent>]``) of one ``evaluate_users`` result."""
    row = {m: summary["pooled"][m] for m in METRICS}
    row["rare_recall_mean"] = summary.get("rare_recall_mean", float("nan"))
    row.update({f"rec[{name}]": value for name, value in summary.get("rare", {}).items()})
    return row
