"""The experiment harness both papers' suites share (``python -m trainers.experiments``).

A suite is a :class:`Registry` of experiments: a name, a title (the paper's table or
figure), a function ``run(context) -> pandas.DataFrame`` (the numbers) and a function
``plot(frame, png_path, context)`` (the figure). :func:`run_suite` runs the selected
experiments in registry order and writes, in the output folder::

    <name>.csv     the numbers (written atomically; its presence marks the experiment done)
    <name>.png     the figure (drawn again from the csv when missing)
    index.md       every finished experiment: its title, its table in markdown, its figure

An experiment whose csv exists is not run again (delete the csv to rerun it); the runs it
is built from (training run directories) live under the output folder's ``runs/`` and are
resumable on their own, so an interrupted suite started again picks up where it stopped.

Tables over seeds use :func:`mean_std`: one row per setting with ``<metric>_mean``,
``<metric>_std`` (sample standard deviation over seeds, empty for one seed) and
``n_seeds``; :func:`pitune_tf.common.tables.frame_table` shows such a pair as ``mean ± std``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable

import pandas as pd

from pitune_tf.common.atomic import atomic_path, write_text
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.tables import frame_table

log = logging.getLogger(__name__)
INDEX = "index.md"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One table or figure of a paper.

    Args:
        name: str. File stem of its outputs (``<name>.csv``, ``<name>.png``).
        title: str. What it reproduces, e.g. "Table 2: overall results".
        run: callable (context) -> DataFrame. Computes the numbers (reusing finished runs).
        plot: callable (frame, png_path, context) -> None, or None. Draws the figure.
        note: str. One paragraph for index.md (protocol, what is adapted).
    """

    name: str
    title: str
    run: Callable
    plot: Callable | None = None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class TrivialCheck:
    """Which rows of a table are trivial baselines, and the metric they are judged on.

    Args:
        label: str. The column naming a row's method.
        baselines: tuple of str. The trivial baselines' labels.
        metric: str. The headline metric (``<metric>_mean`` or ``<metric>``; higher is better).
        exempt: tuple of str. Labels never flagged (ceilings such as an oracle).
        within: tuple of str. Columns that name a setting (a variant, a data size, a
            sequence length): rows are compared with the baselines of their own setting.
    """

    label: str
    baselines: tuple
    metric: str
    exempt: tuple = ()
    within: tuple = ()

    def below(self, frame: pd.DataFrame) -> list:
        """``[(setting, best baseline, its value, [(label, value) of each row below it])]``,
        one entry per setting (the values of the ``within`` columns present in ``frame``)
        that has a baseline row and a row below it."""
        column = next((c for c in (f"{self.metric}_mean", self.metric) if c in frame.columns), None)
        if column is None or self.label not in frame.columns:
            return []
        keys = [c for c in self.within if c in frame.columns]
        groups = frame.groupby(keys, sort=False, dropna=False) if keys else [((), frame)]
        found = []
        for setting, part in groups:
            part = part[[self.label, column]].dropna()
            base = part[part[self.label].isin(self.baselines)]
            if base.empty:
                continue
            best = base.loc[base[column].idxmax()]
            others = part[~part[self.label].isin((*self.baselines, *self.exempt))]
            losers = [(str(row[self.label]), float(row[column])) for _, row in others.iterrows()
                      if row[column] < best[column]]
            if losers:
                setting = setting if isinstance(setting, tuple) else (setting,)
                found.append((dict(zip(keys, setting)), str(best[self.label]), float(best[column]), losers))
        return found

    def sentence(self, frame: pd.DataFrame) -> str:
        """index.md's line under a table: the rows below the best trivial baseline of their
        setting (empty when there are none)."""
        parts = []
        for setting, name, value, losers in self.below(frame):
            where = ", ".join(f"{k} {v}" for k, v in setting.items())
            rows = ", ".join(f"{label} {v:.4f}" for label, v in losers)
            parts.append(f"{where + ': ' if where else ''}{rows} (best trivial: {name} {value:.4f})")
        if not parts:
            return ""
        return (f"**Below the best trivial baseline on {self.metric}**: " + "; ".join(parts)
                + ". Diagnose them (undertrained at this budget, mis-specified, or a bug) before "
                  "ranking methods by them.")


