"""The individual stage's results: per-method summaries (pooled, mean over users, long
tail), Table 3's device models, the markdown tables, and a side-by-side of two runs (e.g.
the LiteRT backend against the Keras backend)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pitune_tf.common.errors import UserInputError
from pitune_tf.metrics import INTENT_METRIC_COLUMNS as TABLE_COLUMNS

# Row order of every table.
METHOD_ORDER = ("none", "prior", "finetune", "focal", "oversample", "pituning", "lgbm", "fp", "pp")


def summarize(results, run, config):
    """Per-method metrics (pooled, mean over users, rare-intent recall, gap) and per-user rows."""
    from pitune_tf.individual.evaluation import evaluate_users
    from pitune_tf.metrics import intent_metrics

    tokens = list(run.vocabs.intent.tokens)
    methods = [m for m in METHOD_ORDER if any(m in r["methods"] for r in results)]
    summary, rows = {}, []
    for method in methods:
        done = [r for r in results if method in r["methods"]]
        summary[method] = evaluate_users([r["y_true"] for r in done],
                                         [r["methods"][method]["scores"] for r in done],
                                         run.p_pop, n_rare=config.n_rare, intent_tokens=tokens)
        summary[method]["seconds_per_user"] = float(
            np.mean([r["methods"][method]["info"]["seconds"] for r in done]))
        diagnostics = tuning_diagnostics([r["methods"][method]["info"] for r in done])
        if diagnostics:
            summary[method]["diagnostics"] = diagnostics
    for r in results:
        base = {
            "user_id": r["user"], "n_train": r["n_train"], "n_val": r["n_val"], "n_test": r["n_test"],
            "static": "|".join(tokens[i] for i in r["static"]),
            "dynamic": "|".join(tokens[i] for i in r["dynamic"]),
            "forget": "|".join(tokens[i] for i in r["forget"]),
            "retain": "|".join(tokens[i] for i in r["retain"]),
        }
        for method in methods:
            if method not in r["methods"]:
                continue
            entry = r["methods"][method]
            metrics = intent_metrics(r["y_true"], entry["scores"])
            rows.append({**base, "method": method, **{k: float(v) for k, v in metrics.items()},
                         **{k: v for k, v in entry["info"].items() if np.isscalar(v)}})
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
    return out


def device_models(backend_rows, results, p_pop):
    """Table 3's rows: parameters, trainable parameters and single-sample inference time of
    each device model (``backend_rows``: method -> the backend's ``describe()``), with its
    metrics on the users where the per-user teacher methods ran (so every row is measured on
    the same users), or on all users when they did not run."""
    from pitune_tf.individual.evaluation import evaluate_users
    from pitune_tf.individual.teacher_methods import PER_USER_TEACHER_METHODS

    subset = [r for r in results if any(m in r["methods"] for m in PER_USER_TEACHER_METHODS)]
    rows = {}
    for method, row in backend_rows.items():
        row = dict(row)
        done = [r for r in (subset or results) if method in r["methods"]]
        if done:
            metrics = evaluate_users([r["y_true"] for r in done],
                                     [r["methods"][method]["scores"] for r in done], p_pop)
            row.update(users=len(done), prec_w=metrics["pooled"]["prec_w"],
                       prec_m=metrics["pooled"]["prec_m"])
        rows[method] = row
    return rows


def lgbm_device_row(results) -> dict:
    """Table 3's LightGBM row: mean tree nodes and median single-sample time."""
    infos = [r["methods"]["lgbm"]["info"] for r in results if "lgbm" in r["methods"]]
    nodes = int(np.mean([i["lgbm_nodes"] for i in infos]))
    return {"parameters": nodes, "trainable_parameters": nodes,
            "infer_ms": float(np.median([i["lgbm_infer_ms"] for i in infos]))}


def _fmt(value):
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.4f}"


def _count(n):
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K" if n >= 1e3 else str(n)


def markdown_tables(summary, device, stats, config):
    """Table 2 (pooled and mean over users), the long-tail view, and Table 3 in markdown."""
    lines = ["## Individual-level results (Table 2 style)", ""]
    for scope, title in (("pooled", "pooled over all users' test windows"), ("mean", "mean over users")):
        lines += [f"**{title}**", "",
                  "| Model | " + " | ".join(c for _, c in TABLE_COLUMNS) + " | users | windows |",
                  "|---|" + "---|" * (len(TABLE_COLUMNS) + 2)]
        for method, s in summary.items():
            lines.append(f"| {method} | " + " | ".join(_fmt(s[scope][k]) for k, _ in TABLE_COLUMNS)
                         + f" | {s['users']} | {s['windows']} |")
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
                     f"{_fmt(s['gap']['rec'])} | {s['seconds_per_user']:.2f} |")
    lines += ["", "## Device models (Table 3 style)", "",
              "| Model | Prec_w | Prec_m | users | Infer (1 sample, ms) | Params (Trainable) |",
              "|---|---|---|---|---|---|"]
    for method, row in device.items():
        lines.append(f"| {method} | {_fmt(row.get('prec_w'))} | {_fmt(row.get('prec_m'))} | "
                     f"{row.get('users', '—')} | {row['infer_ms']:.3f} | "
                     f"{_count(row['parameters'])} ({_count(row['trainable_parameters'])}) |")
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


