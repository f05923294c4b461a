"""Prints what ``python -m trainers.uaf`` left in one or more run directories.

    python scripts/print_uaf_summary.py runs/uaf_all runs/uaf_ml1m

For each run: the data summary and split sizes, the results table (``table.md``), each
mode's best validation epoch and training time, and the per-block utilisation of the
fine-tuned blocks (Figure 3).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pitune_tf.common.cli import run_main
from pitune_tf.common.run_files import RunFiles


def summarize(run_dir: Path) -> str:
    run = RunFiles(run_dir, required=("data.json", "metrics.json", "table.md"),
                   what="finished trainers.uaf run")
    data, metrics = run.json("data.json"), run.json("metrics.json")
    lines = [f"# {run_dir}", "", f"data: {json.dumps(data['summary'])}"]
    for task, info in data["tasks"].items():
        lines.append(f"task {task}: sizes {info['sizes']}, outputs {info['outputs']}, dropped {info['dropped']}")
    lines += ["", (run_dir / "table.md").read_text()]
    for mode, result in metrics.items():
        runs = {"": result} if "test" in result else result
        for label, r in runs.items():
            util = r.get("utilisation")
            lines.append(
                f"{mode}{' ' + label if label else ''}: best epoch {r['best_epoch']}, {r['seconds']} s, "
                f"{r['trainable_parameters']} trainable parameters"
                + (f", utilisation {[round(u, 2) for u in util]}" if util else "")
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="trainers.uaf run directories")
    args = parser.parse_args(argv)
    for run in args.runs:
        print(summarize(Path(run)))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
