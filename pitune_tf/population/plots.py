"""The population run's figures, written to ``RUN/plots/`` beside ``metrics.json``:

- ``training_curves.png``: the teacher's and the student's training and validation losses
  and accuracy per epoch (``training.json``'s history), the kept epoch marked;
- ``attention_map.png``: the IAT attention map per intent over the L history positions,
  averaged over test windows (PITuning Fig. 6), for each model with IAT;
- ``intent_distribution.png``: the predicted against the true intent distribution on the
  test windows (PITuning Fig. 7);
- ``confusion_matrix.png``: true against predicted intent on the test windows, each row
  normalized by the true intent's count.

A figure that fails is logged as a warning and skipped (``never_fails``): plots never fail
a run. The figures of a finished run are drawn again by :func:`plot_run` (``python -m
pitune_tf.population.plots --run RUN``). This module loads no TensorFlow until then (the
journey's report reads :func:`plot_paths`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from pitune_tf.common.cli import run_main
from pitune_tf.common.plotting import epoch_axis, never_fails, pyplot, save_png
from pitune_tf.metrics import confusion_counts

logger = logging.getLogger(__name__)

PLOTS = "plots"  # inside the run directory
FIGURES = ("training_curves.png", "attention_map.png", "intent_distribution.png",
           "confusion_matrix.png")
MAX_ATTENTION_WINDOWS = 4096  # test windows averaged for the attention map
MODEL_COLOURS = {"true": "0.55", "teacher": "tab:blue", "student": "tab:orange"}


def plot_paths(run_dir) -> list[Path]:
    """The population figures' paths in ``run_dir`` (existing or not), in FIGURES order."""
    return [Path(run_dir) / PLOTS / name for name in FIGURES]


# ----------------------------------------------------------------------------- data


def attention_shares(weights) -> np.ndarray:
    """Each window's attention of each intent as shares of its positions:
    ``|w_ij| / sum_j |w_ij|`` (w of PITuning Eq. 3; magnitudes, since the DIN weights of
    ``normalize="none"`` / ``"mean"`` are not normalized and may be negative; with
    ``"softmax"`` the shares are the weights themselves). Padding (w = 0) gets share 0; a
    row with no weight at all stays 0.

    Args:
        weights: float ``[n, N_I, L]``.

    Returns:
        float64 ``[n, N_I, L]``; every row with some weight sums to 1.
    """
    magnitude = np.abs(np.asarray(weights, dtype=np.float64))  # [n, N_I, L]
    total = magnitude.sum(axis=-1, keepdims=True)  # [n, N_I, 1]
    return np.divide(magnitude, total, out=np.zeros_like(magnitude), where=total > 0)


def mean_attention_map(weights) -> np.ndarray:
    """PITuning Fig. 6's map: the mean over windows of :func:`attention_shares`, per intent
    over the windows where the intent has any weight.

    Args:
        weights: float ``[n, N_I, L]``, IAT weights of n windows.

    Returns:
        float64 ``[N_I, L]``; each row sums to 1 (0 for an intent without weight anywhere).
    """
    shares = attention_shares(weights)  # [n, N_I, L]
    counted = (shares.sum(axis=-1) > 0).sum(axis=0)  # [N_I]
    return shares.sum(axis=0) / np.maximum(counted, 1)[:, None]


def attention_map(model, windows, batch_size, max_windows=MAX_ATTENTION_WINDOWS, seed=0):
    """:func:`mean_attention_map` of ``model``'s IAT (``IntentPredictor.forward(...,
    return_attention=True)``, inference mode) on at most ``max_windows`` of ``windows``
    (a seeded subsample); None for a model without IAT or no windows.

    Returns:
        float64 ``[N_I, L]`` or None.
    """
    if getattr(model, "attention", None) is None or len(windows) == 0:
        return None
    windows = windows.subsample(max_windows, seed)
    total, counted = None, None
    for features, _ in windows.to_dataset(batch_size, shuffle=False):
        weights = model.forward(features, training=False, return_attention=True)["attention"]
        shares = attention_shares(weights.numpy())  # [batch, N_I, L]
        batch_total, batch_counted = shares.sum(axis=0), (shares.sum(axis=-1) > 0).sum(axis=0)
        total = batch_total if total is None else total + batch_total
        counted = batch_counted if counted is None else counted + batch_counted
    return total / np.maximum(counted, 1)[:, None]


def intent_shares(ids, n_intents) -> np.ndarray:
    """The share of each intent id among ``ids`` (``[n_intents]``, sums to 1 when n > 0)."""
    counts = np.bincount(np.asarray(ids, dtype=np.int64), minlength=n_intents)[:n_intents]
    return counts / max(len(ids), 1)


def normalized_confusion(labels, predictions, n_intents) -> np.ndarray:
    """Confusion counts ``[true, predicted]`` divided by each true intent's count (rows sum
    to 1; NaN rows for intents absent from ``labels``)."""
    counts = confusion_counts(labels, predictions, n_intents).astype(np.float64)
    support = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, support, out=np.full_like(counts, np.nan), where=support > 0)


# ----------------------------------------------------------------------------- figures