class Registry:
    """The ordered experiments of one paper: ``@registry.register(name, title)`` on a run
    function adds one.

    Args:
        paper: str. The paper's short name (index.md's heading).
        trivial: TrivialCheck or None. How index.md finds the rows of a table that lose to
            a trivial baseline (the principle: a method below one is a bug or an
            undertrained model, never a result to report silently).
    """

    def __init__(self, paper: str, trivial: TrivialCheck | None = None):
        self.paper = paper
        self.trivial = trivial
        self.experiments: dict[str, Experiment] = {}

    def register(self, name: str, title: str, plot=None, note: str = ""):
        def decorate(run):
            if name in self.experiments:
                raise ValueError(f"experiment {name!r} registered twice")
            self.experiments[name] = Experiment(name, title, run, plot, note)
            return run
        return decorate

    def names(self) -> list[str]:
        return list(self.experiments)

    def select(self, only=None) -> list[Experiment]:
        """The experiments named in ``only`` (all when None or empty), in registry order."""
        if not only:
            return list(self.experiments.values())
        unknown = [n for n in only if n not in self.experiments]
        if unknown:
            raise UserInputError(f"unknown experiment(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(self.experiments)}")
        return [e for n, e in self.experiments.items() if n in set(only)]


def write_frame(path, frame: pd.DataFrame) -> None:
    """Atomically writes ``frame`` as csv (no index)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def run_suite(registry: Registry, context, out_dir, only=None) -> dict:
    """Runs the experiments of ``registry`` (those in ``only``, else all) and writes their
    csv, png and ``index.md`` to ``out_dir``.

    Args:
        registry: Registry.
        context: whatever the experiments' functions take (the suite's settings).
        out_dir: str or Path. Output folder.
        only: sequence of experiment names or None.
    Returns:
        dict: ``{name: "ran" | "reused"}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    status = {}
    for experiment in registry.select(only):
        csv = out_dir / f"{experiment.name}.csv"
        if csv.is_file():
            frame = pd.read_csv(csv)
            status[experiment.name] = "reused"
        else:
            print(f"experiment {experiment.name}: {experiment.title}", flush=True)
            frame = experiment.run(context)
            write_frame(csv, frame)
            status[experiment.name] = "ran"
        png = out_dir / f"{experiment.name}.png"
        if experiment.plot is not None and (status[experiment.name] == "ran" or not png.is_file()):
            # a rerun's figure is drawn again: the old one showed the old table
            experiment.plot(frame, png, context)
        write_index(registry, out_dir)  # after each experiment: progress shows as it goes
    write_index(registry, out_dir)
    return status


def write_index(registry: Registry, out_dir) -> str:
    """Writes ``index.md``: every experiment of ``registry`` whose csv exists in
    ``out_dir`` with its table and a link to its figure; the others listed as not run."""
    out_dir = Path(out_dir)
    lines = [f"# {registry.paper}: experiments", ""]
    missing = []
    for e in registry.experiments.values():
        csv = out_dir / f"{e.name}.csv"
        if not csv.is_file():
            missing.append(e)
            continue
        lines += [f"## {e.title}", "", f"`{e.name}.csv`" + (f", `{e.name}.png`" if e.plot else ""), ""]
        if e.note:
            lines += [e.note, ""]
        frame = pd.read_csv(csv)
        lines += [frame_table(frame), ""]
        flagged = registry.trivial.sentence(frame) if registry.trivial else ""
        if flagged:
            lines += [flagged, ""]
        if e.plot and (out_dir / f"{e.name}.png").is_file():
            lines += [f"![{e.title}]({e.name}.png)", ""]
    if missing:
        lines += ["## Not run", ""] + [f"- `{e.name}`: {e.title}" for e in missing] + [""]
    text = "\n".join(lines)
    write_text(out_dir / INDEX, text)
    return text


