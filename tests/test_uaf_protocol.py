"""The UAF evaluation protocol on hand-computed numbers: baselines, metrics, masking."""

import json

import numpy as np
import pytest
from toy_models import toy_regression

from nextitnet.baselines import baseline_scores
from nextitnet.data import read_atomic
from nextitnet.evaluation import gate_statistics, ndcg_at_k, recommendation_metrics
from nextitnet.stage_fit import fit_stage
from nextitnet.validation_monitor import ValidationMonitor
from pitune_tf.common.cli import run_main
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras
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
    assert set(metrics) == {"mostpop", "random-items", "oracle"}  # synthetic data: its oracle too
    assert metrics["mostpop"]["trainable_parameters"] == 0 and "mrr@5" in metrics["mostpop"]["test"]
    assert metrics["oracle"]["test"]["mrr@5"] > metrics["random-items"]["test"]["mrr@5"]
    assert not (out / "pretrain").exists()
    table = (out / "table.md").read_text()
    assert "| MostPop |" in table and "| Random |" in table and "| Oracle |" in table


def test_synthetic_oracle_is_the_generating_distribution():
    """Each user's oracle row is a distribution; with every target related to the source only
    the main and (main + side) blocks have mass; with none, every block has 1 / k; and over
    many users the targets drawn follow the mean oracle (total variation over items and over
    blocks within the sampling noise of ~9,000 draws)."""
    from nextitnet.data import generate_cross_domain

    sizes = dict(n_users=3000, n_source_only_users=0, n_clusters=4, max_targets=5)
    data = generate_cross_domain("tiny", seed=0, **sizes)
    oracle = np.asarray(data.target_oracle, np.float64)
    np.testing.assert_allclose(oracle.sum(axis=1), 1.0, rtol=1e-5)
    blocks = oracle.reshape(len(data.users), 4, -1).sum(axis=2)  # [users, k]
    assert ((blocks > 0).sum(axis=1) <= 2).all()
    index = {item: i for i, item in enumerate(data.oracle_items)}
    counts = np.zeros(len(index))
    weights = np.zeros(len(index))
    for row, items in zip(oracle, data.targets):
        for item in items:
            counts[index[item]] += 1
        weights += row * len(items)
    empirical, expected = counts / counts.sum(), weights / weights.sum()
    assert 0.5 * np.abs(empirical - expected).sum() < 0.06  # ~0.035 is the sampling noise here
    by_block = [x.reshape(4, -1).sum(axis=1) for x in (empirical, expected)]
    assert 0.5 * np.abs(by_block[0] - by_block[1]).sum() < 0.02
    unrelated = generate_cross_domain("tiny", seed=0, p_target_related=0.0, **sizes)
    np.testing.assert_allclose(np.asarray(unrelated.target_oracle).reshape(3000, 4, -1).sum(axis=2),
                               0.25, rtol=1e-5)
    spread = generate_cross_domain("tiny", seed=0, p_target_related=0.5, related_spread=0.5, **sizes)
    related = np.asarray(spread.target_oracle).reshape(3000, 4, -1).sum(axis=2).max(axis=1)
    assert related.min() < 0.4 and related.max() > 0.9  # r_u differs across users
    with pytest.raises(UserInputError, match="p_target_related"):
        generate_cross_domain("tiny", p_target_related=1.5)


def _monitored_fit(stage, fail_at=None):
    """A fit whose validation scores are scripted per epoch: best at epoch 2, patience 2."""
    learner, net, rows = toy_regression(8, 2, keras.optimizers.SGD(0.1))
    arrays = {"x": rows, "y": rows.sum(axis=1)}
    snapshots = {}
    scripted = [0.1, 0.3, 0.2, 0.25, 0.29, 0.5]

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots[epoch + 1] = net.get_weights()
            if epoch + 1 == fail_at:
                raise RuntimeError("interrupted")

    monitor = ValidationMonitor(net, lambda logs: {"mrr@5": scripted[max(snapshots) - 1]}, "mrr@5",
                                stage, patience=2)
    history = fit_stage(learner, arrays, 4, 0, 6, stage, callbacks=[Snapshot()], verbose=0,
                        monitor=monitor)
    return net, monitor, snapshots, history


