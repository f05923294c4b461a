"""The tree-model baseline of PITuning Appendix E: features, Table 5's parameters, training.

Features of a window (the prediction of the intent of the user's next event at time t_i):

1. the teacher's output probability of every real intent (``prob_<intent>``);
2. ``loc_top10``: whether the current location (the most recent history event's, position
   L-1 of the window) is among the user's 10 most frequent locations, counted on the user's
   training windows only (no test leakage);
3. ``hour``, ``weekday`` (Mon = 0), ``timestamp`` (unix seconds of t_i), ``morning``
   (05:00-11:59), ``afternoon`` (12:00-17:59), ``evening`` (18:00-04:59) and ``weekend``
   flags, from t_i (naive local time);
4. for every real intent e, over all of the user's events before t_i (Eq. 17):
   ``t0_<e>`` = t_i - t_{e,n} (time since its last occurrence) and
   ``t1_<e>`` = t_{e,n} - t_{e,n-1} (time between its last two occurrences), in seconds;
   NaN (LightGBM's missing value) when e occurred fewer than 1 (T0) or 2 (T1) times.

Table 5 (``table5_params``): multiclass gbdt, 2000 iterations, 32 leaves, unlimited depth,
20 samples per leaf, feature fraction 1, early stopping after 75 rounds, no L1/L2, seed 42;
below 200 training samples: max depth 3, 3 leaves, L1 = L2 = 1 ("if the size of the
dataset is less than 200, we will reduce the complexity").
"""

from __future__ import annotations

import numpy as np

from pitune_tf.common.vocabulary import N_RESERVED

SMALL_DATA_SAMPLES = 200  # Appendix E's fallback threshold


def time_since_last(timestamps, intents, n_intents):
    """T0 and T1 (Eq. 17) for every event of ONE user, over the events before it.

    Args:
        timestamps: int [n_events], seconds, sorted ascending.
        intents: int [n_events], intent ids.
        n_intents: int.

    Returns:
        (t0, t1): float64 [n_events, n_intents] each; row k uses events 0..k-1 only.
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    intents = np.asarray(intents, dtype=np.int64)
    n = timestamps.shape[0]
    t0 = np.full((n, n_intents), np.nan)
    t1 = np.full((n, n_intents), np.nan)
    last = np.full(n_intents, np.nan)  # t_{e,n}
    before_last = np.full(n_intents, np.nan)  # t_{e,n-1}
    for k in range(n):
        t0[k] = timestamps[k] - last
        t1[k] = last - before_last
        e = intents[k]
        before_last[e] = last[e]
        last[e] = timestamps[k]
    return t0, t1


def top_locations(last_locations, k=10) -> np.ndarray:
    """The ``k`` most frequent location ids (ties: smaller id first)."""
    values, counts = np.unique(np.asarray(last_locations), return_counts=True)
    order = np.lexsort((values, -counts))
    return values[order[:k]]


def feature_names(intent_tokens, reserved=N_RESERVED) -> list:
    """Column names of :func:`window_features`' matrix."""
    real = list(intent_tokens[reserved:])
    return (
        [f"prob_{t}" for t in real]
        + ["loc_top10", "hour", "weekday", "timestamp", "morning", "afternoon", "evening", "weekend"]
        + [f"t0_{t}" for t in real]
        + [f"t1_{t}" for t in real]
    )


def window_features(teacher_probs, current_location, timestamp, t0, t1, top_locs,
                    reserved=N_RESERVED):
    """The Appendix E feature matrix of some windows of one user.

    Args:
        teacher_probs: float [n, n_intents]. Teacher's softmax on each window.
        current_location: int [n]. Location id of each window's most recent history event.
        timestamp: int [n]. Unix seconds of the predicted event (t_i).
        t0, t1: float [n, n_intents]. From :func:`time_since_last`, rows of the predicted events.
        top_locs: int array. The user's frequent locations (:func:`top_locations`).
        reserved: number of reserved intent ids (dropped from the per-intent columns).

    Returns:
        float64 [n, 3 * (n_intents - reserved) + 8], columns as :func:`feature_names`.
    """
    timestamp = np.asarray(timestamp, dtype=np.int64)
    hour = (timestamp // 3600) % 24
    weekday = (timestamp // 86400 + 3) % 7  # 1970-01-01 was a Thursday; Mon = 0
    morning = (hour >= 5) & (hour < 12)
    afternoon = (hour >= 12) & (hour < 18)
    evening = ~(morning | afternoon)
    context = np.stack(
        [
            np.isin(np.asarray(current_location), top_locs),
            hour,
            weekday,
            timestamp,
            morning,
            afternoon,
            evening,
            weekday >= 5,
        ],
        axis=1,
    ).astype(np.float64)
    return np.concatenate(
        [
            np.asarray(teacher_probs, np.float64)[:, reserved:],
            context,
            np.asarray(t0, np.float64)[:, reserved:],
            np.asarray(t1, np.float64)[:, reserved:],
        ],
        axis=1,
    )


def table5_params(n_samples, n_classes, seed=42, num_threads=1) -> dict:
    """Table 5's LightGBM parameters, with Appendix E's fallback below 200 samples."""
    params = {
        "objective": "multiclass",
        "boosting": "gbdt",
        "num_class": int(n_classes),
        "num_leaves": 32,
        "max_depth": -1,
        "min_data_in_leaf": 20,
        "feature_fraction": 1.0,
        "lambda_l1": 0.0,
        "lambda_l2": 0.0,
        "seed": seed,
        "deterministic": True,
        "num_threads": num_threads,
        "verbosity": -1,
    }
    if n_samples < SMALL_DATA_SAMPLES:
        params.update(max_depth=3, num_leaves=3, lambda_l1=1.0, lambda_l2=1.0)
    return params


def train_lgbm(x_train, y_train, x_val, y_val, n_classes, num_iterations=2000,
               early_stopping_rounds=75, seed=42):
    """Fits the Table 5 model; early stopping on the validation windows when there are any.

    Returns:
        lightgbm.Booster (``best_iteration`` is used by ``predict``).
    """
    import lightgbm as lgb  # deferred: only the lgbm method loads LightGBM

    params = table5_params(len(y_train), n_classes, seed=seed)
    train_set = lgb.Dataset(x_train, label=y_train, free_raw_data=False)
    kwargs = {}
    if x_val is not None and len(y_val) > 0:
        valid = lgb.Dataset(x_val, label=y_val, reference=train_set)
        kwargs = {
            "valid_sets": [valid],
            "callbacks": [lgb.early_stopping(early_stopping_rounds, verbose=False)],
        }
    return lgb.train(params, train_set, num_boost_round=num_iterations, **kwargs)


def booster_size(booster) -> int:
    """Number of tree nodes (splits + leaves) in a booster: its "parameters" for Table 3."""
    dump = booster.dump_model()
    nodes = 0
    for tree in dump["tree_info"]:
        leaves = tree["num_leaves"]
        nodes += 2 * leaves - 1
    return nodes
