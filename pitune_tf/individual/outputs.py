"""The individual stage's output files: ``per_user.csv``, ``per_intent.csv``, ``summary.json``,
``results.md``, ``gains.png``, ``per_intent.png`` and optionally ``predictions.csv`` (and ``compare.md``, the shard records and
the unfinished stage's user records), which replace an earlier run's as one set
(``OUTPUTS``, :func:`pitune_tf.common.output_set.output_set`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pitune_tf.common.atomic import atomic_path, write_json, write_text
from pitune_tf.common.plotting import markdown_images
from pitune_tf.individual.evaluation import per_intent_frame, predictions_frame
from pitune_tf.individual.methods import METHOD_ORDER
from pitune_tf.individual.plots import write_individual_plots
from pitune_tf.individual.report import markdown_tables
from pitune_tf.individual.resume import FINISHED_USERS
from pitune_tf.individual.shards import RECORDS
from pitune_tf.individual.summary import (
    device_models,
    method_scores,
    recorded_device_rows,
    summarize,
)

COMPARISON = "compare.md"  # --compare's table
# What the stage writes in its output directory, replaced as one set (the user records too:
# the finished stage has none); any other file there is kept.
OUTPUTS = ("per_user.csv", "per_intent.csv", "summary.json", "results.md", "gains.png", "per_intent.png",
           "predictions.csv", COMPARISON, RECORDS, FINISHED_USERS)


def _pooled_by_method(results) -> tuple[dict, dict]:
    """``({method: labels}, {method: scores})`` over the test windows of the users that ran it."""
    labels, scores = {}, {}
    for r in results:
        for method, s in method_scores(r).items():
            labels.setdefault(method, []).append(r["y_true"])
            scores.setdefault(method, []).append(s)
    return ({m: np.concatenate(v) for m, v in labels.items()},
            {m: np.concatenate(v) for m, v in scores.items()})


def write_results(out, results, header, device_rows, stats, intent_tokens, p_pop, n_rare=3,
                  dump_predictions=False) -> dict:
    """Writes the individual stage's files of ``results`` (per-user records in run order) to
    ``out``: ``per_user.csv``, ``per_intent.csv``, the plots, ``predictions.csv`` (with ``dump_predictions``),
    ``summary.json`` and ``results.md``; returns ``summary.json``'s content with the markdown
    tables under ``"table"``. One run and the merge of its shards both write through here,
    into the new folder of :func:`pitune_tf.common.output_set.output_set` (``OUTPUTS``).

    Args:
        out: Path. The output directory.
        results: list of ``PersonalizationEngine.run_user`` records.
        header: dict. ``summary.json``'s leading keys (run, data, backend, config, users, ...).
        device_rows: dict, or a function returning it (called once the results are
            written: it times the models). Table 3's model rows by method (the backends'
            ``describe()``; LightGBM's and the Table 2 baselines' come from the records:
            ``summary.recorded_device_rows``).
        stats: dict. ``prepare_users``' skip statistics.
        intent_tokens: list of str. The run's intent names, by id.
        p_pop: float [n_intents]. The population's intent shares.
        n_rare: int. How many of the population's rarest intents get their recall.
    """
    summary, per_user = summarize(results, intent_tokens, p_pop, n_rare)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "per_user.csv") as tmp:
        per_user.to_csv(tmp, index=False)
    per_intent = per_intent_frame(*_pooled_by_method(results), intent_tokens, p_pop)
    with atomic_path(out / "per_intent.csv") as tmp:
        per_intent.to_csv(tmp, index=False)
    plots = write_individual_plots(out, per_user, summary, per_intent) if results else []  # failing: a warning
    if dump_predictions and results:
        frames = [predictions_frame(np.full(r["n_test"], r["user"]), r["timestamp"], r["y_true"],
                                    scores, intent_tokens, method=method)
                  for r in results for method, scores in method_scores(r).items()]
        with atomic_path(out / "predictions.csv") as tmp:
            pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
    summary_json = {
        **header,
        "skipped": {k: v for k, v in stats.items() if k != "skipped_users"},
        "skipped_users": stats["skipped_users"],
        "rare_intents": next(iter(summary.values()))["rare"] if summary else {},
        "methods": summary, "device_models": {},
        "forget_sets": {r["user"]: [intent_tokens[i] for i in r["forget"]] for r in results},
    }
    rows = {**(device_rows() if callable(device_rows) else device_rows), **recorded_device_rows(results)}
    rows = {m: rows[m] for m in METHOD_ORDER if m in rows}  # Table 3's row order
    device = device_models(rows, results, p_pop)
    summary_json["device_models"] = device
    write_json(out / "summary.json", summary_json)
    table = markdown_tables(summary, device, stats, None)
    figures = markdown_images(plots, out)
    write_text(out / "results.md", table + "".join(f"\n{line}\n" for line in figures))
    summary_json["table"] = table
    return summary_json
