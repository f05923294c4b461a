"""metrics.json's model and baseline scores (PITuning Appendix D)."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.numeric import softmax
from pitune_tf.metrics import bootstrap_groups, intent_metrics, paired_bootstrap
from pitune_tf.population.training_loop import eval_dataset, is_streamed

PIECE_ROWS = 65_536  # windows whose logits are held at once when counting predictions


def predict_logits(model, windows, batch_size):
    """Logits ``[n, N_I]`` of ``model`` on ``windows`` (inference mode)."""
    if len(windows) == 0:
        return np.zeros((0, model.n_intents), np.float32)
    return model.predict(eval_dataset(windows, batch_size).map(lambda f, y: f), verbose=0)


def window_pieces(windows, rows=PIECE_ROWS):
    """``windows`` (in memory, or a ``WindowStream``: chunk by chunk) as in-memory
    :class:`Windows` of at most ``rows`` rows, in order."""
    chunks = ((windows.chunk_windows(int(k)) for k in windows.shard_chunks())
              if is_streamed(windows) else [windows])
    for chunk in chunks:
        for start in range(0, len(chunk), rows):
            yield chunk.take(slice(start, start + rows))


def predicted_counts(model, windows, batch_size, n_intents, rows=PIECE_ROWS):
    """How often ``model``'s most likely intent (argmax of its logits) is each intent id over
    ``windows``: int64 ``[N_I]`` (the population's predicted intent shares P_out of PITuning
    Eq. 8-10, once divided by ``len(windows)``).

    Logits are computed ``rows`` windows at a time (:func:`window_pieces`), never ``[n,
    N_I]`` at once: the same counts for windows in memory and streamed ones."""
    counts = np.zeros(n_intents, np.int64)
    for piece in window_pieces(windows, rows):
        logits = predict_logits(model, piece, batch_size)  # [<= rows, N_I]
        counts += np.bincount(logits.argmax(axis=1), minlength=n_intents)
    return counts


def baseline_scores(windows, p_pop, event_intent):
    """Scores of the two baselines: most frequent intent; intent of the last event.

    Both break ties (for the ranking metrics) by the population intent share.
    """
    n = len(windows)
    most_frequent = np.tile(p_pop[None, :], (n, 1))
    last = np.zeros((n, len(p_pop)))
    last[np.arange(n), event_intent[windows.event[:, -1]]] = 1.0
    return {"most_frequent": most_frequent, "last_event_intent": last + 1e-3 * most_frequent}


PRIOR_EXPONENTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # tau of the "p / prior^tau" decision rule


def prior_rule(scores, p_pop, tau):
    """The decision rule ``argmax p / P_pop^tau`` as ranking scores (tau = 0: plain argmax):
    the intent with the best ``p / P_pop^tau`` (the population's prior divided out, so rare
    intents are chosen more often; an intent the population never has is never chosen)
    comes first, and the other intents follow in the order of ``p``. Only the decision
    moves: dividing the whole ranking by the prior cost 0.11-0.13 of NDCG@3 more on the
    Foursquare TKY sample (tau = 1), for the same decisions.

    Args:
        scores: [n, N] probabilities (in [0, 1]).
        p_pop: [N] the population's intent shares.
        tau: float >= 0.

    Returns:
        [n, N] scores: ``scores`` plus 1 at each row's decided intent.
    """
    scores = np.asarray(scores, dtype=np.float64)
    prior = np.where(p_pop > 0, p_pop, np.inf)
    decided = (scores / prior[None, :] ** tau).argmax(axis=1)
    ranked = scores.copy()
    ranked[np.arange(len(scores)), decided] += 1.0
    return ranked


def choose_tau(labels, scores, p_pop) -> float:
    """The tau of PRIOR_EXPONENTS with the best mean of Prec_w and Rec_m on ``labels``
    (validation windows, never test rows; ties: the smaller tau)."""
    def value(tau):
        m = intent_metrics(labels, prior_rule(scores, p_pop, tau))
        return (m["prec_w"] + m["rec_m"]) / 2

    return max(PRIOR_EXPONENTS, key=lambda tau: (value(tau), -tau))


def model_scores(config, teacher, student, splits) -> dict:
    """``{(model name, split): probabilities [n, N_I]}`` of the teacher and the student on
    the non-empty validation and test windows."""
    _, val, test = splits
    return {(name, split): softmax(predict_logits(model, windows, 4 * config.batch_size))
            for name, model in (("teacher", teacher), ("student", student))
            for split, windows in (("val", val), ("test", test)) if len(windows)}


def evaluate(config, teacher, student, splits, p_pop, event_intent, scores=None):
    """metrics.json's content: teacher, student and the baselines on val and test, and each
    model with the ``p / prior^tau`` decision rule (``<model>_prior_rule``, tau chosen on
    the validation windows). ``scores`` (:func:`model_scores`, computed when None) are the
    models' probabilities."""
    _, val, test = splits
    results = {"teacher": {}, "student": {}, "baselines": {}}
    if scores is None:
        scores = model_scores(config, teacher, student, splits)
    baselines = {}
    for split_name, windows in (("val", val), ("test", test)):
        if len(windows) == 0:
            continue
        for name in ("teacher", "student"):
            results[name][split_name] = intent_metrics(windows.label, scores[name, split_name])
        baselines[split_name] = baseline_scores(windows, p_pop, event_intent)
        for name, baseline in baselines[split_name].items():
            results["baselines"].setdefault(name, {})[split_name] = intent_metrics(
                windows.label, baseline
            )
    if len(val):
        for name in ("teacher", "student"):
            tau = choose_tau(val.label, scores[name, "val"], p_pop)
            rule = results.setdefault(f"{name}_prior_rule", {"tau": tau})
            for split_name, windows in (("val", val), ("test", test)):
                if len(windows):
                    rule[split_name] = intent_metrics(
                        windows.label, prior_rule(scores[name, split_name], p_pop, tau))
    if len(test):
        results["student_vs_baselines"] = compare_to_baselines(
            test, scores["student", "test"], baselines["test"])
    return results


def compare_to_baselines(windows, scores, baselines) -> dict:
    """The student (``scores``) minus each trivial baseline (``baselines``: name -> scores,
    :func:`baseline_scores`) on ``windows`` (test), every metric, with a 95% paired-bootstrap
    interval (:func:`pitune_tf.metrics.paired_bootstrap`, 1,000 resamples, seed 0) over users
    when there are enough of them (:func:`pitune_tf.metrics.bootstrap_groups`), else over
    windows. Returns ``{"unit": "user" | "window", baseline: {metric: {diff, low, high}}}``."""
    groups = bootstrap_groups(windows.user)
    out = {"unit": "window" if groups is None else "user"}
    for name, baseline in baselines.items():
        out[name] = paired_bootstrap(windows.label, scores, baseline, groups=groups)
    return out
