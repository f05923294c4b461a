"""The individual stage's statistics: per-method summaries (pooled, mean over users, long
tail, validation windows), paired differences between methods, Table 3's device-model rows.

When the log comes with a user oracle (``pitune_tf.data.intent_oracle``), each record holds
its probabilities on the user's test windows as ``oracle_scores``: the ``oracle`` row of every
table, and each method's ``gap_closed``, the share of the gap from ``none`` to the oracle it
closes, ``(method - none) / (oracle - none)`` on pooled ``GAP_METRICS``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pitune_tf.individual.engine import mean_cross_entropy
from pitune_tf.individual.evaluation import evaluate_users
from pitune_tf.individual.methods import (
    METHOD_ORDER,
    ORACLE,
    ORACLE_CONTEXT,
    ORACLES,
    PER_USER_TEACHER_METHODS,
    TABLE2_BASELINES,
    TRIVIAL_METHODS,
)
from pitune_tf.metrics import bootstrap_groups, intent_metrics, paired_bootstrap

GAP_METRICS = ("prec_w", "prec_m", "rec_m", "ndcg@3")  # the metrics of gap_closed
# each method is compared on the same users' test windows (``versus``) with ``none``, a
# method that is not trivial also with the trivial baselines that ran, and pituning with
# finetune (the paper's ordering pituning >= finetune >= none, PITuning Table 2)
VERSUS = {"pituning": ("finetune",)}


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
            **r.get("features", {}),  # --train-part auto's inputs (train_part_rule.FEATURES)
            **{k: r[k] for k in ("train_part", "unlearn_chosen") if k in r},  # and its choice
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
    kept, the share whose unlearning passed the validation gate, mean |F| and |R|, the share
    whose tuned model passed the shipped guard, the mean shrinkage alpha."""
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
    guarded = [i for i in infos if "guard_kept" in i]
    if guarded:  # shipped_guard: the share of users whose tuned model replaced the shipped one
        out["guard_kept_share"] = float(np.mean([i["guard_kept"] for i in guarded]))
    shrunk = [i["shrink_alpha"] for i in infos if "shrink_alpha" in i]
    if shrunk:  # shrink_to_shipped: the mean alpha and the share kept at the shipped model
        out.update(mean_shrink_alpha=float(np.mean(shrunk)),
                   shrink_to_shipped_share=float(np.mean([a == 0.0 for a in shrunk])))
    mixed = [i["repeat_mix_weight"] for i in infos if "repeat_mix_weight" in i]
    if mixed:  # repeat_mix: the mean weight of the last event's intent
        out["mean_repeat_mix_weight"] = float(np.mean(mixed))
    return out


def device_models(backend_rows, results, p_pop):
    """Table 3's rows: parameters, trainable parameters and single-sample inference time of
    each device model (``backend_rows``: method -> the backend's ``describe()``), with its
    metrics on the users where the per-user teacher methods ran (so every row is measured on
    the same users), or on all users when they did not run; with an oracle, its metrics on
    the same users in an ``oracle`` row without a model."""
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
