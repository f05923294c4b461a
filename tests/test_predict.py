"""Next-intent predictions: the window after each user's newest event, the predictor on the
Keras student, a personalized weights file and a ``.tflite`` model, and the command line."""

import re

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny run directory (tests/individual_fixtures.py) with two float32 models of its
    student: ``infer.tflite`` (inference only, as ``tflite.convert`` writes the quantized
    ones) and ``weights.tflite`` (``infer`` and the weights signatures on resource variables,
    as in ``student.tflite``; ``train`` / ``unlearn`` left out: they are slow to trace)."""
    from individual_fixtures import make_tiny_run

    from pitune_tf.common.keras import tf
    from pitune_tf.population import load_run
    from tflite.export import convert_saved_model, export_inference
    from tflite.student_module import StudentModule

    run_dir = make_tiny_run(tmp_path_factory.mktemp("run"), n_users=3, with_teacher=False)
    run = load_run(run_dir)
    export_inference(run.student, run_dir / "infer.tflite", run.config.history, quantize=None)
    module = StudentModule(run.student, history=run.config.history, batch_size=4)
    keys = ("infer", "get_weights", "set_weights", "reset")
    root = tf.Module()
    root.module = module
    for key in keys:
        setattr(root, key, getattr(module, key))
    saved = tmp_path_factory.mktemp("saved") / "model"
    tf.saved_model.save(root, str(saved), signatures=module.concrete_signatures(keys))
    (run_dir / "weights.tflite").write_bytes(convert_saved_model(saved, keys, training=True))
    return run_dir


@pytest.fixture(scope="module")
def user_events(tiny_run, tmp_path_factory):
    """Three users' logs as a user would give them (CSV, no intent column), one user with
    fewer events than the window length."""
    from pitune_tf.data import read_events

    events = read_events(tiny_run / "data" / "individual.parquet")
    users = sorted(events["user_id"].unique())
    events = pd.concat([events[events["user_id"] == users[0]].tail(2),
                        events[events["user_id"] == users[1]],
                        events[events["user_id"] == users[2]].head(20)])
    path = tmp_path_factory.mktemp("events") / "user.csv"
    events.drop(columns=["intent"]).to_csv(path, index=False)
    return path


def _encoded(rows, history_vocab_from=None):
    from pitune_tf.data import Vocabularies, encode_events

    df = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "intent", "location"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    return encode_events(df, Vocabularies.fit(df))


def test_next_window_is_make_windows_with_a_dummy_next_event():
    """make_next_windows' row of each user equals make_windows' window of an event appended
    after the user's newest one (left padding for a short user, truncation for a long one)."""
    from pitune_tf.data.windows import make_next_windows, make_windows

    rows = [("b", f"2024-01-0{1 + i // 3} {8 + i}:10", f"e{i % 4}", f"i{i % 3}", f"l{i % 2}")
            for i in range(7)]
    rows += [("a", "2024-01-05 23:59", "e2", "i1", "l0"), ("a", "2024-01-06 00:01", "e3", "i0", "l1")]
    encoded = _encoded(rows)
    dummy = [(user, "2030-01-01 00:00", "e0", "i0", "l0") for user in ("a", "b")]
    with_dummy = _encoded(rows + dummy)
    for history in (1, 4, 9):
        nxt = make_next_windows(encoded, history)
        full = make_windows(with_dummy, history)
        last = np.r_[np.flatnonzero(full.user[1:] != full.user[:-1]), len(full) - 1]
        expected = full.take(last)
        assert nxt.user.tolist() == ["a", "b"]
        for key in ("location", "weekday", "slot", "event", "mask"):
            np.testing.assert_array_equal(getattr(nxt, key), getattr(expected, key), err_msg=key)
    nxt = make_next_windows(encoded, 4)
    # user a: 2 events, left-padded; Fri 2024-01-05 23:59 -> weekday 5, slot 24; Sat 00:01 -> 6, 1
    assert nxt.mask[0].tolist() == [0, 0, 1, 1]
    assert nxt.weekday[0].tolist() == [0, 0, 5, 6] and nxt.slot[0].tolist() == [0, 0, 24, 1]
    assert nxt.timestamp[0] == pd.Timestamp("2024-01-06 00:01").value // 10**9
    assert nxt.label.tolist() == [0, 0]


