"""The phone bundle of ``tflite.convert``: a window and the forget / retain masks rebuilt
from ``preprocessing.json`` and ``vocab.json`` alone (a small pure-Python reference, as an
app would do it) equal the library's; labels and preprocessing embedded as .tflite metadata."""

import json
import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A tiny run directory and its bundle files written into ``phone/``."""
    from individual_fixtures import make_tiny_run

    from pitune_tf.population import load_run
    from tflite.phone_bundle import bundle_contents, write_bundle

    run_dir = make_tiny_run(tmp_path_factory.mktemp("run"), n_users=3, with_teacher=False)
    run = load_run(run_dir)
    out = run_dir / "phone"
    write_bundle(bundle_contents(run, run.config.history, batch_size=8), out)
    return run_dir, out


# ---------------------------------------------------------------- the phone's side, pure Python


def phone_window(spec, vocab, events):
    """The window to predict the next event from ``events`` (dicts with a local ISO
    ``time``, ``event`` and optionally ``location``), using only the bundle's rules."""
    time, window = spec["time"], spec["window"]
    day = time["day_seconds"]

    def seconds(text):  # local wall-clock time read as UTC
        return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())

    def lookup(name, token):
        rules = spec["vocabularies"][name]
        tokens = vocab[rules["key"]]
        reserved = set(rules["reserved"])
        index = {t: i for i, t in enumerate(tokens) if t not in reserved}
        return index.get(token, rules["unknown_id"])

    no_location = spec["vocabularies"]["location"]["no_location_token"]
    ordered = sorted(events, key=lambda e: seconds(e["time"]))[-spec["history"]:]
    rows = {"location": [], "weekday": [], "slot": [], "event": [], "mask": []}
    for e in ordered:
        t = seconds(e["time"])
        rows["weekday"].append((math.floor(t / day) + time["weekday"]["epoch_weekday"]) % 7 + 1)
        rows["slot"].append((t % day) // (60 * time["slot"]["slot_minutes"]) + 1)
        rows["event"].append(lookup("event", e["event"]))
        rows["location"].append(lookup("location", e.get("location", no_location)))
        rows["mask"].append(window["real_mask"])
    pad = spec["history"] - len(ordered)
    assert window["padding"] == "left"
    return {k: [window["pad_mask"] if k == "mask" else window["pad_id"]] * pad + v
            for k, v in rows.items()}


def phone_masks(spec, user_labels):
    """forget_mask, retain_mask of PITuning Eq. 8-10 from the bundle's rules and numbers."""
    rules = spec["manage_intents"]
    real = rules["real_intent_ids"]
    n = spec["labels"]["n_intents"]
    counts = [0.0] * n
    for label in user_labels:
        counts[label] += 1

    def normalized(p):
        total = sum(p[i] for i in real)
        return [p[i] / total if i in real and total > 0 else 0.0 for i in range(n)]

    p_out, p_pop, p_in = (normalized(p) for p in (rules["p_out"], rules["p_pop"], counts))
    mean = 1 / len(real)
    forget = [float(i in real and (p_out[i] < rules["static_threshold"]
                                   or (p_pop[i] < mean and p_in[i] > mean))) for i in range(n)]
    retain = [float(i in real and not forget[i]) for i in range(n)]
    return forget, retain


# ---------------------------------------------------------------- tests


def test_bundle_files(bundle):
    from pitune_tf.individual.manage_intents import DEFAULT_STATIC_FRACTION
    from pitune_tf.population import load_run

    run_dir, out = bundle
    run = load_run(run_dir)
    labels = (out / "labels.txt").read_text().splitlines()
    assert labels == run.vocabs.intent.tokens and labels[:2] == ["<pad>", "<unk>"]
    assert json.loads((out / "vocab.json").read_text()) == run.vocabs.to_json()
    spec = json.loads((out / "preprocessing.json").read_text())
    assert spec["history"] == run.config.history == 6
    assert spec["model_inputs"] == ["location", "weekday", "slot", "event", "mask"]
    assert spec["time"]["slot"]["slot_minutes"] == 60 and spec["time"]["slot"]["n_ids"] == 25
    assert spec["manage_intents"]["p_pop"] == pytest.approx(run.p_pop.tolist())
    assert spec["manage_intents"]["static_threshold"] == pytest.approx(
        DEFAULT_STATIC_FRACTION / (len(labels) - 2))
    assert spec["personalization"]["batch_size"] == 8


def test_window_from_preprocessing_json_equals_the_library(bundle):
    from pitune_tf.data import read_events
    from pitune_tf.prediction import NextIntentPredictor

    run_dir, out = bundle
    spec = json.loads((out / "preprocessing.json").read_text())
    vocab = json.loads((out / "vocab.json").read_text())
    events = read_events(run_dir / "data" / "individual.parquet")
    user = events["user_id"].iloc[0]
    log = events[events["user_id"] == user].head(9).copy()
    log.iloc[3, log.columns.get_loc("event")] = "an app never seen"
    log.iloc[4, log.columns.get_loc("location")] = "<pad>"  # a reserved token as a value
    short = events[events["user_id"] == events["user_id"].iloc[-1]].head(2)  # left padding
    table = pd.concat([log, short])
    predictor = NextIntentPredictor.from_run(run_dir)
    for with_location in (True, False):
        given = table if with_location else table.drop(columns=["location"])
        library = predictor.next_windows(given)
        for row, (_, user_log) in enumerate(given.groupby("user_id", sort=True)):
            raw = [{"time": t.isoformat(), "event": e,
                    **({"location": loc} if with_location else {})}
                   for t, e, loc in zip(user_log["timestamp"], user_log["event"],
                                        user_log.get("location", user_log["event"]))]
            window = phone_window(spec, vocab, raw[::-1])  # any order: the phone sorts
            for key, values in window.items():
                assert getattr(library, key)[row].tolist() == values, (key, with_location)
    assert library.mask[1].tolist() == [0, 0, 0, 0, 1, 1]


def test_masks_from_preprocessing_json_equal_manage_intents(bundle):
    from pitune_tf.individual.manage_intents import intent_shares, manage_intents
    from pitune_tf.population import load_run

    run_dir, out = bundle
    spec = json.loads((out / "preprocessing.json").read_text())
    run = load_run(run_dir)
    n = run.vocabs.n_intents
    rng = np.random.default_rng(0)
    for labels in (rng.integers(2, n, 40), np.full(10, n - 1), np.r_[np.full(30, 2), [3]]):
        sets = manage_intents(run.p_out, run.p_pop, intent_shares(labels, n),
                              spec["manage_intents"]["static_threshold"])
        forget, retain = phone_masks(spec, labels.tolist())
        assert forget == sets.forget_mask().tolist() and retain == sets.retain_mask().tolist()
    assert sets.static  # the fixture's statically forgotten intent


def test_metadata_is_embedded_and_the_model_unchanged(bundle):
    from pitune_tf.population import load_run
    from tflite.export import export_inference
    from tflite.metadata import embed_metadata, read_metadata
    from tflite.runtime import Runtime

    run_dir, out = bundle
    run = load_run(run_dir)
    files = {name: (out / name).read_text() for name in ("labels.txt", "preprocessing.json")}
    path = export_inference(run.student, run_dir / "m.tflite", run.config.history, quantize=None,
                            metadata=files)
    content = path.read_bytes()
    meta = read_metadata(content)
    assert meta["labels.txt"].decode().splitlines() == run.vocabs.intent.tokens
    assert json.loads(meta["preprocessing.json"]) == json.loads(files["preprocessing.json"])
    again = read_metadata(embed_metadata(content, {"labels.txt": "x\n"}))
    assert again["labels.txt"] == b"x\n" and "preprocessing.json" in again
    plain = Runtime(embed_metadata(content, {}), required=("infer",))
    x = {k: np.ones((2, 6), np.int32) for k in ("location", "weekday", "slot", "event")}
    x["mask"] = np.ones((2, 6), np.float32)
    np.testing.assert_array_equal(Runtime(path, required=("infer",)).infer(x)["logits"],
                                  plain.infer(x)["logits"])
    with pytest.raises(ValueError, match="reserved"):
        embed_metadata(content, {"TFLITE_METADATA": b""})


@pytest.mark.slow
def test_convert_cli_writes_the_bundle(tmp_path, capsys):
    from individual_fixtures import make_tiny_run

    from tflite.convert import main
    from tflite.metadata import read_metadata

    run_dir = make_tiny_run(tmp_path / "run", n_users=2, with_teacher=False)
    assert main(["--run", str(run_dir), "--out", str(tmp_path / "phone"), "--batch-size", "4",
                 "--static-threshold", "0.05"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[convert]")]
    assert lines == ["[convert] student.tflite (1/3) ...", "[convert] student_int8.tflite (2/3) ...",
                     "[convert] student_fp16.tflite (3/3) ..."]  # not a terminal: one line each
    phone = tmp_path / "phone"
    spec = json.loads((phone / "preprocessing.json").read_text())
    assert spec["manage_intents"]["static_threshold"] == 0.05
    for name in ("student.tflite", "student_int8.tflite", "student_fp16.tflite"):
        meta = read_metadata((phone / name).read_bytes())
        assert meta["labels.txt"].decode() == (phone / "labels.txt").read_text()
        assert json.loads(meta["preprocessing.json"]) == spec
        assert json.loads(meta["vocab.json"]) == json.loads((phone / "vocab.json").read_text())
    # nothing shipped names the converting machine's paths: the run by name and relative path
    assert json.loads((phone / "student_tflite.json").read_text())["run"] == "run"
    assert json.loads((phone / "student_tflite.json").read_text())["run_path"] == "../run"
    prefix = str(tmp_path.resolve().parent).encode()
    files = sorted(p.name for p in phone.iterdir())
    assert files == ["labels.txt", "preprocessing.json", "student.tflite", "student_fp16.tflite",
                     "student_int8.tflite", "student_tflite.json", "vocab.json"]
    for name in files:
        assert prefix not in (phone / name).read_bytes(), name


def test_bundle_carries_a_train_part_rule_the_student_can_run(bundle, tmp_path):
    """``--train-part-rule``: the rule goes into the bundle as written; a rule that chooses a
    part the student lacks is one user error."""
    from pitune_tf.common.errors import UserInputError
    from pitune_tf.individual.train_part_rule import TrainPartRule
    from pitune_tf.population import load_run
    from tflite.phone_bundle import RULE_FILE, bundle_contents

    run = load_run(bundle[0])
    TrainPartRule(tree={"feature": "forget_size", "threshold": 0.5, "left": {"leaf": "head"},
                        "right": {"leaf": "all+unlearn"}},
                  candidates=("head", "all+unlearn")).save(tmp_path / "rule.json")
    contents = bundle_contents(run, 6, 8, train_part_rule=tmp_path / "rule.json")
    assert contents[RULE_FILE] == (tmp_path / "rule.json").read_text()
    assert RULE_FILE not in bundle_contents(run, 6, 8)
    TrainPartRule(tree={"leaf": "top9"}, candidates=("top9",)).save(tmp_path / "deep.json")
    with pytest.raises(UserInputError, match="the rule chooses top9, which this student cannot train"):
        bundle_contents(run, 6, 8, train_part_rule=tmp_path / "deep.json")
