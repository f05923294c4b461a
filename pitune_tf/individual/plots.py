"""The individual stage's figure, written beside ``per_user.csv``: ``gains.png``, each user's
gain of each method over ``none`` (the shipped student) on Prec_w and Rec_m, and beside each
box the pooled gain with its 95% paired-bootstrap interval (``summary.json``'s ``versus``).

A figure that fails is logged as a warning and skipped (``never_fails``): plots never fail
a run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pitune_tf.common.plotting import never_fails, pyplot, save_png

GAINS = "gains.png"
GAIN_METRICS = (("prec_w", "Prec_w"), ("rec_m", "Rec_m"))


def per_user_gains(per_user, metric, baseline="none") -> dict[str, np.ndarray]:
    """``{method: [metric(method) - metric(baseline)] per user}`` over the users that have
    both rows, methods in ``per_user``'s order (the baseline left out).

    Args:
        per_user: DataFrame with ``user_id``, ``method`` and ``metric`` columns
            (``per_user.csv``).
        metric: str. A metric column, e.g. ``"prec_w"``.
        baseline: str. The method the gains are measured from.
    """
    table = per_user.pivot_table(index="user_id", columns="method", values=metric,
                                 aggfunc="first")
    if baseline not in table:
        return {}
    methods = [m for m in pd.unique(per_user["method"]) if m != baseline]
    return {m: (table[m] - table[baseline]).dropna().to_numpy() for m in methods}


def plot_gains(per_user, path, baseline="none", summary=None) -> Path:
    """One panel (row) per metric of GAIN_METRICS: a box per method over users, each user a dot,
    the mean a diamond, 0 (no gain over ``baseline``) a line; with ``summary``, the pooled
    gain and its 95% interval (``summary[method]["versus"][baseline]``) as a black bar right
    of the box: a method is measurably ahead where the bar is above the line.

    Args:
        per_user: DataFrame (``per_user.csv``).
        path: the PNG's path.
        baseline: str. The method the gains are measured from.
        summary: optional ``{method: summary}`` (:func:`pitune_tf.individual.summary.summarize`).
    """
    plt = pyplot()
    gains = {label: per_user_gains(per_user, metric, baseline) for metric, label in GAIN_METRICS}
    methods = list(next(iter(gains.values())))
    if not methods:
        raise ValueError(f"per_user.csv has no {baseline!r} rows or no other method")
    fig, axes = plt.subplots(len(GAIN_METRICS), 1, squeeze=False, sharex=True,
                             figsize=(max(6.0, 1.5 + 0.8 * len(methods)), 3.2 * len(GAIN_METRICS)))
    rng = np.random.default_rng(0)  # horizontal jitter of the dots only
    for ax, (metric, label), by_method in zip(axes[:, 0], GAIN_METRICS, gains.values()):
        values = [by_method[m] for m in methods]
        ax.axhline(0.0, color="0.3", linewidth=1)
        ax.boxplot(values, widths=0.6, showfliers=False, medianprops={"color": "tab:orange"})
        for k, v in enumerate(values, start=1):
            ax.scatter(k + rng.uniform(-0.15, 0.15, len(v)), v, s=14, alpha=0.6,
                       color="tab:blue", zorder=3)
            if len(v):
                ax.scatter(k, np.mean(v), marker="D", s=40, color="tab:red", zorder=4,
                           label="mean over users" if k == 1 else None)
            pooled = (summary or {}).get(methods[k - 1], {}).get("versus", {}).get(baseline)
            if pooled:
                d = pooled[metric]
                ax.errorbar(k + 0.38, d["diff"], yerr=[[d["diff"] - d["low"]], [d["high"] - d["diff"]]],
                            fmt="s", markersize=4, color="black", capsize=3, zorder=4,
                            label="pooled, 95% interval" if k == 1 else None)
        ax.set_xticks(range(1, len(methods) + 1), methods, rotation=30, ha="right")
        ax.tick_params(labelbottom=True)
        ax.set_ylabel(f"{label} gain over {baseline}")
        ax.set_title(f"Per-user {label} gain over '{baseline}'")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    users = per_user["user_id"].nunique()
    fig.suptitle(f"Each dot one user ({users} users, test windows); box: quartiles", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)


def write_individual_plots(out, per_user, summary=None) -> list[Path]:
    """Writes ``out/gains.png`` when ``per_user`` has ``none`` rows and another method (a
    failure is a warning), with the pooled intervals of ``summary`` when given; returns the
    paths written."""
    path = Path(out) / GAINS
    written = []
    if "none" not in set(per_user["method"]) or per_user["method"].nunique() < 2:
        return written
    with never_fails(path):
        written.append(plot_gains(per_user, path, summary=summary))
    return written
