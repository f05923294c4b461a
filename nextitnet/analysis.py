"""Figures and tables of the UAF paper from run results: Figure 3 (per-block utilisation),
Figure 4 (validation curves) and Table 2 (markdown)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pitune_tf.common.atomic import atomic_path  # noqa: E402

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
}
TABLE_ORDER = list(LABELS)


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_utilisation(rows: dict[str, list[float]], path) -> None:
    """Heatmap: one row per mode, one column per residual block, colour = share of users
    through the fine-tuned block (Figure 3)."""
    names = list(rows)
    values = np.array([rows[n] for n in names], dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * values.shape[1], 0.8 + 0.5 * len(names)))
    image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(values.shape[1]), [str(i + 1) for i in range(values.shape[1])])
    ax.set_yticks(range(len(names)), [LABELS.get(n, n) for n in names])
    ax.set_xlabel("residual block")
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=8)
    fig.colorbar(image, ax=ax, label="fine-tuned block utilisation")
    _save(fig, path)


def plot_curves(curves: dict[str, list[float]], path, metric="hr@5") -> None:
    """Validation ``metric`` per epoch, one line per mode (Figure 4)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = plt.get_cmap("tab20")
    for index, (name, values) in enumerate(curves.items()):
        ax.plot(range(1, len(values) + 1), values, marker="o", color=colours(index % 20),
                linestyle="-" if name in ("hard", "soft", "rl", "random") else "--",
                label=LABELS.get(name, name))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def markdown_table(results: dict[str, dict], columns, title="") -> str:
    """Rows in the order of the paper's Table 2; the best value of each column in bold."""
    names = [n for n in TABLE_ORDER if n in results] + [n for n in results if n not in TABLE_ORDER]
    best = {c: max((results[n].get(c, float("-inf")) for n in names), default=None) for c in columns}
    lines = [f"**{title}**", ""] if title else []
    lines.append("| Model | " + " | ".join(columns) + " |")
    lines.append("|---" * (len(columns) + 1) + "|")
    for name in names:
        cells = []
        for c in columns:
            v = results[name].get(c)
            text = "n/a" if v is None else f"{v:.4f}"
            cells.append(f"**{text}**" if v is not None and v == best[c] else text)
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def curve_path(run_dir, name) -> Path:
    return Path(run_dir) / f"{name}.png"
