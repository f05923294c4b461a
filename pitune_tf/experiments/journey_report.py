"""The report of ``trainers.pipeline``'s journey (``RUN/report.md``): the population stage,
the phone bundle, the on-device personalization, one user's predictions from the bundle."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pitune_tf.common import tables
from pitune_tf.common.atomic import write_text
from pitune_tf.common.plotting import markdown_images, rebase_images
from pitune_tf.common.run_files import RunFiles
from pitune_tf.population.command_line import metrics_markdown
from pitune_tf.population.plots import plot_paths

PHONE_FILES = ("student.tflite", "labels.txt", "vocab.json", "preprocessing.json")
EXAMPLE_USER_FILE = "example_user.csv"  # RUN/data/: one individual user's raw events
TIMINGS_FILE = "pipeline_timings.json"  # RUN/: seconds of each stage (bench/quickstart.py)


def write_example_user(run_dir) -> Path:
    """The first individual user's raw events (``user_id, timestamp, event, location``), as a
    user's own log would come: ``RUN/data/example_user.csv``."""
    events = pd.read_parquet(Path(run_dir) / "data" / "individual.parquet")
    user = events[events["user_id"] == events["user_id"].min()]
    path = Path(run_dir) / "data" / EXAMPLE_USER_FILE
    write_text(path, user.drop(columns=["intent"], errors="ignore").to_csv(index=False))
    return path


def write_report(run_dir, timings):
    """RUN/report.md: population test metrics and figures, the phone bundle, the on-device
    table (and the Keras one with ``--all-methods``), one user's predictions, the forgotten
    sets."""
    run_dir = Path(run_dir)
    run = RunFiles(run_dir)
    metrics = run.json("metrics.json")
    device = run.json("device/summary.json")
    figures = markdown_images(plot_paths(run_dir), run_dir)
    predictions = pd.read_csv(run_dir / "predictions.csv")
    lines = [
        "# PITuning demo report", "",
        f"Run directory `{run_dir.name}`; " + ", ".join(
            f"{name} {seconds:.0f} s" for name, seconds in timings.items()) + ".", "",
        "## Population stage (test windows of the population users)", "",
        metrics_markdown(metrics), "",
        *(["Figures (`plots/`): training curves, IAT attention map (PITuning Fig. 6), "
           "predicted vs true intent distribution (Fig. 7), confusion matrix.", ""]
          + [f"{line}\n" for line in figures] if figures else []),
        "## Phone bundle", "",
        tables.markdown_table(["file", "KiB"], [
            (f"`{name}`", (run_dir / name).stat().st_size / 1024)
            for name in PHONE_FILES if (run_dir / name).exists()], digits=1),
        "",
        "## On-device personalization (LiteRT train signatures, `device/`)", "",
        rebase_images((run_dir / "device" / "results.md").read_text(), "device"), "",
    ]
    if (run_dir / "individual" / "results.md").exists():
        lines += ["## Every method (Keras, `individual/`)", "",
                  rebase_images((run_dir / "individual" / "results.md").read_text(), "individual"),
                  ""]
    lines += ["## Next intents from the bundle (`predictions.csv`)", "",
              f"From `data/{EXAMPLE_USER_FILE}` and `student.tflite`:", "",
              tables.markdown_table(["user", "rank", "intent", "probability"], [
                  (r.user_id, r.rank, r.intent, float(r.probability))
                  for r in predictions.itertuples()], digits=3), ""]
    forget = device.get("forget_sets", {})
    if forget:
        sizes = [len(v) for v in forget.values()]
        lines += ["## Forgotten sets (PITuning Eq. 8-10)", "",
                  f"|F| per user: min {min(sizes)}, max {max(sizes)}, "
                  f"mean {sum(sizes) / len(sizes):.1f}.", ""]
        lines += [f"- {user}: {', '.join(f) or '(none)'}" for user, f in list(forget.items())[:10]]
        lines.append("")
    write_text(run_dir / "report.md", "\n".join(lines))
    return run_dir / "report.md"
