"""metrics.json's model and baseline scores (PITuning Appendix D)."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.numeric import softmax
from pitune_tf.population.training_loop import eval_dataset


def predict_logits(model, windows, batch_size):
    """Logits ``[n, N_I]`` of ``model`` on ``windows`` (inference mode)."""
    if len(windows) == 0:
        return np.zeros((0, model.n_intents), np.float32)
    return model.predict(eval_dataset(windows, batch_size).map(lambda f, y: f), verbose=0)


def baseline_scores(windows, p_pop, event_intent):
    """Scores of the two baselines: most frequent intent; intent of the last event.

    Both break ties (for the ranking metrics) by the population intent share.
    """
    n = len(windows)
    most_frequent = np.tile(p_pop[None, :], (n, 1))
    last = np.zeros((n, len(p_pop)))
    last[np.arange(n), event_intent[windows.event[:, -1]]] = 1.0
    return {"most_frequent": most_frequent, "last_event_intent": last + 1e-3 * most_frequent}


def evaluate(config, teacher, student, splits, p_pop, event_intent):
    """metrics.json's content: teacher, student and the baselines on val and test."""
    from pitune_tf.metrics import intent_metrics

    _, val, test = splits
    results = {"teacher": {}, "student": {}, "baselines": {}}
    for split_name, windows in (("val", val), ("test", test)):
        if len(windows) == 0:
            continue
        for name, model in (("teacher", teacher), ("student", student)):
            scores = softmax(predict_logits(model, windows, 4 * config.batch_size))
            results[name][split_name] = intent_metrics(windows.label, scores)
        for name, scores in baseline_scores(windows, p_pop, event_intent).items():
            results["baselines"].setdefault(name, {})[split_name] = intent_metrics(
                windows.label, scores
            )
    return results
