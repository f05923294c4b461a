"""Evaluation across users (PITuning Section 4.1.2, Figure 8): pooled and per-user-mean
metrics, recall on the population's rarest intents, the weighted-minus-macro gap, and the
per-window predictions dump."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pitune_tf.common.vocabulary import N_RESERVED
from pitune_tf.metrics import intent_metrics


def rarest_intents(p_pop, n=3, reserved=N_RESERVED) -> list:
    """The ``n`` real intents with the smallest population share among those that occur
    (share > 0); ties broken by id."""
    p_pop = np.asarray(p_pop, dtype=np.float64)
    ids = np.arange(p_pop.shape[0])
    candidates = ids[(ids >= reserved) & (p_pop > 0)]
    order = np.lexsort((candidates, p_pop[candidates]))
    return [int(i) for i in candidates[order[:n]]]


def recall_per_intent(y_true, y_pred, intents) -> dict:
    """Recall TP / (TP + FN) of each intent id in ``intents`` (NaN when it has no windows)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    out = {}
    for intent in intents:
        positives = y_true == intent
        out[int(intent)] = (
            float(np.mean(y_pred[positives] == intent)) if positives.any() else float("nan")
        )
    return out


def evaluate_users(y_true_by_user, scores_by_user, p_pop, n_rare=3, intent_tokens=None) -> dict:
    """Metrics of one method over all users.

    Args:
        y_true_by_user: list of int [n_u] arrays (each user's test labels).
        scores_by_user: list of float [n_u, n_intents] arrays.
        p_pop: population label shares [n_intents] (for the rarest intents).
        n_rare: how many of the population's rarest intents get their recall reported.
        intent_tokens: optional list of intent names (for readable rare-intent keys).

    Returns:
        dict with ``pooled`` (every metric over all users' test windows together), ``mean``
        (the mean over users of each user's metrics), ``gap`` (weighted minus macro, pooled:
        ``prec`` and ``rec``), ``rare`` (pooled recall of each of the n_rare rarest intents,
        keyed by name, and ``rare_recall_mean`` over those with test windows), ``users`` and
        ``windows`` (counts).
    """
    users = [i for i, y in enumerate(y_true_by_user) if len(y) > 0]
    if not users:
        return {"users": 0, "windows": 0}
    y_all = np.concatenate([np.asarray(y_true_by_user[i]) for i in users])
    s_all = np.concatenate([np.asarray(scores_by_user[i]) for i in users])
    pooled = intent_metrics(y_all, s_all)
    per_user = [intent_metrics(np.asarray(y_true_by_user[i]), np.asarray(scores_by_user[i]))
                for i in users]
    mean = {k: float(np.mean([m[k] for m in per_user])) for k in pooled}
    rare_ids = rarest_intents(p_pop, n_rare)
    recalls = recall_per_intent(y_all, s_all.argmax(axis=1), rare_ids)
    name = (lambda i: intent_tokens[i]) if intent_tokens is not None else str
    present = [r for r in recalls.values() if not np.isnan(r)]
    return {
        "pooled": {k: float(v) for k, v in pooled.items()},
        "mean": mean,
        "gap": {
            "prec": float(pooled["prec_w"] - pooled["prec_m"]),
            "rec": float(pooled["rec_w"] - pooled["rec_m"]),
        },
        "rare": {name(i): r for i, r in recalls.items()},
        "rare_recall_mean": float(np.mean(present)) if present else float("nan"),
        "users": len(users),
        "windows": int(y_all.shape[0]),
    }


def per_intent_frame(y_true_by_method, scores_by_method, intent_tokens, p_pop,
                     reserved=N_RESERVED) -> pd.DataFrame:
    """What each method predicts of each intent, pooled over the test windows of its users
    (``per_intent.csv``): one row per (method, real intent) with the intent's population share,
    its test windows (``support``), how often the method predicts it (``predicted``, argmax),
    ``predicted / support`` (``predicted_ratio``: below 1 the method under-predicts it), and its
    recall and precision (NaN without windows / predictions). Rows: methods in the order given,
    intents from the population's most to least frequent.

    Args:
        y_true_by_method: ``{method: int [n] labels}``.
        scores_by_method: ``{method: float [n, n_intents] scores}`` (the same keys).
        intent_tokens: list of str. Intent names, by id.
        p_pop: float [n_intents]. The population's intent shares.
        reserved: int. Leading ids that are not intents (padding, unknown).
    """
    p_pop = np.asarray(p_pop, dtype=np.float64)
    ids = [i for i in np.argsort(-p_pop, kind="stable") if i >= reserved]
    columns = ["method", "intent", "population_share", "support", "predicted", "predicted_ratio",
               "recall", "precision"]
    rows = []
    for method, y_true in y_true_by_method.items():
        y_true = np.asarray(y_true)
        y_pred = np.asarray(scores_by_method[method]).argmax(axis=1)
        recalls = recall_per_intent(y_true, y_pred, ids)
        for i in ids:
            support, predicted = int(np.sum(y_true == i)), int(np.sum(y_pred == i))
            hits = int(np.sum((y_true == i) & (y_pred == i)))
            rows.append({"method": method, "intent": intent_tokens[i], "population_share": float(p_pop[i]),
                         "support": support, "predicted": predicted,
                         "predicted_ratio": predicted / support if support else float("nan"),
                         "recall": recalls[int(i)],
                         "precision": hits / predicted if predicted else float("nan")})
    return pd.DataFrame(rows, columns=columns)


def predictions_frame(users, timestamps, y_true, scores, intent_tokens, method=None) -> pd.DataFrame:
    """One row per test window: user, timestamp of the predicted event, true and predicted
    intent, and the score of every intent (``score_<intent>`` columns)."""
    scores = np.asarray(scores, dtype=np.float32)
    frame = pd.DataFrame(
        {
            "user_id": np.asarray(users).astype(str),
            "timestamp": pd.to_datetime(np.asarray(timestamps, dtype=np.int64), unit="s"),
            "true_intent": np.asarray(intent_tokens, dtype=object)[np.asarray(y_true)],
            "pred_intent": np.asarray(intent_tokens, dtype=object)[scores.argmax(axis=1)],
        }
    )
    if method is not None:
        frame.insert(0, "method", method)
    score_cols = pd.DataFrame(scores, columns=[f"score_{t}" for t in intent_tokens])
    return pd.concat([frame, score_cols], axis=1)
