"""Figures and tables of the UAF paper from run results: Figure 3 (per-block utilisation),
Figure 4 (validation curves) and Table 2 (markdown)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pitune_tf.common import tables
from pitune_tf.common.plotting import epoch_axis, pyplot, save_png

LABELS = {
    "mostpop": "MostPop",
    "random-items": "Random",
    "finetune-zero": "Finetune-Zero",
    "finetune-cls": "Finetune-CLS",
    "finetune-last1": "Finetune-Last1",
    "finetune-last2": "Finetune-Last2",
    "finetune-all": "Finetune-All",
    "mtl": "MTL",
    "peterrec": "PeterRec",
    "random": "UAF-Random",
    "hard": "UAF-Hard",
    "soft": "UAF-Soft",
    "rl": "UAF-RL",
    "oracle": "Oracle",  # the data's own target distribution (synthetic data)
}
TABLE_ORDER = list(LABELS)


def plot_utilisation(rows: dict[str, list[float]], path) -> None:
    """Heatmap: one row per mode, one column per residual block, colour = the block's
    utilisation, the share of users whose gate is on (Figure 3; ``gate_statistics``'s
    ``block_on_share``)."""
    plt = pyplot()
    names = list(rows)
    values = np.array([rows[n] for n in names], dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 + 0.7 * values.shape[1]), 1.0 + 0.5 * len(names)))
    image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(values.shape[1]), [str(i + 1) for i in range(values.shape[1])])
    ax.set_yticks(range(len(names)), [LABELS.get(n, n) for n in names])
    ax.set_xlabel("residual block")
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=8)
    ax.set_title("Fine-tuned block utilisation (UAF Figure 3)", fontsize=9)
    fig.colorbar(image, ax=ax, label="share of users whose gate is on")
    save_png(fig, path)


def plot_curves(panels: dict[str, dict[str, list[float]]], path, selection=None,
                best_epochs=None) -> None:
    """Validation curves per epoch, one line per mode, one panel per metric.

    Args:
        panels: ``{metric: {mode: [validation value per epoch]}}``, e.g. the selection metric
            (``mrr@5``) and HR@5 (the paper's Figure 4).
        path: the PNG's path.
        selection: str or None. The metric that picks each mode's kept epoch; its panel
            stars ``best_epochs``.
        best_epochs: dict ``{mode: kept epoch (1-based)}`` or None.
    """
    plt = pyplot()
    best_epochs = best_epochs or {}
    fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(6 * len(panels), 4.2))
    n_curves = max((len(c) for c in panels.values()), default=1)
    colours = plt.get_cmap("tab10" if n_curves <= 10 else "tab20")
    for ax, (metric, curves) in zip(axes[0], panels.items()):
        for index, (name, values) in enumerate(curves.items()):
            epochs = range(1, len(values) + 1)
            colour = colours(index % colours.N)
            ax.plot(epochs, values, marker="o", markersize=4, color=colour,
                    linestyle="-" if name in ("hard", "soft", "rl", "random") else "--",
                    label=LABELS.get(name, name))
            best = best_epochs.get(name)
            if metric == selection and best and best <= len(values):
                ax.plot(best, values[best - 1], "*", markersize=13, color=colour,
                        markeredgecolor="k", zorder=5)
        epoch_axis(ax, max((len(v) for v in curves.values()), default=1))
        ax.set_ylabel(f"validation {metric.upper()}")
        ax.set_title(f"validation {metric.upper()}"
                     + (" (selects the epoch; star: kept epoch)" if metric == selection
                        else " (UAF Figure 4)"), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def results_markdown(results: dict[str, dict], columns, title="") -> str:
    """Rows in the order of the paper's Table 2 (``n/a`` for a missing value); the best value
    of each column in bold (:func:`pitune_tf.common.tables.markdown_table`)."""
    names = [n for n in TABLE_ORDER if n in results] + [n for n in results if n not in TABLE_ORDER]
    rows = [[LABELS.get(name, name), *(results[name].get(c) for c in columns)] for name in names]
    table = tables.markdown_table(["Model", *columns], rows, missing="n/a",
                                  bold_best=range(1, len(columns) + 1))
    return "\n".join(([f"**{title}**", ""] if title else []) + [table]) + "\n"


def curve_path(run_dir, name) -> Path:
    return Path(run_dir) / f"{name}.png"
