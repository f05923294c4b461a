"""The individual stage's figures, written beside ``per_user.csv``: ``gains.png``, each user's
gain of each method over ``none`` (the shipped student) on Prec_w and Rec_m, and beside each
box the pooled gain with its 95% paired-bootstrap interval (``summary.json``'s ``versus``);
``per_intent.png``, each intent's recall and how often it is predicted per test window of it,
intents from the population's most to least frequent (``per_intent.csv``): what the per-user
models miss, beside the oracle.

A figure that fails is logged as a warning and skipped (``never_fails``): plots never fail
a run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pitune_tf.common.plotting import never_fails, pyplot, save_png

GAINS = "gains.png"
PER_INTENT = "per_intent.png"
PER_INTENT_METHODS = ("none", "prior", "finetune", "pituning", "oracle")  # the lines drawn, when present
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


def plot_per_intent(per_intent, path) -> Path:
    """Two panels over the intents (``per_intent.csv``'s order): recall, and predicted /
    support (1: predicted as often as it occurs), one line per method of PER_INTENT_METHODS."""
    plt = pyplot()
    methods = [m for m in PER_INTENT_METHODS if m in set(per_intent["method"])]
    intents = list(dict.fromkeys(per_intent["intent"]))
    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(max(6.0, 0.45 * len(intents) + 2), 6.4))
    for ax, column, label in zip(axes, ("recall", "predicted_ratio"), ("recall", "predicted / support")):
        for method in methods:
            part = per_intent[per_intent["method"] == method].set_index("intent")[column].reindex(intents)
            ax.plot(range(len(intents)), part.to_numpy(float), marker="o", markersize=3, label=method,
                    linestyle="--" if method == "oracle" else "-")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].axhline(1.0, color="0.3", linewidth=1)
    axes[1].set_xticks(range(len(intents)), intents, rotation=45, ha="right", fontsize=8)
    axes[0].legend(fontsize=8)
    axes[0].set_title("Per intent, pooled over users (test windows); intents from the population's "
                      "most to least frequent", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)


def write_individual_plots(out, per_user, summary=None, per_intent=None) -> list[Path]:
    """Writes ``out/gains.png`` when ``per_user`` has ``none`` rows and another method, with
    the pooled intervals of ``summary`` when given, and ``out/per_intent.png`` from
    ``per_intent`` when given (a failure is a warning); returns the paths written."""
    written = []
    if per_intent is not None and set(per_intent["method"]) & set(PER_INTENT_METHODS):
        with never_fails(Path(out) / PER_INTENT):
            written.append(plot_per_intent(per_intent, Path(out) / PER_INTENT))
    if "none" not in set(per_user["method"]) or per_user["method"].nunique() < 2:
        return written
    with never_fails(Path(out) / GAINS):
        written.insert(0, plot_gains(per_user, Path(out) / GAINS, summary=summary))
    return written
