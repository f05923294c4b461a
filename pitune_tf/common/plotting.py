"""What every plot of the project shares: matplotlib without a display (Agg), PNGs written
atomically, integer epoch axes with the kept epoch marked, and plotting that never fails a run.

Each package keeps its own figures in one module (``pitune_tf.population.plots``,
``pitune_tf.individual.plots``, ``nextitnet.analysis``, ``pitune_tf.data.summary``) built on
these helpers; the experiment suites' tables of ``<metric>_mean`` / ``<metric>_std``
(:func:`pitune_tf.common.experiment_suite.mean_std`) are drawn by :func:`bar_chart` and
:func:`line_chart`.

matplotlib is imported on first use (:func:`pyplot`): ``python -m pitune_tf.data --help``
imports this module.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pitune_tf.common.atomic import atomic_path

logger = logging.getLogger(__name__)

PNG_DPI = 110
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # the first 8 bytes of every PNG file


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed; imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path) -> Path:
    """Writes ``fig`` to ``path`` as PNG atomically (never a half-written file) and closes it."""
    plt = pyplot()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=PNG_DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def epoch_axis(ax, n_epochs, best_epoch=None, label=True) -> None:
    """Integer ticks 1..``n_epochs`` on the x axis labelled "epoch"; a dotted vertical line at
    ``best_epoch`` (the epoch whose weights are kept) when given, in the legend with
    ``label``."""
    from matplotlib.ticker import FixedLocator, MaxNLocator  # deferred: see the module docstring

    n_epochs = max(int(n_epochs), 1)
    ax.set_xlabel("epoch")
    # every epoch up to 10 (MaxNLocator(integer=True) ticks a 1-epoch axis at 0.6 and 1.2)
    ax.xaxis.set_major_locator(FixedLocator(range(1, n_epochs + 1)) if n_epochs <= 10
                               else MaxNLocator(integer=True, nbins=10))
    ax.set_xlim(0.5, n_epochs + 0.5)
    if best_epoch:
        ax.axvline(best_epoch, color="0.4", linestyle=":", linewidth=1.2,
                   label=f"kept epoch {best_epoch}" if label else None)


@contextlib.contextmanager
def never_fails(what):
    """Runs a plotting block; an exception in it is logged as a warning and swallowed, so a
    figure never fails the run whose numbers it shows (KeyboardInterrupt still stops it; a
    full disk too: it fails the run, whose earlier outputs then stay whole, rather than
    leave a result without its figure).

    Args:
        what: str. Names the figure in the warning, e.g. ``"RUN/plots/confusion.png"``.
    """
    try:
        yield
    except Exception as err:  # noqa: BLE001  (a plot must never fail a run)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        logger.warning("plot %s not written: %s: %s", what, type(err).__name__, err)
        with contextlib.suppress(Exception):
            pyplot().close("all")


def is_png(path) -> bool:
    """Whether ``path`` is a file that starts with the PNG signature."""
    path = Path(path)
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE


def markdown_images(paths, base) -> list[str]:
    """Markdown lines linking each existing PNG of ``paths`` relative to ``base`` (the folder
    of the markdown file), e.g. ``![training curves](plots/training_curves.png)``."""
    lines = []
    for path in paths:
        path = Path(path)
        if path.is_file():
            rel = path.relative_to(base).as_posix()
            lines.append(f"![{path.stem.replace('_', ' ')}]({rel})")
    return lines


_RELATIVE_IMAGE = re.compile(r"!\[([^\]]*)\]\((?![a-zA-Z][a-zA-Z0-9+.-]*:|/)([^)\s]+)\)")


def rebase_images(markdown, prefix) -> str:
    """``markdown`` with each relative image link prefixed by the folder ``prefix``, for a
    file's text included in a file one folder up (``![x](gains.png)`` ->
    ``![x](individual/gains.png)``); absolute paths and URLs stay."""
    prefix = str(prefix).rstrip("/")
    return _RELATIVE_IMAGE.sub(lambda m: f"![{m.group(1)}]({prefix}/{m.group(2)})", markdown)


def bar_chart(frame: pd.DataFrame, label_col, metrics, path, title="", ylabel="") -> None:
    """Grouped bars: one group per metric, one bar per row of ``frame`` (labelled by
    ``label_col``), heights ``<metric>_mean`` (or ``<metric>``) with ``<metric>_std`` as
    error bars when present."""
    plt = pyplot()
    metrics = [m for m in metrics if f"{m}_mean" in frame.columns or m in frame.columns]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(metrics) + 0.25 * len(frame)), 4))
    width = 0.8 / max(len(frame), 1)
    colours = plt.get_cmap("tab20")
    for i, (_, row) in enumerate(frame.iterrows()):
        heights = [row.get(f"{m}_mean", row.get(m)) for m in metrics]
        errors = [row.get(f"{m}_std", np.nan) for m in metrics]
        errors = None if all(pd.isna(e) for e in errors) else np.nan_to_num(np.asarray(errors, float))
        ax.bar(np.arange(len(metrics)) + (i - (len(frame) - 1) / 2) * width, heights, width,
               yerr=errors, capsize=2, color=colours(i % 20), label=str(row[label_col]))
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    save_png(fig, path)


def line_chart(frame: pd.DataFrame, x_col, series_col, metrics, path, title="", xlabel="") -> None:
    """One panel per metric: ``<metric>_mean`` against ``x_col``, one line per value of
    ``series_col``, the std as a band."""
    plt = pyplot()
    metrics = [m for m in metrics if f"{m}_mean" in frame.columns]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, part in frame.groupby(series_col, sort=False):
            part = part.sort_values(x_col)
            mean = part[f"{metric}_mean"].to_numpy(float)
            std = np.nan_to_num(part[f"{metric}_std"].to_numpy(float))
            ax.plot(part[x_col], mean, marker="o", label=str(name))
            ax.fill_between(part[x_col], mean - std, mean + std, alpha=0.15)
        ax.set_xlabel(xlabel or x_col)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    save_png(fig, path)


def value_panels(panels: dict, values, path, xlabel="", zero=0.0) -> None:
    """One panel per entry of ``panels`` (``{title: {line label: y per value}}``), side by
    side with a shared y axis, the x axis the categories ``values``, a grey line at ``zero``;
    the first panel carries the legend."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), sharey=True, squeeze=False)
    values = [str(v) for v in values]
    for ax, (title, lines) in zip(axes[0], panels.items()):
        for label, y in lines.items():
            ax.plot(values, np.asarray(y, float), marker="o", label=label)
        ax.axhline(zero, color="grey", linewidth=0.8)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path)