_CURVE_COLOURS = {"train": "tab:blue", "val": "tab:orange"}


def plot_training_curves(training, path) -> Path:
    """Training and validation loss and accuracy per epoch, one row per phase.

    Args:
        training: dict. ``training.json``'s content: ``{phase: {"epochs", "best_epoch",
            "monitor", "history": {"epoch": [...], name: [...]}}}``.
        path: the PNG's path.
    """
    plt = pyplot()
    phases = [p for p in ("teacher", "student") if training.get(p, {}).get("history", {}).get("epoch")]
    if not phases:
        raise ValueError("training.json holds no per-epoch history")
    fig, axes = plt.subplots(len(phases), 2, figsize=(10, 3.4 * len(phases)), squeeze=False)
    for row, phase in zip(axes, phases):
        record = training[phase]
        history = record["history"]
        epochs = history["epoch"]
        monitor = (record.get("monitor") or "val_loss").removeprefix("val_")
        losses = list(dict.fromkeys(["loss", monitor]))
        for ax, names, ylabel in ((row[0], losses, "loss"), (row[1], ["accuracy"], "accuracy")):
            for name in names:
                for split, key in (("train", name), ("val", f"val_{name}")):
                    values = history.get(key)
                    if not values or all(v is None for v in values):
                        continue
                    main = name == monitor or len(names) == 1
                    label = f"{split} {name}" + ("" if main or name != "loss" else " (total)")
                    values = [np.nan if v is None else v for v in values]
                    ax.plot(epochs, values, "-" if main else "--", marker="o",
                            color=_CURVE_COLOURS[split], label=label)
                    best = record.get("best_epoch")
                    if key == f"val_{monitor}" and best in epochs:
                        ax.plot(best, values[epochs.index(best)], "*", markersize=14,
                                color="tab:red", label=f"kept: epoch {best}", zorder=5)
            epoch_axis(ax, record.get("epochs") or max(epochs), record.get("best_epoch"),
                       label=ylabel != "loss")  # the loss panel's star is in its legend
            ax.set_ylabel(ylabel)
            ax.set_title(f"{phase}: {ylabel}" + (f" (kept epoch by val {monitor})"
                                                 if ylabel == "loss" else ""))
            if len(epochs) == 1:  # e.g. the tiny preset: no curve to draw
                ax.text(0.02, 0.03, "one epoch: one point per curve", transform=ax.transAxes,
                        fontsize=8, color="0.4")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)


def plot_attention_maps(maps, intents, path) -> Path:
    """PITuning Fig. 6: one heatmap per model, intents down, history positions across.

    Args:
        maps: dict ``{model name: [N_I, L] map}`` (:func:`attention_map`).
        intents: list of ``(intent id, intent name)`` rows to show.
        path: the PNG's path.
    """
    plt = pyplot()
    maps = {name: m for name, m in maps.items() if m is not None}
    if not maps:
        raise ValueError("no model with intent attention")
    length = next(iter(maps.values())).shape[1]
    ids = [i for i, _ in intents]
    fig, axes = plt.subplots(1, len(maps), squeeze=False,
                             figsize=(1.5 + 4.5 * len(maps) + 0.12 * length,
                                      1.4 + 0.28 * len(intents)))
    for ax, (name, values) in zip(axes[0], maps.items()):
        image = ax.imshow(values[ids], aspect="auto", cmap="viridis", interpolation="nearest")
        step = 1 if length <= 12 else 5
        ax.set_xticks(range(length), [str(j + 1) if (length - 1 - j) % step == 0 else ""
                                      for j in range(length)], fontsize=8)
        ax.set_yticks(range(len(intents)), [n[:24] for _, n in intents], fontsize=8)
        ax.set_xlabel(f"history position (1 = oldest, {length} = newest event)")
        ax.set_title(f"{name}: IAT attention per intent")
        fig.colorbar(image, ax=ax, label="mean share of |attention|", fraction=0.05)
    fig.suptitle("Intent attention over the window (PITuning Fig. 6), mean over test windows",
                 fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def plot_intent_distribution(labels, predictions, intents, path) -> Path:
    """PITuning Fig. 7: the true intent shares of the test windows beside each model's
    predicted (argmax) shares, intents by true share.

    Args:
        labels: int ``[n]`` true intent ids.
        predictions: dict ``{model name: int [n] predicted ids}``.
        intents: list of ``(intent id, intent name)`` rows to show.
        path: the PNG's path.
    """
    plt = pyplot()
    n_intents = max(i for i, _ in intents) + 1
    shares = {"true": intent_shares(labels, n_intents),
              **{name: intent_shares(p, n_intents) for name, p in predictions.items()}}
    order = sorted(intents, key=lambda row: -shares["true"][row[0]])
    x = np.arange(len(order))
    width = 0.8 / len(shares)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(order) + 2), 4.5))
    for k, (name, values) in enumerate(shares.items()):
        ax.bar(x + (k - (len(shares) - 1) / 2) * width, [values[i] for i, _ in order], width,
               label=name if name == "true" else f"{name} (predicted)",
               color=MODEL_COLOURS.get(name))
    ax.set_xticks(x, [n[:20] for _, n in order], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("share of test windows")
    ax.set_title(f"Predicted vs true intent distribution, {len(labels)} test windows "
                 "(PITuning Fig. 7)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_png(fig, path)


def plot_confusion_matrices(labels, predictions, intents, path) -> Path:
    """Row-normalized confusion matrices (true intent down, predicted across), one per model.

    Args:
        labels: int ``[n]`` true intent ids.
        predictions: dict ``{model name: int [n] predicted ids}``.
        intents: list of ``(intent id, intent name)`` rows and columns to show.
        path: the PNG's path.
    """
    plt = pyplot()
    ids = [i for i, _ in intents]
    n_intents = max(ids) + 1
    size = 1.5 + 0.3 * len(ids)
    fig, axes = plt.subplots(1, len(predictions), squeeze=False,
                             figsize=((size + 1.4) * len(predictions), size + 1.2))
    names = [n[:20] for _, n in intents]
    for ax, (name, predicted) in zip(axes[0], predictions.items()):
        matrix = normalized_confusion(labels, predicted, n_intents)[np.ix_(ids, ids)]
        image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.0, vmax=1.0, cmap="Blues",
                          interpolation="nearest")
        if len(ids) <= 12:
            for (r, c), v in np.ndenumerate(matrix):
                if np.isfinite(v) and v >= 0.005:
                    ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="w" if v > 0.6 else "k")
        ax.set_xticks(range(len(ids)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(ids)), names, fontsize=7)
        ax.set_xlabel("predicted intent")
        ax.set_ylabel("true intent")
        ax.set_title(f"{name}: share of each true intent")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f"Confusion matrix on {len(labels)} test windows, rows normalized by the "
                 "true intent (blank: not in the test windows)", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


