"""Recommenders without training, scored on the same protocol as the fine-tuned modes:
MostPop (target items by training popularity) and Random (a seeded random score)."""

from __future__ import annotations

import numpy as np

from nextitnet.modes import SCORE_MODES  # noqa: F401  (re-exported)


def baseline_scores(mode, train_targets, n_outputs, n_rows, seed=0) -> np.ndarray:
    """Scores [n_rows, n_outputs] of a baseline that does not look at the user.

    - ``mostpop``: every row ranks the outputs by their count among ``train_targets``, ties
      broken by the smaller id (a strict order, so pessimistic tie-handling in the metrics
      does not penalise it);
    - ``random-items``: i.i.d. uniform scores per row and output, drawn with ``seed``.

    Args:
        mode: str. One of ``SCORE_MODES``.
        train_targets: int array [n_train]. Output ids of the training rows.
        n_outputs: int. Number of output ids (target items with the reserved id 0, or classes).
        n_rows: int. Rows to score.
        seed: int.
    """
    if mode == "mostpop":
        counts = np.bincount(np.asarray(train_targets, np.int64), minlength=n_outputs)[:n_outputs]
        order = np.lexsort((np.arange(n_outputs), -counts))  # most popular first, then by id
        scores = np.empty(n_outputs, np.float32)
        scores[order] = np.arange(n_outputs, 0, -1, dtype=np.float32)  # [C], higher = more popular
        return np.broadcast_to(scores, (n_rows, n_outputs))
    if mode == "random-items":
        return np.random.default_rng(seed).random((n_rows, n_outputs), dtype=np.float32)
    raise ValueError(f"unknown baseline {mode!r}; choose one of {', '.join(SCORE_MODES)}")