def test_keras_and_tflite_predictions_agree(tiny_run, user_events):
    from pitune_tf.prediction import NextIntentPredictor

    keras_p = NextIntentPredictor.from_run(tiny_run)
    tflite_p = NextIntentPredictor.from_run(tiny_run, model=tiny_run / "infer.tflite")
    windows = keras_p.next_windows(user_events)
    assert len(windows) == 3 and windows.mask[0].sum() == 2  # the 2-event user
    a, b = keras_p.probabilities(windows), tflite_p.probabilities(windows)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)
    top = keras_p.predict_next(user_events, top_k=3)
    assert list(top.columns) == ["user_id", "rank", "intent", "probability"]
    assert len(top) == 9 and top["rank"].tolist() == [1, 2, 3] * 3
    for i, (_, rows) in enumerate(top.groupby("user_id", sort=False)):
        order = np.argsort(-a[i, 2:], kind="stable")[:3] + 2
        assert rows["intent"].tolist() == [keras_p.intents[j] for j in order]
        np.testing.assert_allclose(rows["probability"], a[i, order], rtol=1e-6)
    assert not top["intent"].isin(["<pad>", "<unk>"]).any()
    pd.testing.assert_frame_equal(top, tflite_p.predict_next(user_events, top_k=3), atol=1e-5)


def test_personalized_weights_file_on_keras_and_tflite(tiny_run, user_events, tmp_path):
    """A weights file written by Runtime.save_weights gives the same predictions through the
    Keras student (assign_flat_weights) and through student.tflite (set_weights)."""
    from pitune_tf.prediction import NextIntentPredictor
    from tflite.runtime import Runtime

    rt = Runtime(tiny_run / "weights.tflite", required=("infer", "set_weights"))
    shipped = rt.get_weights()
    rt.set_weights(shipped + np.random.default_rng(0).normal(0, 0.3, shipped.shape).astype(np.float32))
    rt.save_weights(tmp_path / "me.weights")
    plain = NextIntentPredictor.from_run(tiny_run)
    keras_p = NextIntentPredictor.from_run(tiny_run, weights=tmp_path / "me.weights")
    tflite_p = NextIntentPredictor.from_run(tiny_run, weights=tmp_path / "me.weights",
                                            model=tiny_run / "weights.tflite")
    windows = plain.next_windows(user_events)
    personal = keras_p.probabilities(windows)
    np.testing.assert_allclose(personal, tflite_p.probabilities(windows), atol=1e-5)
    assert np.abs(personal - plain.probabilities(windows)).max() > 1e-3