def mean_std(frame: pd.DataFrame, keys, metrics) -> pd.DataFrame:
    """One row per distinct ``keys`` (first-seen order) with ``<m>_mean``, ``<m>_std``
    (sample std, NaN for one value) for each metric of ``metrics`` and ``n_seeds``.

    Args:
        frame: DataFrame. One row per (setting, seed).
        keys: list of str. The columns that identify a setting.
        metrics: list of str. Numeric columns to aggregate (missing ones are skipped).
    """
    metrics = [m for m in metrics if m in frame.columns]
    grouped = frame.groupby(list(keys), sort=False, dropna=False)
    out = grouped.size().rename("n_seeds").reset_index()
    for m in metrics:
        out[f"{m}_mean"] = grouped[m].mean().to_numpy()
        out[f"{m}_std"] = grouped[m].std(ddof=1).to_numpy()
    columns = list(keys) + [c for m in metrics for c in (f"{m}_mean", f"{m}_std")] + ["n_seeds"]
    return out[columns]


# ----------------------------------------------------------------------------- ledgers


def verdict(cells) -> str:
    """One switch's verdict from its effects' ``{diff, low, high}`` cells (both directions,
    every metric): ``helps``, ``hurts``, ``mixed`` or ``no measurable effect``."""
    above = any(c["low"] > 0 for c in cells)
    below = any(c["high"] < 0 for c in cells)
    return "mixed" if above and below else "helps" if above else "hurts" if below else "no measurable effect"


def claim_verdict(paper_low, relative, low, high) -> str:
    """``reproduced`` (our interval above 0, our estimate at least the paper's smallest),
    ``smaller`` (above 0, below the paper's), ``not reproduced`` (the interval holds 0) or
    ``opposite`` (the interval below 0)."""
    if high < 0:
        return "opposite"
    if low <= 0:
        return "not reproduced"
    return "reproduced" if relative >= paper_low else "smaller"


def departures(paper: dict, ours: dict, grouped=None) -> list[tuple[str, dict, dict]]:
    """``[(name, paper values, our values)]``: every key of ``paper`` whose value in ``ours``
    differs, a group of ``grouped`` (``{name: keys}``) as one entry when any of its keys
    differs; groups first, then the keys in ``paper``'s order."""
    differing = [k for k in paper if paper[k] != ours[k]]
    found, taken = [], set()
    for name, keys in (grouped or {}).items():
        if any(k in differing for k in keys):
            found.append((name, {k: paper[k] for k in keys}, {k: ours[k] for k in keys}))
            taken.update(keys)
    return found + [(k, {k: paper[k]}, {k: ours[k]}) for k in differing if k not in taken]


def values_text(values: dict) -> str:
    """A departure's values for a table cell: each distinct value once, comma-separated."""
    return ", ".join(str(v) for v in dict.fromkeys(values.values()))


def claim_cells(cell: dict, paper_low) -> dict:
    """A claims table's cells from a paired effect ``{diff, low, high, base}`` (ours minus the
    named baseline): ``ours`` (the relative improvement with its interval, the difference's
    interval divided by the baseline's value), ``ours_abs`` and the :func:`claim_verdict`
    against ``paper_low`` (the paper's smallest stated improvement; None: not stated)."""
    base = cell["base"] or float("nan")
    relative, low, high = cell["diff"] / base, cell["low"] / base, cell["high"] / base
    return {"ours": f"{relative:+.1%} [{low:+.1%}, {high:+.1%}]",
            "ours_abs": f"{base + cell['diff']:.4f} vs {base:.4f}",
            "verdict": claim_verdict(paper_low, relative, low, high) if paper_low is not None else ""}
