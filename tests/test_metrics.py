"""Metrics: numpy functions against scikit-learn and hand-computed values; Keras classes against
the numpy functions."""

import math

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from pitune_tf.common.keras import keras, tf
from pitune_tf.metrics import (
    ConfusionMatrixMetric,
    MacroPrecision,
    MacroRecall,
    NDCGAtK,
    WeightedPrecision,
    WeightedRecall,
    bootstrap_groups,
    difference_cell,
    intent_metrics,
    paired_bootstrap,
    rank_metrics,
    ranks_from_scores,
)

KEYS = ["prec_w", "rec_w", "prec_m", "rec_m", "ndcg@3", "ndcg@5", "acc"]


def _random_case(seed, n=300, n_classes=9):
    """Skewed labels, noisy scores that favour the label (so that precision/recall are not ~0),
    and classes absent from the labels or from the predictions."""
    rng = np.random.default_rng(seed)
    popularity = rng.dirichlet(np.full(n_classes - 2, 0.5))
    y_true = rng.choice(n_classes - 2, size=n, p=popularity)  # last two classes never true
    scores = rng.normal(size=(n, n_classes))
    scores[np.arange(n), y_true] += rng.uniform(0.0, 2.0)
    scores[:, -1] += 0.8  # a class that is never true but often predicted
    return y_true, scores


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_intent_metrics_match_sklearn(seed):
    y_true, scores = _random_case(seed)
    y_pred = scores.argmax(axis=1)
    got = intent_metrics(y_true, scores)
    assert list(got) == KEYS
    for average, suffix in (("weighted", "w"), ("macro", "m")):
        prec, rec, _, _ = precision_recall_fscore_support(
            y_true, y_pred, average=average, zero_division=0
        )
        assert got[f"prec_{suffix}"] == pytest.approx(prec, abs=1e-12)
        assert got[f"rec_{suffix}"] == pytest.approx(rec, abs=1e-12)
    assert got["acc"] == pytest.approx((y_pred == y_true).mean())
    assert got["rec_w"] == pytest.approx(got["acc"])  # support-weighted recall is the accuracy


