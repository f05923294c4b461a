"""The report files of a UAF run: metrics.json, table.md (Table 2 / Table 7, linking the
figures), utilisation.json/.png (Figure 3) and curves.png (the validation metric that selects
the epoch, and HR@5 as in Figure 4). A figure that fails is a warning, never a failed run."""

from __future__ import annotations

import re
from pathlib import Path

from nextitnet import analysis
from nextitnet.data.encoding import PROFILE_LABELS
from pitune_tf.common.atomic import write_json, write_text
from pitune_tf.common.output_set import output_set
from pitune_tf.common.plotting import markdown_images, never_fails

PROFILE_SCORES = ("accuracy", "f1")
RANK_METRICS = ("mrr", "hr", "ndcg")  # column order per cut-off
# the run-level report files, replaced as one set (a run's other files stay)
REPORT_FILES = ("metrics.json", "table.md", "utilisation.json", "utilisation.png", "curves.png")


def rec_columns(scores: dict, prefix="") -> list[str]:
    """The ``prefix``-ed metric@k keys of ``scores`` by cut-off, then MRR, HR, NDCG."""
    found = [re.fullmatch(rf"{prefix}({'|'.join(RANK_METRICS)})@(\d+)", key) for key in scores]
    found = [m for m in found if m]
    return [m.string for m in sorted(found, key=lambda m: (int(m.group(2)), RANK_METRICS.index(m.group(1))))]


def write_reports(run_dir, results, task_name, title) -> str:
    """Writes the reports of the modes in ``results`` (``{mode: metrics}``, or
    ``{mode: {label: metrics}}`` for the profile task); returns the markdown table. The
    files (``REPORT_FILES``) replace an earlier report's as one set
    (:func:`pitune_tf.common.output_set.output_set`)."""
    with output_set(run_dir, REPORT_FILES) as new:
        return _write_report_files(new, results, task_name, title)


def _write_report_files(run_dir, results, task_name, title) -> str:
    write_json(run_dir / "metrics.json", results)
    if task_name == "recommendation":
        flat = {m: r["test"] for m, r in results.items()}
        first = next(iter(flat.values()))
        runs = results
        sampled = analysis.results_markdown(
            flat, rec_columns(first), f"{title}: 1 positive + {first.get('n_negatives', '?')} sampled negatives")
        full = analysis.results_markdown(flat, rec_columns(first, "full_"), f"{title}: full ranking")
        table = sampled + "\n" + full
    else:
        flat = {m: {f"{label} {key}": r[label]["test"][key] for label in r for key in PROFILE_SCORES}
                for m, r in results.items()}
        columns = [f"{label} {key}" for label in PROFILE_LABELS for key in PROFILE_SCORES
                   if any(f"{label} {key}" in v for v in flat.values())]
        runs = {m: r[next(iter(r))] for m, r in results.items()}  # first label's run per mode
        table = analysis.results_markdown(flat, columns, title)
    figures = []
    utilisation = {m: r["utilisation"] for m, r in runs.items() if r.get("utilisation")}
    if utilisation:
        write_json(run_dir / "utilisation.json", utilisation)
        with never_fails(run_dir / "utilisation.png"):
            analysis.plot_utilisation(utilisation, run_dir / "utilisation.png")
            figures.append(run_dir / "utilisation.png")
    runs = {m: r for m, r in runs.items() if r.get("val_curve")}  # trained modes only
    if runs:
        with never_fails(run_dir / "curves.png"):
            analysis.plot_curves(curve_panels(runs), run_dir / "curves.png",
                                 selection=next(iter(runs.values()))["val_metric"],
                                 best_epochs={m: r.get("best_epoch") for m, r in runs.items()})
            figures.append(run_dir / "curves.png")
    lines = markdown_images(figures, run_dir)
    write_text(run_dir / "table.md", table + "".join(f"\n{line}\n" for line in lines))
    return table


def printed_table(run_dir) -> str:
    """The tables of ``run_dir/table.md`` without its figure links: what a run prints last."""
    text = (Path(run_dir) / "table.md").read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.startswith("![")).rstrip() + "\n"


def curve_panels(runs) -> dict[str, dict[str, list[float]]]:
    """``{metric: {mode: validation curve}}`` of the fine-tuned modes ``runs``: the metric
    that selects the epoch (``val_metric``, validation MRR@k) first, then HR@5 (the paper's
    Figure 4) when every mode scored it per epoch."""
    selection = next(iter(runs.values()))["val_metric"]
    panels = {selection: {m: r["val_curve"] for m, r in runs.items()}}
    if selection != "hr@5" and all("hr@5" in r.get("val_curves", {}) for r in runs.values()):
        panels["hr@5"] = {m: r["val_curves"]["hr@5"] for m, r in runs.items()}
    return panels
