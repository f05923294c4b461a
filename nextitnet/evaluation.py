"""Scores a fine-tuned model: sampled (1 positive + 99 negatives) and full-ranking metrics,
profile accuracy / F1, and how the gates vary across users (utilisation, Figure 3)."""

from __future__ import annotations

import weakref

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from nextitnet.negative_sampler import NegativeSampler
from pitune_tf.common.keras import tf
from pitune_tf.metrics import rank_metrics, ranks_from_scores

_PREDICT_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def predict(model, source, batch_size=512, keep_logits=True):
    """Runs ``model`` in inference mode. Returns (logits [n, C], gates [n, N]); with
    ``keep_logits=False`` only the gates (logits None), in bounded memory."""
    logits, gates = [], []
    step = _PREDICT_FNS.get(model)
    if step is None:
        ref = weakref.ref(model)  # a strong reference here would keep every model alive
        step = tf.function(
            lambda x: ref()(x, training=False),
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
        )
        _PREDICT_FNS[model] = step
    for start in range(0, len(source), batch_size):
        out = step(tf.constant(source[start:start + batch_size], tf.int32))
        if keep_logits:
            logits.append(out["logits"].numpy())
        gates.append(out["gates"].numpy())
    n_blocks = getattr(model, "n_blocks", 0)
    if not gates:
        return np.zeros((0, model.n_outputs), np.float32), np.zeros((0, n_blocks), np.float32)
    return (np.concatenate(logits) if keep_logits else None), np.concatenate(gates)


def streamed_logits(model, source):
    """A model's logits on ``source`` rows as a function ``(start, stop) -> [stop - start, C]``
    with attributes ``n_rows`` and ``n_outputs``: what :func:`recommendation_metrics` takes to
    score in chunks, never holding ``[n, C]`` at once."""
    def logits(start, stop):
        return predict(model, source[start:stop])[0]
    logits.n_rows, logits.n_outputs = len(source), int(model.n_outputs)
    return logits


def as_logit_function(logits):
    """An array [n, C] as the function form of :func:`streamed_logits` (functions pass through)."""
    if callable(logits):
        return logits
    array = np.asarray(logits)

    def chunk(start, stop):
        return array[start:stop]
    chunk.n_rows, chunk.n_outputs = array.shape[0], array.shape[1]
    return chunk


def ndcg_at_k(ranks, k) -> float:
    """NDCG@k of one relevant item per row: mean of ``1 / log2(rank + 1)`` over rows whose
    1-based rank is <= k (0 otherwise)."""
    ranks = np.asarray(ranks, np.float64)
    if not ranks.size:
        return 0.0
    return float(np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0).mean())


def _scores(ranks, k) -> dict:
    hr_mrr = rank_metrics(ranks, k=k)
    out = {}
    for cutoff in k:
        for name in ("hr", "mrr"):
            out[f"{name}@{cutoff}"] = float(hr_mrr[f"{name}@{cutoff}"])
        out[f"ndcg@{cutoff}"] = ndcg_at_k(ranks, cutoff)
    return out


def mask_seen_items(scores, targets, seen) -> np.ndarray:
    """A copy of ``scores`` [n, V] (column j = target id j + 1) with each row's ``seen`` ids
    (a sequence of int arrays, one per row) set to -inf, except the row's own target."""
    lengths = np.fromiter((len(s) for s in seen), np.int64, count=len(seen))
    rows = np.repeat(np.arange(len(seen)), lengths)  # [total]
    cols = np.concatenate([np.asarray(s, np.int64) for s in seen]) if lengths.sum() else np.zeros(0, np.int64)
    keep = cols != np.asarray(targets, np.int64)[rows]
    masked = np.array(scores, dtype=np.float32, copy=True)
    masked[rows[keep], cols[keep] - 1] = -np.inf
    return masked