def test_cli_prints_one_line_per_user_and_writes_the_table(tiny_run, user_events, tmp_path, capsys):
    from pitune_tf.common.cli import run_main
    from pitune_tf.predict import main

    out = tmp_path / "preds.csv"
    assert run_main(main, ["--run", str(tiny_run), "--events", str(user_events), "--top-k", "3",
                           "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    pattern = re.compile(r"^\S+  \S+ [01]\.\d{3}( \| \S+ [01]\.\d{3}){2}$")
    assert all(pattern.match(line) for line in lines), lines
    table = pd.read_csv(out)
    assert list(table.columns) == ["user_id", "rank", "intent", "probability"] and len(table) == 9
    first = table[table["rank"] == 1].iloc[0]
    assert lines[0].startswith(f"{first['user_id']}  {first['intent']} {first['probability']:.3f}")


@pytest.mark.parametrize("extra, message", [
    (["--events", "missing.csv"], "events file not found"),
    (["--top-k", "0"], "--top-k"),
    (["--top-k", "999"], "top_k must be in"),
    (["--weights", "missing.weights"], "weights file not found"),
    (["--out", "preds.txt.gz"], "--out"),
    (["--tau", "0.5"], "--tau is the exponent of --decision-rule prior"),
    (["--decision-rule", "prior"], "no student_prior_rule tau"),  # the run has no metrics.json
    (["--decision-rule", "prior", "--tau", "-1"], "tau must be >= 0"),
])
def test_cli_bad_input_is_one_error_line(tiny_run, user_events, tmp_path, capsys, monkeypatch,
                                         extra, message):
    from pitune_tf.common.cli import run_main
    from pitune_tf.predict import main

    monkeypatch.chdir(tmp_path)
    args = ["--run", str(tiny_run), "--events", str(user_events)]
    args = [a for i, a in enumerate(args) if not (extra[0] == "--events" and i in (2, 3))] + extra
    assert run_main(main, args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not list(tmp_path.iterdir())  # nothing written


def test_inference_only_model_refuses_a_weights_file(tiny_run, tmp_path):
    from pitune_tf.common.errors import UserInputError
    from pitune_tf.prediction import NextIntentPredictor

    (tmp_path / "me.weights").write_bytes(b"x")
    with pytest.raises(UserInputError, match="inference-only"):
        NextIntentPredictor.from_run(tiny_run, model=tiny_run / "infer.tflite",
                                     weights=tmp_path / "me.weights")


def test_cli_reads_the_users_own_schema(tiny_run, user_events, tmp_path, capsys):
    """--columns / --time-unit ms / --timezone on --events give the canonical file's lines."""
    from pitune_tf.common.cli import run_main
    from pitune_tf.predict import main

    canonical = pd.read_csv(user_events, dtype=str, parse_dates=["timestamp"])
    shifted = canonical["timestamp"] - pd.Timedelta(hours=8)  # Asia/Shanghai wall time - 8 h
    mine = pd.DataFrame({"uid": canonical["user_id"], "app": canonical["event"],
                         "cell": canonical["location"],
                         "ts": shifted.astype("datetime64[ms]").astype("int64")})
    mine.to_csv(tmp_path / "mine.csv", index=False)
    assert run_main(main, ["--run", str(tiny_run), "--events", str(user_events)]) == 0
    expected = capsys.readouterr().out
    assert run_main(main, ["--run", str(tiny_run), "--events", str(tmp_path / "mine.csv"),
                           "--columns", "user_id=uid,timestamp=ts,event=app,location=cell",
                           "--time-unit", "ms", "--timezone", "Asia/Shanghai"]) == 0
    assert capsys.readouterr().out == expected


def _run_with_tau(tiny_run, directory, tau):
    """A copy of the tiny run whose metrics.json holds the student's prior-rule tau."""
    import json
    import shutil

    run_dir = shutil.copytree(tiny_run, directory / "run")
    (run_dir / "metrics.json").write_text(json.dumps({"student_prior_rule": {"tau": tau}}))
    return run_dir


def test_prior_decision_rule_by_hand(tiny_run, user_events, monkeypatch):
    """p / P_pop^tau picks a rarer intent first: p = (.6, .25, .06, .04, .02, .015, .01, .005),
    P_pop = (.5, .2, .1, .1, .05, .03, .01, .01) give with tau = 1 the scores (1.2, 1.25, .6,
    .4, .4, .5, 1.0, .5): intent 1 first, then p's order: top 3 = intents 1, 0, 2 (argmax: 0,
    1, 2); tau = 0.5 keeps argmax's order (.849, .559, .190, ...). The reported probability
    stays p; reserved ids never come."""
    from pitune_tf.population import load_run
    from pitune_tf.prediction import NextIntentPredictor

    run = load_run(tiny_run)
    real = np.array([0.6, 0.25, 0.06, 0.04, 0.02, 0.015, 0.01, 0.005])
    p_pop = np.r_[0.0, 0.0, 0.5, 0.2, 0.1, 0.1, 0.05, 0.03, 0.01, 0.01]
    assert len(p_pop) == len(run.vocabs.intent.tokens)  # 2 reserved ids + 8 intents
    probs = np.tile(np.r_[0.3, 0.2, real * 0.5], (3, 1))  # the reserved ids' mass is ignored

    def top3(tau):
        predictor = NextIntentPredictor(run.vocabs, run.config.history, student=run.student,
                                        decision_rule="prior", p_pop=p_pop, tau=tau)
        monkeypatch.setattr(predictor, "probabilities", lambda windows: probs[:len(windows)])
        top = predictor.predict_next(user_events, top_k=3)
        first = top[top["user_id"] == top["user_id"].iloc[0]]
        return first["intent"].tolist(), first["probability"].tolist()

    intents = np.asarray(run.vocabs.intent.tokens)
    assert top3(1.0) == (intents[[3, 2, 4]].tolist(), [0.125, 0.3, 0.03])
    assert top3(0.5)[0] == top3(0.0)[0] == intents[[2, 3, 4]].tolist()


def test_prior_rule_reads_the_runs_tau(tiny_run, user_events, tmp_path):
    """from_run takes P_pop from p_out.json and tau from metrics.json (student_prior_rule);
    its rankings: the best probability / P_pop^tau first, then the probabilities' order."""
    from pitune_tf.population import load_run
    from pitune_tf.prediction import NextIntentPredictor

    run_dir = _run_with_tau(tiny_run, tmp_path, 0.75)
    predictor = NextIntentPredictor.from_run(run_dir, decision_rule="prior")
    assert predictor.tau == 0.75
    np.testing.assert_array_equal(predictor.p_pop, load_run(run_dir).p_pop)
    assert NextIntentPredictor.from_run(run_dir, decision_rule="prior", tau=0.25).tau == 0.25
    probs = predictor.probabilities(predictor.next_windows(user_events))
    prior = np.where(predictor.p_pop > 0, predictor.p_pop, np.inf)
    first = (probs / prior ** 0.75)[:, 2:].argmax(axis=1)
    ranked = probs[:, 2:].copy()
    ranked[np.arange(len(ranked)), first] += 1.0
    expected = np.argsort(-ranked, axis=1, kind="stable")[:, :2] + 2
    top = predictor.predict_next(user_events, top_k=2)
    assert top["intent"].tolist() == np.asarray(predictor.intents)[expected].ravel().tolist()
    np.testing.assert_allclose(top["probability"], np.take_along_axis(probs, expected, 1).ravel(),
                               rtol=1e-6)


def test_cli_decision_rule_prior(tiny_run, user_events, tmp_path, capsys):
    """--decision-rule prior prints the predictor's prior-rule ranking with the run's tau;
    --tau 0 is argmax (the default's lines)."""
    from pitune_tf.common.cli import run_main
    from pitune_tf.predict import main
    from pitune_tf.prediction import NextIntentPredictor, format_predictions

    run_dir = _run_with_tau(tiny_run, tmp_path, 1.0)
    base = ["--run", str(run_dir), "--events", str(user_events), "--top-k", "3"]
    assert run_main(main, base) == 0
    argmax = capsys.readouterr().out
    assert run_main(main, [*base, "--decision-rule", "prior", "--tau", "0"]) == 0
    assert capsys.readouterr().out == argmax
    out = tmp_path / "prior.csv"
    assert run_main(main, [*base, "--decision-rule", "prior", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    expected = NextIntentPredictor.from_run(run_dir, decision_rule="prior").predict_next(
        user_events, top_k=3)
    assert printed.strip().splitlines() == format_predictions(expected)
    assert pd.read_csv(out)["intent"].tolist() == expected["intent"].tolist()


def test_events_need_no_intent_column_and_errors_name_only_needed_columns(tiny_run, user_events,
                                                                           tmp_path):
    """Prediction never reads intents: a file without one, or without the intent column the
    schema names, is read; a missing column is named as the file would name it, and the
    columns listed as found are the file's own (no intent column made up)."""
    from pitune_tf.common.errors import DataError
    from pitune_tf.data.schema import Schema
    from pitune_tf.prediction import NextIntentPredictor

    predictor = NextIntentPredictor.from_run(tiny_run)
    expected = predictor.predict_next(user_events)
    canonical = pd.read_csv(user_events, dtype=str)
    assert "intent" not in canonical.columns
    named = Schema(columns={"intent": "category"})  # a column this file does not have
    pd.testing.assert_frame_equal(predictor.predict_next(user_events, schema=named), expected)
    mine = canonical.rename(columns={"user_id": "uid", "event": "app"})
    mine.to_csv(tmp_path / "mine.csv", index=False)
    with pytest.raises(DataError) as err:  # the run's (canonical) schema
        predictor.predict_next(tmp_path / "mine.csv")
    assert err.value.column == "user_id" and "intent" not in err.value.message
    assert err.value.message == "missing column (found: uid, timestamp, app, location)"
    with pytest.raises(DataError) as err:
        predictor.predict_next(tmp_path / "mine.csv", schema=Schema(columns={"user_id": "uid"}))
    assert err.value.column == "event" and "intent" not in err.value.message
    bad_time = mine.assign(timestamp="not a time").rename(columns={"timestamp": "ts"})
    bad_time.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError) as err:  # a conversion error names the file's column too
        predictor.predict_next(tmp_path / "bad.csv", schema=Schema(
            columns={"user_id": "uid", "event": "app", "timestamp": "ts"}))
    assert err.value.column == "ts"


def _streaming_predictor(tiny_run, runtime=False, tmp_path=None):
    """A predictor of the tiny run's vocabularies with a streaming student (span 2, random
    weights), Keras or (``runtime``) its ``infer`` + ``infer_step`` through LiteRT."""
    from pitune_tf.common.keras import keras, tf
    from pitune_tf.models import build_student
    from pitune_tf.population import PopulationConfig, load_run
    from pitune_tf.prediction import NextIntentPredictor
    from tflite.export import convert_saved_model
    from tflite.runtime import Runtime
    from tflite.student_module import StudentModule

    run = load_run(tiny_run)
    keras.utils.set_random_seed(0)
    config = PopulationConfig(history=run.config.history, student_layers=2, student_width=16,
                              student_heads=2, student_span=2, attention_units=[8], head_units=8)
    student = build_student(config, run.vocabs.sizes)
    if not runtime:
        return NextIntentPredictor(run.vocabs, run.config.history, student=student)
    module = StudentModule(student, history=run.config.history, batch_size=4)
    keys = ("infer", "infer_step")
    root = tf.Module()
    root.module, root.infer, root.infer_step = module, module.infer, module.infer_step
    tf.saved_model.save(root, str(tmp_path / "saved"), signatures=module.concrete_signatures(keys))
    path = tmp_path / "stream.tflite"
    path.write_bytes(convert_saved_model(tmp_path / "saved", keys, training=False))
    runtime = Runtime(path, required=keys)
    return NextIntentPredictor(run.vocabs, run.config.history, runtime=runtime)


def test_predictions_after_each_event_end_with_predict_next(tiny_run, user_events, capsys):
    """predict_each_event: top_k rows per event; each user's last event's rows are
    predict_next's (the default student reads each event's window); the CLI prints one line
    per event."""
    from pitune_tf.common.cli import run_main
    from pitune_tf.predict import main
    from pitune_tf.prediction import NextIntentPredictor

    predictor = NextIntentPredictor.from_run(tiny_run)
    assert not predictor.streams
    each = predictor.predict_each_event(user_events, top_k=2)
    n_events = len(pd.read_csv(user_events))
    assert list(each.columns) == ["user_id", "timestamp", "rank", "intent", "probability"]
    assert len(each) == 2 * n_events
    last = each.groupby("user_id", sort=False).tail(2).drop(columns="timestamp")
    pd.testing.assert_frame_equal(last.reset_index(drop=True),
                                  predictor.predict_next(user_events, top_k=2), atol=1e-6)
    assert run_main(main, ["--run", str(tiny_run), "--events", str(user_events),
                           "--each-event", "--top-k", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == n_events


def test_a_streaming_student_predicts_each_event_with_infer_step(tiny_run, user_events,
                                                                 tmp_path):
    """Event by event from a cached state (Keras step; LiteRT infer_step), the same numbers
    as each event's whole window (infer), every user's log sliding past the window."""
    from pitune_tf.data import encode_events
    from pitune_tf.data.windows import make_running_windows

    keras_p = _streaming_predictor(tiny_run)
    lite_p = _streaming_predictor(tiny_run, runtime=True, tmp_path=tmp_path)
    assert keras_p.streams and lite_p.streams
    encoded = encode_events(keras_p.events_table(user_events), keras_p.vocabs)
    assert np.diff(encoded.user_starts()).max() > 3 * keras_p.history
    windows = make_running_windows(encoded, keras_p.history)
    full = keras_p.probabilities(windows)
    np.testing.assert_allclose(keras_p.running_probabilities(encoded), full, atol=1e-5)
    np.testing.assert_allclose(lite_p.running_probabilities(encoded), full, atol=1e-5)
    np.testing.assert_allclose(lite_p.probabilities(windows), full, atol=1e-5)
    ends = encoded.user_starts()[1:] - 1  # each user's last event: predict_next's window
    next_windows = keras_p.next_windows(user_events)
    np.testing.assert_allclose(full[ends], keras_p.probabilities(next_windows), atol=1e-6)
