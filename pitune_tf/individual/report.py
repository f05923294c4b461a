"""The individual stage's Markdown tables (``results.md``): PITuning Table 2 (pooled and mean
over users, with the share of the gap to the user oracle closed), the paired differences,
the validation windows, the long tail (Figure 8) and Table 3's device models, each written
with :func:`pitune_tf.common.tables.markdown_table` from the statistics of
:mod:`pitune_tf.individual.summary`."""

from __future__ import annotations

from pitune_tf.common.tables import cell, markdown_table
from pitune_tf.individual.summary import GAP_METRICS
from pitune_tf.metrics import INTENT_METRIC_COLUMNS as TABLE_COLUMNS
from pitune_tf.metrics import MIN_BOOTSTRAP_GROUPS, difference_cell

# beside every Table 2 style table: what Prec_w is, and what LightGBM sees that no model does
METRIC_NOTE = ("Prec_w / Rec_w: each intent weighted by its true count (scikit-learn's "
               "average='weighted'); PITuning Eq. 12 as printed weighs precision by the "
               "predicted count, which reduces to the accuracy (Acc).")
LGBM_NOTE = ("lgbm: Appendix E's features include the predicted event's own time (hour, "
             "weekday, timestamp of t_i, the 'current time'), context no sequence model gets.")
GAP_NOTE = ("Gap closed: (method - none) / (oracle - none), pooled over the method's "
            "users; oracle: the exact next-intent distribution of each user's own data "
            "generator given the history (the ceiling a model of PITuning Eq. 1 can "
            "reach); oracle_context: the same knowing the predicted event's own time "
            "and place (an upper bound no model of the history reaches).")


def _count(n):
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K" if n >= 1e3 else str(n)


def _model_size(row):
    if "parameters" not in row:
        return None
    return f"{_count(row['parameters'])} ({_count(row['trainable_parameters'])})"


def markdown_tables(summary, device, stats, config):
    """Table 2 (pooled and mean over users), the long-tail view, and Table 3 in markdown."""
    lines = ["## Individual-level results (Table 2 style)", ""]
    names = dict(TABLE_COLUMNS)
    metric_names = [c for _, c in TABLE_COLUMNS]
    closed = list(GAP_METRICS) if any("gap_closed" in s for s in summary.values()) else []
    for scope, title in (("pooled", "pooled over all users' test windows"), ("mean", "mean over users")):
        block = closed if scope == "pooled" else []
        table = markdown_table(
            ["Model", *metric_names, "users", "windows", *(f"gap closed {names[k]}" for k in block)],
            [[method, *(s[scope][k] for k, _ in TABLE_COLUMNS), s["users"], s["windows"],
              *(s.get("gap_closed", {}).get(k) for k in block)]
             for method, s in summary.items()])
        lines += [f"**{title}**", "", table, ""]
    lines += [METRIC_NOTE + (" " + LGBM_NOTE if "lgbm" in summary else ""), ""]
    if closed:
        lines += [GAP_NOTE, ""]
    compared = [(m, o, d) for m, s in summary.items() for o, d in s.get("versus", {}).items()]
    if compared:
        lines += ["**paired differences** (pooled test windows of the users both ran on; 95% "
                  f"bootstrap interval resampling users, or windows below {MIN_BOOTSTRAP_GROUPS} "
                  "users: a method is ahead only where the interval is above 0)", "",
                  markdown_table(["Model", "versus", *(names[k] for k in GAP_METRICS), "resampled"],
                                 [[method, other, *(difference_cell(d[k]) for k in GAP_METRICS),
                                   f"{d['unit']}s"] for method, other, d in compared]), ""]
    validated = {m: s["validation"] for m, s in summary.items() if "validation" in s}
    if validated:
        lines += ["**validation windows, pooled** (what settings are chosen on; fine-tuned "
                  "models also stopped early on them, so they read optimistic)", "",
                  markdown_table(["Model", *metric_names, "CE", "windows"],
                                 [[method, *(v[k] for k, _ in TABLE_COLUMNS),
                                   v["ce"], v["windows"]]
                                  for method, v in validated.items()]), ""]
    rare = next(iter(summary.values()))["rare"] if summary else {}
    lines += ["**Long tail (Figure 8)**: recall on the population's 3 rarest intents (pooled), and "
              "the weighted-minus-macro gap (smaller = fairer across intents)", "",
              markdown_table(["Model", *(f"Rec[{k}]" for k in rare), "mean rare recall",
                              "Prec_w-Prec_m", "Rec_w-Rec_m", "s/user"],
                             [[method, *s["rare"].values(),
                               s["rare_recall_mean"], s["gap"]["prec"],
                               s["gap"]["rec"], cell(s.get("seconds_per_user"), 2)]
                              for method, s in summary.items()])]
    lines += ["", "## Device models (Table 3 style)", "",
              markdown_table(["Model", "Prec_w", "Prec_m", "users", "Infer (1 sample, ms)",
                              "Params (Trainable)"],
                             [[method, row.get("prec_w"), row.get("prec_m"),
                               row.get("users"), cell(row.get("infer_ms"), 3),
                               _model_size(row)] for method, row in device.items()])]
    skipped = {k: stats[k] for k in ("too_few_events", "no_train_windows", "no_test_windows")}
    lines += ["", f"Users skipped: {skipped}; values mapped to <unk>: {stats['unknown']}; "
              f"windows dropped for an unknown next intent: {stats['unknown_label_windows']}.", ""]
    return "\n".join(lines)