def recommendation_metrics(logits, targets, n_negatives=99, seed=0, k=(5, 10, 20), seen=None,
                           chunk_rows=2048, keep_ranks=False):
    """HR@k, MRR@k and NDCG@k against ``n_negatives`` sampled negatives (capped at the
    number of other valid target items), plus the same over the full ranking of every valid
    target item (prefixed ``full_``), where each row's ``seen`` items (the user's training
    items, other than the row's target) are masked out when given. Ties count against the
    model. logits: [n, C] (column 0 = the reserved unknown id, never ranked), or the function
    form of :func:`streamed_logits` (scored ``chunk_rows`` rows at a time: memory bounded by
    ``chunk_rows * C``, the same numbers); targets [n]. ``keep_ranks``: the result also
    holds ``ranks``, each row's 1-based rank among the sampled candidates (int array [n]),
    for paired comparisons of two models on the same rows."""
    targets = np.asarray(targets, np.int64)
    logits = as_logit_function(logits)
    n_outputs = logits.n_outputs
    n_negatives = min(n_negatives, n_outputs - 2)
    negatives = NegativeSampler(1, n_outputs, n_negatives, seed=seed).sample(targets)
    candidates = np.concatenate([targets[:, None], negatives], axis=1)  # [n, 1 + negatives]
    sampled_ranks, full_ranks = [], []
    for start in range(0, len(targets), chunk_rows):
        stop = min(start + chunk_rows, len(targets))
        chunk = logits(start, stop)  # [rows, C]
        rows = targets[start:stop]
        sampled_scores = np.take_along_axis(chunk, candidates[start:stop], axis=1)
        sampled_ranks.append(ranks_from_scores(sampled_scores, np.zeros(len(rows), np.int64)))
        full_scores = chunk[:, 1:]  # drop the reserved unknown id
        if seen is not None:
            full_scores = mask_seen_items(full_scores, rows, seen[start:stop])
        full_ranks.append(ranks_from_scores(full_scores, rows - 1))
    joined = [np.concatenate(r) if r else np.zeros(0, np.int64) for r in (sampled_ranks, full_ranks)]
    out = _scores(joined[0], k)
    full = _scores(joined[1], k)
    out.update({f"full_{key}": value for key, value in full.items()})
    out["n_negatives"] = int(n_negatives)
    out["n"] = int(len(targets))
    if keep_ranks:
        out["ranks"] = joined[0]
    return out


def profile_metrics(logits, labels):
    """Accuracy and macro F1 of the argmax class (Table 7). logits [n, C] or the function
    form of :func:`streamed_logits`."""
    logits = as_logit_function(logits)
    pred = np.argmax(logits(0, logits.n_rows), axis=1)
    return {
        "accuracy": float(accuracy_score(labels, pred)),
        "f1": float(f1_score(labels, pred, average="macro", zero_division=0)),
        "n": int(len(labels)),
    }


def gate_statistics(gates, users) -> dict:
    """How gate choices vary across users, over the distinct users of the rows (the gates
    depend only on the source sequence: each user counts once):

    - ``distinct_patterns``: distinct on/off patterns (a gate is on at >= 0.5, for
      UAF-Soft's continuous gates too);
    - ``block_on_share``: per block, the share of users whose gate is on: the block's
      utilisation (UAF Figure 3, ``utilisation.json``);
    - ``block_mean`` / ``block_std``: per block, the mean and the standard deviation of the
      gate value (for the 0/1 gates of UAF-Hard and UAF-RL the mean is ``block_on_share``).

    gates [n, N]; users [n].
    """
    gates = np.asarray(gates, np.float64)
    _, first = np.unique(np.asarray(users, dtype=str), return_index=True)
    per_user = gates[np.sort(first)]  # [users, N]
    on = (per_user >= 0.5).astype(np.int8)  # [users, N]
    patterns = np.unique(on, axis=0) if len(per_user) else per_user
    return {
        "users": int(len(per_user)),
        "distinct_patterns": int(len(patterns)),
        "block_on_share": [float(v) for v in on.mean(axis=0)] if len(per_user) else [],
        "block_mean": [float(v) for v in per_user.mean(axis=0)] if len(per_user) else [],
        "block_std": [float(v) for v in per_user.std(axis=0)] if len(per_user) else [],
    }
