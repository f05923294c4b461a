"""Individual stage with real (tiny) models: the unlearning step (PITuning Eq. 11), fine-tuning,
pooled evaluation, and the command line (serial vs parallel, skipped users, bad run dirs)."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.keras import keras, tf
from pitune_tf.individual.evaluation import evaluate_users, per_intent_frame, rarest_intents
from pitune_tf.individual.tuning_loss_model import TuningLossModel
from pitune_tf.metrics import intent_metrics

sys.path.insert(0, str(Path(__file__).parent))
from individual_fixtures import make_tiny_run

N_INTENTS = 7
L = 6


def _student(seed=0):
    from pitune_tf.models import build_student
    from pitune_tf.population import PopulationConfig

    keras.utils.set_random_seed(seed)
    config = PopulationConfig(history=L, student_layers=1, student_width=16, student_heads=2,
                              attention_units=[8], head_units=8, reconstruction=False)
    sizes = {"location": 5, "slot": 25, "event": 9, "intent": N_INTENTS, "weekday": 8}
    return build_student(config, sizes)


def _batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = {k: tf.constant(rng.integers(1, high, size=(n, L)), tf.int32)
         for k, high in (("location", 5), ("weekday", 8), ("slot", 25), ("event", 9))}
    x["mask"] = tf.ones([n, L], tf.float32)
    y = tf.constant(rng.integers(2, N_INTENTS, size=n), tf.int32)
    return x, y


def _probs(model, x):
    return tf.nn.softmax(model(x, training=False)).numpy()


def _unlearn(lam, steps):
    student, original = _student(), _student()
    original.set_weights(student.get_weights())
    shipped = [w.copy() for w in original.get_weights()]
    x, y = _batch()
    forget = np.zeros(N_INTENTS, np.float32)
    forget[[3, 5]] = 1.0
    retain = np.zeros(N_INTENTS, np.float32)
    retain[[2, 4, 6]] = 1.0
    tuner = TuningLossModel(student, N_INTENTS, mode="unlearn", lam=lam)
    tuner.compile(optimizer=keras.optimizers.SGD(1e-3))
    tuner.set_intent_masks(retain, forget)
    before = _probs(student, x)
    weight = tf.ones([len(y)])
    for _ in range(steps):  # M_o: the frozen original model's logits, as the engine passes them
        logs = tuner.train_batch((x, original(x, training=False), weight))
    after = _probs(student, x)
    assert set(logs) == {"loss", "retain_ce", "forget_ce", "forget_prob"}
    for w0, w1 in zip(shipped, original.get_weights()):  # the original model stays frozen
        np.testing.assert_array_equal(w0, w1)

    def share(p):  # the retained intents' distribution among themselves
        return p[:, [2, 4, 6]] / p[:, [2, 4, 6]].sum(1, keepdims=True)

    forgotten = (before[:, [3, 5]].sum(1).mean(), after[:, [3, 5]].sum(1).mean())
    return forgotten, np.abs(share(after) - share(before)).max()


def test_unlearning_lowers_forgotten_and_keeps_retained():
    # Measured on this tiny random student (seed 0), 5 SGD(1e-3) steps: forgotten mass
    # 0.254 -> 0.067 / 0.110 / 0.218 and retained shares moved at most 0.30 / 0.20 / 0.05
    # for lambda 0 / 1 / 5: the retained term anchors, the forgotten term forgets.
    (f_before, f_after), drift_1 = _unlearn(lam=1.0, steps=5)
    assert f_after < 0.8 * f_before, (f_before, f_after)
    _, drift_0 = _unlearn(lam=0.0, steps=5)
    (_, f_after_5), drift_5 = _unlearn(lam=5.0, steps=5)
    assert drift_5 < 0.1 and drift_5 < drift_1 < drift_0, (drift_0, drift_1, drift_5)
    assert f_after_5 < 0.95 * f_before  # still forgets while anchored
    # One step from the original: the retained term has zero gradient, lambda does not matter.
    (_, one_0), _ = _unlearn(lam=0.0, steps=1)
    (_, one_5), _ = _unlearn(lam=5.0, steps=1)
    assert one_0 == pytest.approx(one_5, abs=1e-6)


def test_unlearning_train_step_matches_unlearning_loss():
    from pitune_tf.individual.unlearning import unlearning_terms

    student, original = _student(), _student(seed=1)
    x, y = _batch()
    tuner = TuningLossModel(student, N_INTENTS, mode="unlearn", lam=0.7)
    tuner.compile(optimizer=keras.optimizers.SGD(0.0))
    retain = np.array([0, 0, 1, 1, 1, 0, 0], np.float32)
    forget = np.array([0, 0, 0, 0, 0, 1, 1], np.float32)
    tuner.set_intent_masks(retain, forget)
    expected = unlearning_terms(student(x), original(x), retain, forget, lam=0.7)
    logs = tuner.train_batch((x, original(x), tf.ones([len(y)])))
    for key in ("loss", "retain_ce", "forget_ce"):
        assert float(logs[key]) == pytest.approx(float(expected[key]), rel=1e-5)


def test_finetuning_lowers_training_loss_through_fit():
    student = _student()
    x, y = _batch(32)
    tuner = TuningLossModel(student, N_INTENTS, mode="finetune")
    tuner.compile(optimizer=keras.optimizers.Adam(1e-2))
    w = tf.ones([len(y)])
    first = float(tuner.train_batch((x, y, w))["ce"])
    history = tuner.fit(tf.data.Dataset.from_tensors((x, y, w)).repeat(20), epochs=1, verbose=0)
    assert set(history.history) == {"loss", "ce"}
    final = float(tuner.compute_losses((x, y, w), training=False)["loss"])
    assert final < first - 0.3, (first, final)


def test_focal_mode_reports_both_terms():
    tuner = TuningLossModel(_student(), N_INTENTS, mode="focal", focal_gamma=2.0)
    tuner.compile(optimizer=keras.optimizers.SGD(0.0))
    x, y = _batch()
    logs = tuner.train_batch((x, y, tf.ones([len(y)])))
    assert set(logs) == {"loss", "focal", "ce"}
    assert float(logs["focal"]) < float(logs["ce"])


def test_pooled_metrics_equal_metrics_of_concatenated_predictions():
    rng = np.random.default_rng(0)
    ys = [rng.integers(2, 6, size=n) for n in (5, 9, 0, 4)]
    scores = [rng.random((len(y), 6)) for y in ys]
    p_pop = np.array([0, 0, 0.5, 0.3, 0.15, 0.05])
    result = evaluate_users(ys, scores, p_pop, n_rare=2)
    expected = intent_metrics(np.concatenate(ys), np.concatenate(scores))
    for key, value in expected.items():
        assert result["pooled"][key] == pytest.approx(value)
    per_user = [intent_metrics(y, s) for y, s in zip(ys, scores) if len(y)]
    assert result["mean"]["prec_m"] == pytest.approx(np.mean([m["prec_m"] for m in per_user]))
    assert result["users"] == 3 and result["windows"] == 18
    assert result["gap"]["prec"] == pytest.approx(expected["prec_w"] - expected["prec_m"])
    assert rarest_intents(p_pop, 2) == [5, 4]
    y_all, pred = np.concatenate(ys), np.concatenate(scores).argmax(1)
    assert result["rare"]["5"] == pytest.approx(np.mean(pred[y_all == 5] == 5))


def test_per_intent_counts_by_hand():
    # ids 0, 1 reserved; intents a (2), b (3), c (4); population order b, a, c
    tokens = ["<pad>", "<unk>", "a", "b", "c"]
    p_pop = np.array([0.0, 0.0, 0.3, 0.6, 0.1])
    y = np.array([2, 3, 3, 4, 4])
    one_hot = lambda ids: np.eye(5)[ids]  # noqa: E731
    frame = per_intent_frame({"none": y, "oracle": y}, {"none": one_hot([3, 3, 3, 3, 2]), "oracle": one_hot(y)},
                             tokens, p_pop)
    none = frame[frame["method"] == "none"].set_index("intent")
    assert list(none.index) == ["b", "a", "c"]
    # b: 2 windows, predicted 4 times, both hits; a: 1 window, predicted once (on a c window);
    # c: 2 windows, never predicted
    assert none.loc["b", ["support", "predicted"]].tolist() == [2, 4]
    assert none.loc["b", "recall"] == 1.0 and none.loc["b", "precision"] == 0.5
    assert none.loc["b", "predicted_ratio"] == 2.0
    assert none.loc["a", "recall"] == 0.0 and none.loc["a", "precision"] == 0.0
    assert none.loc["c", "predicted"] == 0 and np.isnan(none.loc["c", "precision"])
    assert none.loc["c", "population_share"] == pytest.approx(0.1)
    oracle = frame[frame["method"] == "oracle"]
    assert (oracle["recall"] == 1.0).all() and (oracle["predicted_ratio"] == 1.0).all()
    empty = per_intent_frame({}, {}, tokens, p_pop)  # no user: the columns, no row
    assert empty.empty and "predicted_ratio" in empty.columns


def test_oracle_row_and_gap_closed_by_hand():
    from pitune_tf.individual.report import markdown_tables
    from pitune_tf.individual.summary import gap_closed, summarize

    none = {"prec_w": 0.4, "prec_m": 0.2, "rec_m": 0.3, "ndcg@3": 0.5}
    oracle = {"prec_w": 0.6, "prec_m": 0.2, "rec_m": 0.7, "ndcg@3": 0.9}
    method = {"prec_w": 0.5, "prec_m": 0.3, "rec_m": 0.2, "ndcg@3": 0.9}
    assert gap_closed(method, none, oracle) == pytest.approx(
        {"prec_w": 0.5, "prec_m": None, "rec_m": -0.25, "ndcg@3": 1.0})

    rng = np.random.default_rng(0)
    tokens, p_pop = ["<pad>", "<unk>", "a", "b", "c"], np.array([0, 0, 0.5, 0.3, 0.2])
    results = []
    for user, n in (("u1", 6), ("u2", 4)):
        y = rng.integers(2, 5, size=n)
        results.append({
            "user": user, "n_train": 1, "n_val": 0, "n_test": n, "y_true": y,
            "static": [], "dynamic": [], "forget": [], "retain": [],
            "methods": {m: {"scores": rng.random((n, 5)), "info": {"seconds": 1.0}}
                        for m in ("most_frequent", "none", "pituning")},
            "oracle_scores": np.eye(5)[y] * 0.9 + 0.02,  # right on every window
        })
    summary, per_user = summarize(results, tokens, p_pop, n_rare=2)
    assert list(summary) == ["most_frequent", "none", "pituning", "oracle"]
    assert summary["oracle"]["pooled"]["prec_w"] == 1.0 and "gap_closed" not in summary["oracle"]
    pooled = {m: intent_metrics(np.concatenate([r["y_true"] for r in results]),
                                np.concatenate([r["methods"][m]["scores"] for r in results]))
              for m in ("none", "pituning")}
    for k in ("prec_w", "prec_m", "rec_m", "ndcg@3"):
        assert summary["pituning"]["gap_closed"][k] == pytest.approx(
            (pooled["pituning"][k] - pooled["none"][k]) / (1.0 - pooled["none"][k]))
        assert summary["none"]["gap_closed"][k] == 0.0
    assert sorted(per_user[per_user.method == "oracle"].user_id) == ["u1", "u2"]
    versus = summary["pituning"]["versus"]  # pituning - none, paired over the same windows
    assert list(versus) == ["none", "most_frequent"]  # no finetune, no last_event_intent
    assert versus["none"]["unit"] == "window"  # 2 users: too few to resample
    assert list(summary["most_frequent"]["versus"]) == ["none"]  # trivial: against none only
    for k in ("prec_w", "acc"):
        assert versus["none"][k]["diff"] == pytest.approx(pooled["pituning"][k] - pooled["none"][k])
        assert versus["none"][k]["low"] <= versus["none"][k]["diff"] <= versus["none"][k]["high"]
    assert "versus" not in summary["none"] and "versus" not in summary["oracle"]
    table = markdown_tables(summary, {}, {"too_few_events": 0, "no_train_windows": 0,
                                          "no_test_windows": 0, "unknown": {},
                                          "unknown_label_windows": 0}, None)
    assert "| oracle | 1.0000 |" in table and "gap closed Prec_w |" in table
    assert f"| pituning | none | {versus['none']['prec_w']['diff']:+.4f} [" in table
    paired = [line for line in table.splitlines() if line.count(" [") == 4]  # 4 intervals
    assert len(paired) == 3 and all(line.endswith(" | windows |") for line in paired)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("run"), n_users=2, with_teacher=True)


def _cli(run, out, *extra, method="none,pituning"):
    from trainers.individual import main

    argv = ["--run", str(run), "--out", str(out), "--method", method,
            "--epochs", "2", "--lgbm-iterations", "20", "--quiet", *extra]
    assert main(argv) == 0
    return pd.read_csv(Path(out) / "per_user.csv"), json.loads((Path(out) / "summary.json").read_text())


def test_parallel_run_equals_serial_run(tiny_run, tmp_path):
    serial, serial_summary = _cli(tiny_run, tmp_path / "serial", "--dump-predictions")
    parallel, parallel_summary = _cli(tiny_run, tmp_path / "parallel", "--workers", "2")
    metrics = ["prec_w", "rec_w", "prec_m", "rec_m", "ndcg@3", "ndcg@5", "acc"]
    pd.testing.assert_frame_equal(serial[["user_id", "method", *metrics]],
                                  parallel[["user_id", "method", *metrics]], rtol=1e-6)
    for method in ("none", "pituning"):
        assert serial_summary["methods"][method]["pooled"] == pytest.approx(
            parallel_summary["methods"][method]["pooled"], rel=1e-6)
    for method in ("none", "pituning", "oracle"):  # the oracle rides in each user's record
        assert serial_summary["methods"][method]["pooled"] == pytest.approx(
            parallel_summary["methods"][method]["pooled"], rel=1e-6)
    predictions = pd.read_csv(tmp_path / "serial" / "predictions.csv")
    assert {"user_id", "timestamp", "true_intent", "pred_intent"} <= set(predictions.columns)
    assert len(predictions) == 4 * serial_summary["methods"]["none"]["windows"]  # none, pituning, both oracles
    results = (tmp_path / "serial" / "results.md").read_text()
    assert "| pituning |" in results and "![gains](gains.png)" in results
    from pitune_tf.common.plotting import is_png

    assert is_png(tmp_path / "serial" / "gains.png")  # per-user gain over none


def test_skipped_users_and_unknown_values_are_counted(tiny_run, tmp_path):
    df = pd.read_parquet(tiny_run / "data" / "individual.parquet")
    lonely = df.iloc[:1].assign(user_id="zz_one_event")
    strange = df[df.user_id == df.user_id.iloc[0]].assign(event="never_seen_event")
    strange["user_id"] = "zz_strange"
    strange.iloc[1:4, strange.columns.get_loc("intent")] = "never_seen_intent"
    path = tmp_path / "individual.csv"
    pd.concat([df, lonely, strange]).to_csv(path, index=False)
    _, summary = _cli(tiny_run, tmp_path / "out", "--data", str(path), "--users", "1",
                      method="none,lgbm")
    assert summary["skipped"]["too_few_events"] == 1
    assert summary["skipped_users"] == {"zz_one_event": "too_few_events"}
    assert summary["skipped"]["unknown"]["event"] == len(strange)
    assert summary["skipped"]["unknown"]["intent"] == 3
    assert summary["skipped"]["unknown_label_windows"] == 3  # dropped: no logit predicts them


def test_missing_run_file_is_a_clear_error(tiny_run, tmp_path, capsys):
    import shutil

    from pitune_tf.common.cli import run_main
    from trainers.individual import main

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    (broken / "p_out.json").unlink()
    assert run_main(main, ["--run", str(broken)]) == 2
    assert "p_out.json" in capsys.readouterr().err


def test_teacher_methods_run_for_several_users(tiny_run, tmp_path):
    """FP and PP tune the teacher per user from the same starting weights (the partial
    freeze reorders Keras' weight lists; the backend's fixed variable order must not care)."""
    per_user, summary = _cli(tiny_run, tmp_path / "fp", "--fp-users", "2", method="pp,fp")
    assert sorted(per_user.method.unique()) == ["fp", "oracle", "oracle_context", "pp"] and summary["users"] == 2
    assert set(summary["device_models"]) == {"pituning", "fp", "pp", "oracle"}  # oracle: no model
    assert (summary["device_models"]["pp"]["trainable_parameters"]
            < summary["device_models"]["fp"]["trainable_parameters"])


def test_oracle_beside_the_log_is_reported(tiny_run, tmp_path, capsys):
    """The run's data/individual_oracle.parquet (the history oracle) and
    individual_oracle_context.parquet are found; both rows are measured on the methods' test
    rows, and the context oracle beats the shipped student (their order against each other is
    checked on whole logs in test_synthetic: 2 users' test rows are too few)."""
    per_user, summary = _cli(tiny_run, tmp_path / "out", method="none")
    assert summary["oracle"] == str(tiny_run / "data" / "individual_oracle.parquet")
    methods = summary["methods"]
    assert methods["oracle"]["windows"] == methods["none"]["windows"]
    assert methods["oracle_context"]["windows"] == methods["none"]["windows"]
    context, history = methods["oracle_context"]["pooled"], methods["oracle"]["pooled"]
    assert context["prec_w"] >= methods["none"]["pooled"]["prec_w"]
    assert history["prec_w"] >= methods["none"]["pooled"]["prec_w"]
    assert set(methods["none"]["gap_closed"]) == {"prec_w", "prec_m", "rec_m", "ndcg@3"}
    assert set(per_user.method) == {"none", "oracle", "oracle_context"}
    assert "| oracle |" in (tmp_path / "out" / "results.md").read_text()
    _, without = _cli(tiny_run, tmp_path / "without", "--no-oracle", method="none")
    assert without["oracle"] is None and "oracle" not in without["methods"]
    assert "oracle_context" not in without["methods"]

    from pitune_tf.common.cli import run_main
    from trainers.individual import main

    oracle = pd.read_parquet(tiny_run / "data" / "individual_oracle.parquet")
    oracle.iloc[:-1].to_csv(tmp_path / "short.csv", index=False)  # the last event's row lost
    last = oracle.iloc[-1]
    assert run_main(main, ["--run", str(tiny_run), "--method", "none", "--quiet",
                           "--out", str(tmp_path / "bad"), "--oracle",
                           str(tmp_path / "short.csv")]) == 2
    assert f"no oracle row for user {last.user_id!r} at {last.timestamp}" in capsys.readouterr().err


def test_validation_holdout_never_reads_the_test_windows(tiny_run):
    """holdout="validation": the validation windows are scored as the test set, the newest
    training windows (as many) validate, the older ones train; by index."""
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.user_data import load_users, validation_holdout
    from pitune_tf.population import load_run

    run = load_run(tiny_run)
    m = int(run.config.min_history)
    users, _, _ = load_users(run, config=IndividualConfig(min_history=m))
    held, _, _ = load_users(run, config=IndividualConfig(min_history=m, holdout="validation"))
    assert [u.user for u in held] == [u.user for u in users if len(u.val)]
    for user, inner in zip(users, held):
        n, m = len(user.train), len(user.val)
        assert (len(inner.train), len(inner.val), len(inner.test)) == (n - m, m, m)
        np.testing.assert_array_equal(inner.test.timestamp, user.val.timestamp)
        np.testing.assert_array_equal(inner.val.timestamp, np.asarray(user.train.timestamp)[n - m:])
        np.testing.assert_array_equal(inner.train_event_index, user.train_event_index[:n - m])
        np.testing.assert_array_equal(inner.test_event_index, user.val_event_index)
        assert max(inner.val.timestamp) < min(inner.test.timestamp)
    import dataclasses

    one = dataclasses.replace(users[0], train=users[0].train.take([0]))
    assert validation_holdout(one) is None  # a single training window: nothing to validate on


def test_refit_keeps_every_choice_and_retrains_on_train_plus_validation(tiny_run):
    """refit: the epoch, beta and the validation scores are those of the run without refit
    (chosen before the validation windows are trained on); then exactly `best_epoch` epochs
    on train + validation from the same start, and the tuned model's P_in counts the
    validation labels (``prior`` is never refit)."""
    from pitune_tf.individual.backends import build_engine
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.user_data import load_users
    from pitune_tf.population import load_run

    run = load_run(tiny_run)
    records = {}
    for refit in (False, True):
        config = IndividualConfig(methods=("prior", "finetune", "pituning"), max_epochs=3,
                                  refit=refit, prior_after_tuning=True,
                                  min_history=int(run.config.min_history))
        engine = build_engine(run, config)
        users, _, _ = load_users(run, config=config)
        records[refit] = engine.run_user(users[0], config.methods)
    user = users[0]
    for method in ("prior", "finetune", "pituning"):
        plain, refit = records[False]["methods"][method], records[True]["methods"][method]
        np.testing.assert_allclose(refit["val_scores"], plain["val_scores"], rtol=1e-5, atol=1e-6)
        assert refit["info"]["prior_beta"] == plain["info"]["prior_beta"]
        assert "_val_scores" not in refit["info"]
        if method == "prior":  # never refit: the same scores
            np.testing.assert_allclose(refit["scores"], plain["scores"], rtol=1e-5, atol=1e-6)
            continue
        k = plain["info"]["best_epoch"]
        assert refit["info"]["best_epoch"] == k
        assert refit["info"].get("refit_epochs", 0) == k and len(refit["info"].get("refit_train_ce", [])) == k
        if k:
            assert not np.allclose(refit["scores"], plain["scores"])
            assert engine.prior_labels(user, refit["info"]).size == len(user.train) + len(user.val)