# ----------------------------------------------------------------------------- the run


def shown_intents(tokens, n_reserved, *id_arrays) -> list[tuple[int, str]]:
    """``(id, name)`` of the non-reserved intents that occur in any of ``id_arrays``."""
    seen = set()
    for ids in id_arrays:
        seen.update(int(i) for i in np.unique(ids))
    return [(i, tokens[i]) for i in range(n_reserved, len(tokens)) if i in seen]


def write_population_plots(run_dir, training, models, test, scores, tokens, n_reserved,
                           batch_size) -> list[Path]:
    """Writes the population figures (FIGURES) into ``run_dir/plots``; each one that fails
    is logged as a warning and skipped. Returns the paths written.

    Args:
        run_dir: the run directory.
        training: dict. ``training.json``'s content (or None).
        models: dict ``{"teacher": model, "student": model}`` (IntentPredictor).
        test: Windows. The test windows.
        scores: dict ``{model name: float [n_test, N_I]}`` on ``test`` (probabilities or
            logits: only their argmax is used).
        tokens: list of str. The intent vocabulary's tokens.
        n_reserved: int. Leading reserved intent ids (never labels; not shown).
        batch_size: int. Batch size of the attention pass. It runs eagerly, so every
            activation of a batch is alive at once: the training batch, not the larger one
            of graph-mode inference (4x the training batch added ~160 MB to the
            quickstart's peak, which is this pass).
    """
    out = Path(run_dir) / PLOTS
    written = []
    curves, attention, distribution, confusion = plot_paths(run_dir)
    if training:
        with never_fails(curves):
            written.append(plot_training_curves(training, curves))
    if len(test) == 0:
        return written
    with never_fails(out):
        labels = np.asarray(test.label)
        predictions = {name: np.asarray(s).argmax(axis=1) for name, s in scores.items()}
        intents = shown_intents(tokens, n_reserved, labels, *predictions.values())
        with never_fails(attention):
            maps = {name: attention_map(model, test, batch_size) for name, model in models.items()}
            if any(m is not None for m in maps.values()):
                all_intents = [(i, tokens[i]) for i in range(n_reserved, len(tokens))]
                written.append(plot_attention_maps(maps, all_intents, attention))
        with never_fails(distribution):
            written.append(plot_intent_distribution(labels, predictions, intents, distribution))
        with never_fails(confusion):
            written.append(plot_confusion_matrices(labels, predictions, intents, confusion))
    logger.info("plots written to %s", out)
    return written


def plot_run(run_dir) -> list[Path]:
    """(Re)writes the figures of a finished population run from its files: the windows are
    rebuilt from the run's config (its data files, or the embedded synthetic data) and both
    models scored again on the test windows. Returns the paths written.

    Raises:
        UserInputError: the run or its data cannot be read, or the data no longer gives the
            run's intent vocabulary.
    """
    from pitune_tf.population.figure_inputs import figure_inputs  # deferred: TensorFlow loads here

    return write_population_plots(**figure_inputs(run_dir))


def main(argv=None) -> int:
    """``python -m pitune_tf.population.plots --run RUN``: (re)writes ``RUN/plots/``."""
    parser = argparse.ArgumentParser(prog="python -m pitune_tf.population.plots",
                                     description="(Re)write a population run's figures in RUN/plots/.")
    parser.add_argument("--run", required=True, help="a finished population run directory")
    args = parser.parse_args(argv)
    for path in plot_run(args.run):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
