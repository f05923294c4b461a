"""The individual stage's results: per-method summaries (pooled, mean over users, long
tail), Table 3's device models, the markdown tables, and a side-by-side of two runs (e.g.
the LiteRT backend against the Keras backend).

When the log comes with a user oracle (``pitune_tf.data.intent_oracle``), each record holds
its probabilities on the user's test windows as ``oracle_scores``: the ``oracle`` row of every
table, and each method's ``gap_closed``, the share of the gap from ``none`` to the oracle it
closes, ``(method - none) / (oracle - none)`` on pooled ``GAP_METRICS``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pitune_tf.common.errors import UserInputError
from pitune_tf.individual.engine import TRIVIAL_METHODS
from pitune_tf.individual.individual_config import TABLE2_BASELINES
from pitune_tf.metrics import INTENT_METRIC_COLUMNS as TABLE_COLUMNS
from pitune_tf.metrics import (
    MIN_BOOTSTRAP_GROUPS,
    bootstrap_groups,
    difference_cell,
    paired_bootstrap,
)

# Row order of every table.
METHOD_ORDER = ("most_frequent", "last_event_intent", "none", "prior", "finetune", "focal", "oversample", "pituning",
                "mpda", "lgbm", "fp", "pp", *TABLE2_BASELINES)
ORACLE = "oracle"  # the user oracle's row, last, when the log comes with one
ORACLE_CONTEXT = "oracle_context"  # the oracle that also knows the predicted event's own
#   context (synthetic data): an upper bound, shown after ORACLE, never a gap's end
ORACLES = (ORACLE, ORACLE_CONTEXT)
GAP_METRICS = ("prec_w", "prec_m", "rec_m", "ndcg@3")  # the metrics of gap_closed
# each method is compared on the same users' test windows (``versus``) with ``none``, a
# method that is not trivial also with the trivial baselines that ran, and pituning with
# finetune (the paper's ordering pituning >= finetune >= none, PITuning Table 2)
VERSUS = {"pituning": ("finetune",)}
# beside every Table 2 style table: what Prec_w is, and what LightGBM sees that no model does
METRIC_NOTE = ("Prec_w / Rec_w: each intent weighted by its true count (scikit-learn's "
               "average='weighted'); PITuning Eq. 12 as printed weighs precision by the "
               "predicted count, which reduces to the accuracy (Acc).")
LGBM_NOTE = ("lgbm: Appendix E's features include the predicted event's own time (hour, "
             "weekday, timestamp of t_i, the 'current time'), context no sequence model gets.")


def method_scores(record) -> dict:
    """A per-user record's scores [n_test, n_intents] by method, the oracle's last."""
    scores = {method: entry["scores"] for method, entry in record["methods"].items()}
    if "oracle_scores" in record:
        scores[ORACLE] = record["oracle_scores"]
    if "oracle_context_scores" in record:
        scores[ORACLE_CONTEXT] = record["oracle_context_scores"]
    return scores


def gap_closed(method, none, oracle) -> dict:
    """``(method - none) / (oracle - none)`` for each of GAP_METRICS (dicts of pooled
    metrics); None where the oracle does no better or worse than ``none``."""
    return {k: (float((method[k] - none[k]) / (oracle[k] - none[k]))
                if oracle[k] != none[k] else None) for k in GAP_METRICS}


def _pooled(records, method):
    from pitune_tf.metrics import intent_metrics

    return intent_metrics(np.concatenate([r["y_true"] for r in records]),
                          np.concatenate([method_scores(r)[method] for r in records]))


def versus(records, method, other) -> dict:
    """``method - other`` pooled over the test windows of the users both ran on, every metric,
    with a 95% paired-bootstrap interval (:func:`pitune_tf.metrics.paired_bootstrap`, 1,000
    resamples, seed 0) over users when there are enough of them
    (:func:`pitune_tf.metrics.bootstrap_groups`: a user's windows are correlated), else over
    windows. Returns ``{"unit": "user" | "window", metric: {diff, low, high}}``, {} when no
    user ran both."""
    done = [r for r in records if {method, other} <= set(method_scores(r))]
    if not done:
        return {}
    groups = bootstrap_groups(np.concatenate([[r["user"]] * len(r["y_true"]) for r in done]))
    return {"unit": "window" if groups is None else "user",
            **paired_bootstrap(np.concatenate([r["y_true"] for r in done]),
                               np.concatenate([method_scores(r)[method] for r in done]),
                               np.concatenate([method_scores(r)[other] for r in done]),
                               groups=groups)}


def validation_metrics(records, method) -> dict:
    """The method's metrics pooled over the users' validation windows and their mean
    cross-entropy (``ce``): what settings are chosen on; {} unless every record has the
    method's validation scores (``PersonalizationEngine.val_scores``)."""
    from pitune_tf.individual.engine import mean_cross_entropy
    from pitune_tf.metrics import intent_metrics

    entries = [r["methods"].get(method, {}) for r in records]
    if not records or not all("val_scores" in e for e in entries):
        return {}
    y_true = np.concatenate([r["val_y_true"] for r in records])
    scores = np.concatenate([e["val_scores"] for e in entries])
    if not len(y_true):
        return {}
    return {**{k: float(v) for k, v in intent_metrics(y_true, scores).items()},
            "ce": mean_cross_entropy(scores, y_true), "windows": int(len(y_true))}


def summarize(results, intent_tokens, p_pop, n_rare=3):
    """Per-method metrics (pooled, mean over users, rare-intent recall, gap, and with an
    oracle ``gap_closed`` on the method's users) and per-user rows.

    Args:
        results: list of ``PersonalizationEngine.run_user`` records.
        intent_tokens: list of str. Intent names, by id.
        p_pop: float [n_intents]. The population's intent shares (for the rarest intents).
        n_rare: int. How many of the rarest intents get their recall reported.
    """
    from pitune_tf.individual.evaluation import evaluate_users
    from pitune_tf.metrics import intent_metrics

    tokens = list(intent_tokens)
    methods = [m for m in (*METHOD_ORDER, *ORACLES)
               if any(m in method_scores(r) for r in results)]
    for oracle in ORACLES:
        if oracle in methods and not all(oracle in method_scores(r) for r in results):
            raise ValueError(f"{oracle} scores on some users only")
    summary, rows = {}, []
    for method in methods:
        done = [r for r in results if method in method_scores(r)]
        summary[method] = evaluate_users([r["y_true"] for r in done],
                                         [method_scores(r)[method] for r in done],
                                         p_pop, n_rare=n_rare, intent_tokens=tokens)
        if method not in ORACLES:
            summary[method]["seconds_per_user"] = float(
                np.mean([r["methods"][method]["info"]["seconds"] for r in done]))
            diagnostics = tuning_diagnostics([r["methods"][method]["info"] for r in done])
            if diagnostics:
                summary[method]["diagnostics"] = diagnostics
        validation = validation_metrics(done, method)
        if validation:
            summary[method]["validation"] = validation
        if method not in (*ORACLES, "none"):
            trivial = () if method in TRIVIAL_METHODS else TRIVIAL_METHODS
            others = [o for o in ("none", *trivial, *VERSUS.get(method, ())) if o in methods]
            compared = {o: versus(done, method, o) for o in others}
            compared = {o: v for o, v in compared.items() if v}
            if compared:
                summary[method]["versus"] = compared
        if ORACLE in methods and "none" in methods and method not in ORACLES:
            summary[method]["gap_closed"] = gap_closed(
                summary[method]["pooled"], _pooled(done, "none"), _pooled(done, ORACLE))
    for r in results:
        base = {
            "user_id": r["user"], "n_train": r["n_train"], "n_val": r["n_val"], "n_test": r["n_test"],
            "static": "|".join(tokens[i] for i in r["static"]),
            "dynamic": "|".join(tokens[i] for i in r["dynamic"]),
            "forget": "|".join(tokens[i] for i in r["forget"]),
            "retain": "|".join(tokens[i] for i in r["retain"]),
        }
        for method, scores in method_scores(r).items():
            info = r["methods"][method]["info"] if method not in ORACLES else {}
            metrics = intent_metrics(r["y_true"], scores)
            rows.append({**base, "method": method, **{k: float(v) for k, v in metrics.items()},
                         **{k: v for k, v in info.items() if np.isscalar(v)}})
    return summary, pd.DataFrame(rows)


def tuning_diagnostics(infos) -> dict:
    """What the individual stage did, over users: the share whose kept model is the starting
    one (best epoch 0: the shipped, or the post-unlearning, weights), mean epochs run and
    kept, the share whose unlearning passed the validation gate, mean |F| and |R|."""
    out = {}
    epochs = [i for i in infos if "best_epoch" in i]
    if epochs:
        out.update(best_epoch_zero_share=float(np.mean([i["best_epoch"] == 0 for i in epochs])),
                   mean_epochs=float(np.mean([i["epochs"] for i in epochs])),
                   mean_best_epoch=float(np.mean([i["best_epoch"] for i in epochs])))
    unlearned = [i for i in infos if i.get("unlearn_steps")]
    if unlearned:
        out.update(unlearned_share=len(unlearned) / len(infos),
                   mean_forget_size=float(np.mean([i["forget_size"] for i in unlearned])),
                   mean_retain_size=float(np.mean([i["retain_size"] for i in unlearned])),
                   forget_prob_drop=float(np.mean([i["forget_prob_before"] - i["forget_prob_after"]
                                                   for i in unlearned])))
        gated = [i for i in unlearned if "unlearn_kept" in i]
        if gated:
            out["unlearn_kept_share"] = float(np.mean([i["unlearn_kept"] for i in gated]))
        chosen = [i for i in unlearned if "unlearn_kept_after_finetune" in i]
        if chosen:  # the unlearned start kept after fine-tuning (unlearn_select)
            out["unlearn_kept_after_finetune_share"] = float(
                np.mean([i["unlearn_kept_after_finetune"] for i in chosen]))
    return out


def device_models(backend_rows, results, p_pop):
    """Table 3's rows: parameters, trainable parameters and single-sample inference time of
    each device model (``backend_rows``: method -> the backend's ``describe()``), with its
    metrics on the users where the per-user teacher methods ran (so every row is measured on
    the same users), or on all users when they did not run; with an oracle, its metrics on
    the same users in an ``oracle`` row without a model."""
    from pitune_tf.individual.evaluation import evaluate_users
    from pitune_tf.individual.teacher_methods import PER_USER_TEACHER_METHODS

    subset = [r for r in results if any(m in r["methods"] for m in PER_USER_TEACHER_METHODS)]
    rows = {}
    if any(ORACLE in method_scores(r) for r in results):
        backend_rows = {**backend_rows, ORACLE: {}}
    for method, row in backend_rows.items():
        row = dict(row)
        done = [r for r in (subset or results) if method in method_scores(r)]
        if done:
            metrics = evaluate_users([r["y_true"] for r in done],
                                     [method_scores(r)[method] for r in done], p_pop)
            row.update(users=len(done), prec_w=metrics["pooled"]["prec_w"],
                       prec_m=metrics["pooled"]["prec_m"])
        rows[method] = row
    return rows


# The per-user info keys of Table 3's columns (parameters, trainable, ms) of the methods
# whose device model is built per user (LightGBM: its tree nodes) or per process (the Table 2
# baselines' own networks), so their rows come from the records, shards and workers included.
RECORDED_DEVICE_INFO = {"lgbm": ("lgbm_nodes", "lgbm_nodes", "lgbm_infer_ms"),
                        **{m: ("parameters", "trainable_parameters", "infer_ms") for m in TABLE2_BASELINES}}


def recorded_device_rows(results) -> dict:
    """Table 3's rows of the methods of ``RECORDED_DEVICE_INFO`` that ran: mean parameters
    and trainable parameters over users, median single-sample time."""
    rows = {}
    for method, (params, trainable, ms) in RECORDED_DEVICE_INFO.items():
        infos = [r["methods"][method]["info"] for r in results if method in r["methods"]]
        infos = [i for i in infos if ms in i]
        if infos:
            rows[method] = {"parameters": int(np.mean([i[params] for i in infos])),
                            "trainable_parameters": int(np.mean([i[trainable] for i in infos])),
                            "infer_ms": float(np.median([i[ms] for i in infos]))}
    return rows


def _fmt(value):
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.4f}"