def test_ndcg_hand_computed():
    scores = np.array(
        [
            [0.1, 0.5, 0.4, 0.0],  # label 2: one score above -> rank 2
            [0.9, 0.05, 0.03, 0.02],  # label 0: rank 1
            [0.1, 0.2, 0.3, 0.4],  # label 0: rank 4
        ]
    )
    y_true = np.array([2, 0, 0])
    got = intent_metrics(y_true, scores)
    assert got["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1 + 0) / 3)
    assert got["ndcg@5"] == pytest.approx((1 / math.log2(3) + 1 + 1 / math.log2(5)) / 3)
    assert got["acc"] == pytest.approx(1 / 3)
    # classes {0, 1, 2, 3}; predictions [1, 0, 3]: only class 0 is right (P=1, R=1/2)
    assert got["prec_m"] == pytest.approx(1 / 4)
    assert got["rec_m"] == pytest.approx((0.5 + 0 + 0 + 0) / 4)
    assert got["prec_w"] == pytest.approx((2 * 1 + 1 * 0) / 3)


def test_paired_bootstrap_differences_and_intervals():
    y_true, scores = _random_case(0, n=200)
    other = np.roll(scores, 1, axis=1)
    got = paired_bootstrap(y_true, scores, other, n_resamples=200, seed=3)
    a, b = intent_metrics(y_true, scores), intent_metrics(y_true, other)
    assert list(got) == KEYS
    for key in KEYS:  # the point estimate is the difference on all rows, inside its interval
        assert got[key]["diff"] == pytest.approx(a[key] - b[key])
        assert got[key]["low"] <= got[key]["diff"] <= got[key]["high"]
    assert got == paired_bootstrap(y_true, scores, other, n_resamples=200, seed=3)  # seeded
    same = paired_bootstrap(y_true, scores, scores, n_resamples=50)
    assert all(v == {"diff": 0.0, "low": 0.0, "high": 0.0} for v in same.values())
    for bad in ({"scores_b": other[:, :-1]}, {"groups": np.zeros(5)}, {"n_resamples": 0}):
        with pytest.raises(ValueError):
            paired_bootstrap(y_true, scores, **{"scores_b": other, **bad})


def test_bootstrap_groups_and_difference_cell():
    users = np.repeat([f"u{i}" for i in range(12)], 3)
    assert bootstrap_groups(users) is users  # 12 users: resample users
    assert bootstrap_groups(users, min_groups=13) is None  # too few: resample rows
    eight = users[:24]
    assert bootstrap_groups(eight) is eight  # 8 users (MIN_BOOTSTRAP_GROUPS): users
    assert bootstrap_groups(users[:21]) is None  # 7 users
    assert difference_cell({"diff": 0.02, "low": 0.001, "high": 0.05}) == (
        "+0.0200 [+0.0010, +0.0500] above")
    assert difference_cell({"diff": -0.02, "low": -0.05, "high": -0.001}).endswith("below")
    assert difference_cell({"diff": 0.01, "low": 0.0, "high": 0.02}).endswith("tie")


def test_weighted_rows_equal_repeated_rows():
    from pitune_tf.metrics.numpy_metrics import _intent_rows, _weighted_intent_metrics

    y_true, scores = _random_case(1, n=60)
    weight = np.random.default_rng(0).integers(0, 4, size=60)  # 0: the row is left out
    y, pred, gains = _intent_rows(y_true, scores, (3, 5))
    got = _weighted_intent_metrics(y, pred, gains, scores.shape[1], weight.astype(float))
    want = intent_metrics(np.repeat(y_true, weight), np.repeat(scores, weight, axis=0))
    assert got == pytest.approx(want, abs=1e-12)


def test_paired_bootstrap_by_group_hand_computed():
    # two groups of two rows; a is right on every row, b (always intent 1) on group "v" only:
    # a resample of the two groups draws "u" twice (acc a - b = 1), "v" twice (0) or both (1/2)
    y_true = np.array([0, 0, 1, 1])
    a = np.eye(2)[y_true]
    b = np.eye(2)[[1, 1, 1, 1]]
    got = paired_bootstrap(y_true, a, b, groups=["u", "u", "v", "v"], n_resamples=400)
    assert got["acc"]["diff"] == pytest.approx(0.5)
    assert (got["acc"]["low"], got["acc"]["high"]) == (0.0, 1.0)
    by_row = paired_bootstrap(y_true, a, b, n_resamples=400)  # rows: also 1/4 and 3/4
    assert 0.0 <= by_row["acc"]["low"] < 0.5 < by_row["acc"]["high"] <= 1.0
    assert set(np.round([by_row["acc"]["low"], by_row["acc"]["high"]], 2)) <= {0, .25, .75, 1}


def test_ranks_pessimistic_on_ties_and_scalar_column():
    scores = np.array([[1.0, 1.0, 1.0], [3.0, 2.0, 2.0], [0.0, 5.0, 1.0]])
    np.testing.assert_array_equal(ranks_from_scores(scores, [0, 1, 2]), [3, 3, 2])
    np.testing.assert_array_equal(ranks_from_scores(scores, 0), [3, 1, 3])
    with pytest.raises(ValueError):
        ranks_from_scores(scores, [0, 1, 3])


def test_rank_metrics_hand_computed():
    got = rank_metrics([1, 3, 6, 25])
    assert list(got) == ["hr@5", "mrr@5", "hr@20", "mrr@20"]
    assert got["hr@5"] == pytest.approx(2 / 4)
    assert got["mrr@5"] == pytest.approx((1 + 1 / 3) / 4)
    assert got["hr@20"] == pytest.approx(3 / 4)
    assert got["mrr@20"] == pytest.approx((1 + 1 / 3 + 1 / 6) / 4)
    assert rank_metrics([2], k=(1,)) == {"hr@1": 0.0, "mrr@1": 0.0}


def _keras_metrics(n_classes):
    return {
        "prec_w": WeightedPrecision(n_classes),
        "rec_w": WeightedRecall(n_classes),
        "prec_m": MacroPrecision(n_classes),
        "rec_m": MacroRecall(n_classes),
        "ndcg@3": NDCGAtK(3),
        "ndcg@5": NDCGAtK(5),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_keras_metrics_equal_numpy_over_batches(seed):
    y_true, scores = _random_case(seed, n=90)
    expected = intent_metrics(y_true, scores)
    for key, metric in _keras_metrics(scores.shape[1]).items():
        for batch in np.array_split(np.arange(len(y_true)), 3):
            # labels as Keras passes them from compile: float [batch, 1]
            metric.update_state(
                y_true[batch, None].astype(np.float32), scores[batch].astype(np.float32)
            )
        assert float(metric.result()) == pytest.approx(expected[key], abs=1e-5), key
        metric.reset_state()
        assert float(metric.result()) == 0.0


def test_keras_metrics_in_compile_and_config_round_trip():
    y_true, scores = _random_case(5, n=64, n_classes=6)
    model = keras.Sequential([keras.layers.Dense(6, input_shape=(6,))])
    metrics = list(_keras_metrics(6).values())
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=metrics,
    )
    features = scores.astype(np.float32)
    logs = model.evaluate(
        features, y_true.astype(np.int32), batch_size=16, verbose=0, return_dict=True
    )
    expected = intent_metrics(y_true, model.predict(features, verbose=0))
    for key, metric in _keras_metrics(6).items():
        assert logs[metric.name] == pytest.approx(expected[key], abs=1e-5), key
    assert sorted(m.name for m in metrics) == sorted(
        ["prec_w", "rec_w", "prec_m", "rec_m", "ndcg_at_3", "ndcg_at_5"]
    )
    for metric in metrics + [ConfusionMatrixMetric(6, quantity="recall", average="macro")]:
        clone = keras.metrics.deserialize(keras.metrics.serialize(metric))
        assert type(clone) is type(metric)
        assert clone.get_config() == metric.get_config()


def test_keras_metric_sample_weight():
    metric = NDCGAtK(1)
    logits = tf.constant([[2.0, 1.0], [2.0, 1.0]])
    metric.update_state(tf.constant([0, 1]), logits, sample_weight=tf.constant([3.0, 1.0]))
    assert float(metric.result()) == pytest.approx(3 / 4)
    with pytest.raises(ValueError):
        ConfusionMatrixMetric(4, quantity="f1")