def test_early_stopping_restores_the_best_epoch_and_resumes_to_the_same_result(tmp_path):
    net, monitor, snapshots, _ = _monitored_fit(tmp_path / "a")
    # scores 0.1, 0.3, 0.2, 0.25: no improvement on epochs 3 and 4 -> stop after epoch 4
    assert monitor.state["best"] == {"epoch": 2, "value": 0.3} and monitor.state["stopped_epoch"] == 4
    assert sorted(snapshots) == [1, 2, 3, 4] and monitor.curve() == [0.1, 0.3, 0.2, 0.25]
    net.load_weights(str(tmp_path / "a/best.weights.h5"))
    for got, want in zip(net.get_weights(), snapshots[2]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(RuntimeError):
        _monitored_fit(tmp_path / "b", fail_at=3)
    resumed, again, _, history = _monitored_fit(tmp_path / "b")
    assert again.state["stopped_epoch"] == 4 and again.curve() == monitor.curve()
    assert len(history["loss"]) == 4
    resumed.load_weights(str(tmp_path / "b/best.weights.h5"))
    for got, want in zip(resumed.get_weights(), snapshots[2]):
        np.testing.assert_array_equal(got, want)
    _, third, snaps, history = _monitored_fit(tmp_path / "b")  # done: nothing is fitted again
    assert snaps == {} and third.done and not (tmp_path / "b/backup").exists()
    assert len(history["loss"]) == 4  # the logs of every epoch, read back


def test_gate_statistics_over_distinct_users():
    gates = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.2]])
    stats = gate_statistics(gates, np.array(["a", "a", "b", "c"], dtype=object))
    # users a [1, 0], b [0, 1], c [0.6, 0.2] -> patterns 10, 01, 10: two distinct
    assert stats["users"] == 3 and stats["distinct_patterns"] == 2
    np.testing.assert_allclose(stats["block_mean"], [1.6 / 3, 1.2 / 3])  # mean gate value
    np.testing.assert_allclose(stats["block_on_share"], [2 / 3, 1 / 3])  # users with gate >= 0.5
    np.testing.assert_allclose(stats["block_std"], [np.std([1, 0, 0.6]), np.std([0, 1, 0.2])])


def test_ndcg_hand_computed():
    # ranks 1, 3, 6 at k = 5: (1 + 1 / log2(4) + 0) / 3 = 0.5
    assert ndcg_at_k([1, 3, 6], 5) == pytest.approx(0.5)
    assert ndcg_at_k([], 5) == 0.0


def test_full_ranking_masks_seen_items_but_not_the_positive():
    logits = np.array([[0.0, 0.9, 0.8, 0.7, 0.1]], np.float32)  # ids 0..4, target 3
    seen = np.empty(1, dtype=object)
    seen[0] = np.array([1, 3], np.int32)  # 1 is masked, 3 is the positive itself
    masked = recommendation_metrics(logits, np.array([3]), n_negatives=2, k=(5,), seen=seen)
    plain = recommendation_metrics(logits, np.array([3]), n_negatives=2, k=(5,))
    assert masked["full_mrr@5"] == pytest.approx(1 / 2) and plain["full_mrr@5"] == pytest.approx(1 / 3)
    assert masked["full_ndcg@5"] == pytest.approx(1 / np.log2(3))
    assert masked["mrr@5"] == plain["mrr@5"]  # the sampled protocol is not masked


def _write_atomic(folder, source, target, user=None):
    folder.mkdir(parents=True, exist_ok=True)
    header = "user_id:token\titem_id:token\ttimestamp:float\n"
    (folder / "source.inter").write_text(header + source)
    (folder / "target.inter").write_text(header + target)
    if user is not None:
        (folder / "profile.user").write_text(user)


def test_atomic_files_ordered_by_time_with_string_ids_and_profiles(tmp_path):
    _write_atomic(
        tmp_path / "d",
        "bob\ts2\t5\nann\ts9\t3.5\nann\ts1\t1\nbob\ts3\t2\nann\ts4\t2\n",
        "ann\tt7\t9\nann\tt5\t4\nzed\tt1\t1\n",
        "user_id:token\tgender:token\tage:token\nann\tF\t25\n",
    )
    data = read_atomic(tmp_path / "d")
    assert data.users == ["ann", "bob"] and data.source == [["s1", "s4", "s9"], ["s3", "s2"]]
    assert data.pretrain == data.source and data.targets == [["t5", "t7"], []]
    assert data.profiles == {"gender": ["F", "<unknown>"], "age": ["25", "<unknown>"]}
    assert data.skipped_lines == 1  # zed has no source interactions


@pytest.mark.parametrize("source, message", [
    ("ann\ts1\tyesterday\n", "row 1, column 'timestamp': non-numeric timestamp"),
    ("ann\t\t1\n", "row 1, column 'item_id': empty value"),
    ("", "no interactions"),
])
def test_atomic_files_bad_input_is_one_error_line(tmp_path, capsys, source, message):
    _write_atomic(tmp_path / "d", source, "ann\tt1\t1\n")
    assert run_main(main, ["--data-atomic", str(tmp_path / "d"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err
    (tmp_path / "d" / "target.inter").unlink()
    with pytest.raises(UserInputError, match="missing target.inter"):
        read_atomic(tmp_path / "d")


def test_streamed_scoring_in_chunks_equals_the_whole_array():
    """Scoring chunk by chunk (memory bounded by chunk_rows * C) gives the same numbers."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(37, 12)).astype(np.float32)
    targets = rng.integers(1, 12, size=37)
    seen = np.empty(37, dtype=object)
    for i in range(37):
        seen[i] = rng.integers(1, 12, size=3).astype(np.int32)
    whole = recommendation_metrics(logits, targets, n_negatives=5, k=(1, 5), seen=seen)
    calls = []

    def chunks(start, stop):
        calls.append(stop - start)
        return logits[start:stop]
    chunks.n_rows, chunks.n_outputs = logits.shape
    streamed = recommendation_metrics(chunks, targets, n_negatives=5, k=(1, 5), seen=seen, chunk_rows=8)
    assert streamed == whole
    assert max(calls) == 8 and sum(calls) == 37