def _count(n):
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K" if n >= 1e3 else str(n)


def _fixed(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def _model_size(row):
    if "parameters" not in row:
        return "—"
    return f"{_count(row['parameters'])} ({_count(row['trainable_parameters'])})"


def markdown_tables(summary, device, stats, config):
    """Table 2 (pooled and mean over users), the long-tail view, and Table 3 in markdown."""
    lines = ["## Individual-level results (Table 2 style)", ""]
    names = dict(TABLE_COLUMNS)
    closed = list(GAP_METRICS) if any("gap_closed" in s for s in summary.values()) else []
    for scope, title in (("pooled", "pooled over all users' test windows"), ("mean", "mean over users")):
        block = closed if scope == "pooled" else []
        lines += [f"**{title}**", "",
                  "| Model | " + " | ".join(c for _, c in TABLE_COLUMNS) + " | users | windows |"
                  + "".join(f" gap closed {names[k]} |" for k in block),
                  "|---|" + "---|" * (len(TABLE_COLUMNS) + 2 + len(block))]
        for method, s in summary.items():
            lines.append(f"| {method} | " + " | ".join(_fmt(s[scope][k]) for k, _ in TABLE_COLUMNS)
                         + f" | {s['users']} | {s['windows']} |"
                         + "".join(f" {_fmt(s.get('gap_closed', {}).get(k))} |" for k in block))
        lines.append("")
    lines += [METRIC_NOTE + (" " + LGBM_NOTE if "lgbm" in summary else ""), ""]
    if closed:
        lines += ["Gap closed: (method - none) / (oracle - none), pooled over the method's "
                  "users; oracle: the exact next-intent distribution of each user's own data "
                  "generator given the history (the ceiling a model of PITuning Eq. 1 can "
                  "reach); oracle_context: the same knowing the predicted event's own time "
                  "and place (an upper bound no model of the history reaches).", ""]
    compared = [(m, o, d) for m, s in summary.items() for o, d in s.get("versus", {}).items()]
    if compared:
        lines += ["**paired differences** (pooled test windows of the users both ran on; 95% "
                  f"bootstrap interval resampling users, or windows below {MIN_BOOTSTRAP_GROUPS} "
                  "users: a method is ahead only where the interval is above 0)", "",
                  "| Model | versus | " + " | ".join(names[k] for k in GAP_METRICS)
                  + " | resampled |", "|---|---|" + "---|" * (len(GAP_METRICS) + 1)]
        for method, other, d in compared:
            lines.append(f"| {method} | {other} | "
                         + " | ".join(difference_cell(d[k]) for k in GAP_METRICS)
                         + f" | {d['unit']}s |")
        lines.append("")
    validated = {m: s["validation"] for m, s in summary.items() if "validation" in s}
    if validated:
        lines += ["**validation windows, pooled** (what settings are chosen on; fine-tuned "
                  "models also stopped early on them, so they read optimistic)", "",
                  "| Model | " + " | ".join(c for _, c in TABLE_COLUMNS) + " | CE | windows |",
                  "|---|" + "---|" * (len(TABLE_COLUMNS) + 2)]
        for method, v in validated.items():
            lines.append(f"| {method} | " + " | ".join(_fmt(v[k]) for k, _ in TABLE_COLUMNS)
                         + f" | {_fmt(v['ce'])} | {v['windows']} |")
        lines.append("")
    rare = next(iter(summary.values()))["rare"] if summary else {}
    lines += ["**Long tail (Figure 8)**: recall on the population's 3 rarest intents (pooled), and "
              "the weighted-minus-macro gap (smaller = fairer across intents)", "",
              "| Model | " + " | ".join(f"Rec[{k}]" for k in rare)
              + " | mean rare recall | Prec_w-Prec_m | Rec_w-Rec_m | s/user |",
              "|---|" + "---|" * (len(rare) + 4)]
    for method, s in summary.items():
        lines.append(f"| {method} | " + " | ".join(_fmt(v) for v in s["rare"].values())
                     + f" | {_fmt(s['rare_recall_mean'])} | {_fmt(s['gap']['prec'])} | "
                     f"{_fmt(s['gap']['rec'])} | {_fixed(s.get('seconds_per_user'))} |")
    lines += ["", "## Device models (Table 3 style)", "",
              "| Model | Prec_w | Prec_m | users | Infer (1 sample, ms) | Params (Trainable) |",
              "|---|---|---|---|---|---|"]
    for method, row in device.items():
        lines.append(f"| {method} | {_fmt(row.get('prec_w'))} | {_fmt(row.get('prec_m'))} | "
                     f"{row.get('users', '—')} | {_fixed(row.get('infer_ms'), 3)} | "
                     f"{_model_size(row)} |")
    skipped = {k: stats[k] for k in ("too_few_events", "no_train_windows", "no_test_windows")}
    lines += ["", f"Users skipped: {skipped}; values mapped to <unk>: {stats['unknown']}; "
              f"windows dropped for an unknown next intent: {stats['unknown_label_windows']}.", ""]
    return "\n".join(lines)


def compare_tables(this_dir, other_dir, labels=("litert", "keras")) -> str:
    """Markdown: pooled metrics per method of two individual-stage output directories side
    by side (e.g. the LiteRT backend beside the Keras backend), and the largest per-user
    metric difference (from the two ``per_user.csv``)."""
    for path in (Path(d) / name for d in (this_dir, other_dir)
                 for name in ("per_user.csv", "summary.json")):
        if not path.is_file():
            raise UserInputError(f"--compare: {path} not found (run trainers.individual first)")
    dev = pd.read_csv(Path(this_dir) / "per_user.csv")
    ker = pd.read_csv(Path(other_dir) / "per_user.csv")
    dev_sum = json.loads((Path(this_dir) / "summary.json").read_text())["methods"]
    ker_sum = json.loads((Path(other_dir) / "summary.json").read_text())["methods"]
    lines = [f"## {labels[0]} vs {labels[1]}, same users, same options", "",
             "| Method | path | " + " | ".join(c for _, c in TABLE_COLUMNS) + " | users |",
             "|---|---|" + "---|" * (len(TABLE_COLUMNS) + 1)]
    diffs = {}
    for method in dev_sum:
        if method not in ker_sum:
            continue
        for name, s in zip(labels, (dev_sum[method], ker_sum[method])):
            lines.append(f"| {method} | {name} | "
                         + " | ".join(f"{s['pooled'][k]:.4f}" for k, _ in TABLE_COLUMNS)
                         + f" | {s['users']} |")
        d = dev[dev.method == method].set_index("user_id")
        k = ker[ker.method == method].set_index("user_id")
        common = d.index.intersection(k.index)
        cols = [c for c, _ in TABLE_COLUMNS]
        diffs[method] = (float(np.abs(d.loc[common, cols].to_numpy()
                                      - k.loc[common, cols].to_numpy()).max())
                         if len(common) else float("nan"), len(common))
    lines += ["", "| Method | users compared | max per-user metric difference |", "|---|---|---|"]
    lines += [f"| {m} | {n} | {v:.2e} |" for m, (v, n) in diffs.items()]
    return "\n".join(lines) + "\n"


