"""The UAF evaluation protocol on hand-computed numbers: baselines, metrics, masking."""

import json

import numpy as np
import pytest

from nextitnet.baselines import baseline_scores
from nextitnet.evaluation import recommendation_metrics
from trainers.uaf import main


def test_mostpop_ranks_by_training_popularity_ties_by_id():
    # counts per id 0..4: [0, 2, 1, 3, 0] -> order 3, 1, 2, 0, 4
    scores = baseline_scores("mostpop", [3, 1, 3, 2, 3, 1], n_outputs=5, n_rows=2)
    np.testing.assert_array_equal(scores, [[2, 4, 3, 5, 1]] * 2)
    # full ranking over ids 1..4 (scores 4, 3, 5, 1): target 1 ranks 2nd, target 4 ranks 4th
    metrics = recommendation_metrics(np.asarray(scores), np.array([1, 4]), n_negatives=2, k=(1, 5))
    assert metrics["full_mrr@5"] == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert metrics["full_hr@1"] == 0.0 and metrics["full_hr@5"] == 1.0


def test_random_scores_are_seeded():
    a = baseline_scores("random-items", [1], n_outputs=7, n_rows=3, seed=5)
    np.testing.assert_array_equal(a, baseline_scores("random-items", [2], 7, 3, seed=5))
    assert a.shape == (3, 7) and not np.array_equal(a, baseline_scores("random-items", [1], 7, 3, seed=6))
    with pytest.raises(ValueError):
        baseline_scores("nope", [1], 7, 3)


def test_cli_baselines_without_training(tmp_path):
    out = tmp_path / "run"
    assert main(["--mode", "mostpop,random-items", "--preset", "tiny", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"mostpop", "random-items"}
    assert metrics["mostpop"]["trainable_parameters"] == 0 and "mrr@5" in metrics["mostpop"]["test"]
    assert not (out / "pretrain").exists()
    table = (out / "table.md").read_text()
    assert "| MostPop |" in table and "| Random |" in table
