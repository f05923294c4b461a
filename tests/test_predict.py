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
    from tflite.convert import convert_saved_model, export_inference
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
