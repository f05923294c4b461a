"""Two individual-stage output directories side by side (e.g. the LiteRT backend beside the
Keras backend, ``--compare``): ``compare.md``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pitune_tf.common.run_files import RunFiles
from pitune_tf.common.tables import markdown_table
from pitune_tf.metrics import INTENT_METRIC_COLUMNS as TABLE_COLUMNS

RUN_FILES = ("per_user.csv", "summary.json")  # what a side reads


def compare_tables(this_dir, other_dir, labels=("litert", "keras")) -> str:
    """Markdown: pooled metrics per method of two individual-stage output directories side
    by side (e.g. the LiteRT backend beside the Keras backend), and the largest per-user
    metric difference (from the two ``per_user.csv``)."""
    this, other = (RunFiles(d, what="--compare: individual output directory")
                   for d in (this_dir, other_dir))
    for side in (this, other):
        for name in RUN_FILES:
            side.file(name, hint="run trainers.individual first")
    dev = pd.read_csv(this / "per_user.csv")
    ker = pd.read_csv(other / "per_user.csv")
    dev_sum = this.json("summary.json")["methods"]
    ker_sum = other.json("summary.json")["methods"]
    rows, diffs = [], {}
    for method in dev_sum:
        if method not in ker_sum:
            continue
        for name, s in zip(labels, (dev_sum[method], ker_sum[method])):
            rows.append([method, name, *(s["pooled"][k] for k, _ in TABLE_COLUMNS),
                         s["users"]])
        d = dev[dev.method == method].set_index("user_id")
        k = ker[ker.method == method].set_index("user_id")
        common = d.index.intersection(k.index)
        cols = [c for c, _ in TABLE_COLUMNS]
        diffs[method] = (float(np.abs(d.loc[common, cols].to_numpy()
                                      - k.loc[common, cols].to_numpy()).max())
                         if len(common) else float("nan"), len(common))
    lines = [f"## {labels[0]} vs {labels[1]}, same users, same options", "",
             markdown_table(["Method", "path", *(c for _, c in TABLE_COLUMNS), "users"], rows), "",
             markdown_table(["Method", "users compared", "max per-user metric difference"],
                            [[m, n, None if math.isnan(v) else f"{v:.2e}"]
                             for m, (v, n) in diffs.items()])]
    return "\n".join(lines) + "\n"
