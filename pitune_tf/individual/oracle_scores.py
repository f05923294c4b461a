"""The user oracle's scores on the individual users' test windows (``pitune_tf.data.
intent_oracle``): every table's ``oracle`` row and each method's ``gap_closed``."""

from __future__ import annotations

from pathlib import Path

from pitune_tf.data.intent_oracle import IntentOracle, find_oracle


def load_oracle_scores(users, data_path, oracle, intent_tokens):
    """``(path, {user: {"oracle_scores": probabilities [n_test, n_intents] on its test
    windows, and "oracle_context_scores" when an ``_oracle_context`` file is beside the
    log}})``, or ``(None, None)`` without an oracle.

    Args:
        users: list of UserData.
        data_path: the individual log (its oracle is looked for beside it).
        oracle: None (the oracle file beside ``data_path``, if any), False (none), or the
            path of an oracle file.
        intent_tokens: the run's intent names, by id.
    """
    if oracle is False:
        return None, None
    path = find_oracle(data_path) if oracle is None else Path(oracle)
    if path is None:
        return None, None
    files = {"oracle_scores": path}
    context = find_oracle(data_path, kind="context") if oracle is None else None
    if context is not None:  # the upper bound that knows each event's own context
        files["oracle_context_scores"] = context
    scores = {u.user: {} for u in users}
    for key, file in files.items():
        table = IntentOracle.read(file)
        for u in users:
            scores[u.user][key] = table.scores(u.user, u.test.timestamp, intent_tokens)
    return path, scores
