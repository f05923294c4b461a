"""The user's journeys end to end, with default settings at tiny sizes (nothing switched off):
a default that breaks a later stage fails here, not on a user's machine.

- train -> phone bundle -> on-device personalization -> predictions: ``trainers.pipeline``
  (the quickstart's command) on ``--preset tiny``, each stage the command the docs show;
- own data -> train -> predict: ``tests/test_data_schema.py`` (``schema_run``: a raw CSV with
  its own column names, milliseconds and a time zone; predictions read the run's schema) and
  the docs' Python example (``tests/test_docs.py``);
- the same journey with a streaming student (``--student-span``): its bundle predicts event by
  event (``infer_step``), below;
- UAF on atomic files -> recommend: below;
- experiments: below (one table of each paper's suite).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def command(*argv, cwd=ROOT):
    """``python -m argv...`` as a user runs it; its output on failure."""
    done = subprocess.run([sys.executable, "-m", *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    """The quickstart's journey on the tiny preset: population (defaults: IAT, reconstruction,
    the copy term), phone bundle, LiteRT personalization of 2 users, predictions, report."""
    out = tmp_path_factory.mktemp("journey") / "demo"
    printed = command("trainers.pipeline", "--out", out, "--users", 2, "--epochs", 2,
                      "--population-args", "--preset tiny")
    return out, printed


def test_pipeline_ships_the_default_model_to_the_phone(journey):
    out, printed = journey
    config = json.loads((out / "config.json").read_text())
    assert config["repeat_term"] and config["use_iat"] and config["reconstruction"]
    for name in ("student.tflite", "labels.txt", "vocab.json", "preprocessing.json",
                 "student_tflite.json", "predictions.csv", "report.md",
                 "device/summary.json", "device/results.md"):
        assert (out / name).is_file(), name
    device = json.loads((out / "device" / "summary.json").read_text())
    assert device["backend"] == "litert" and device["users"] == 2
    assert {"none", "finetune", "pituning", "most_frequent", "last_event_intent"} <= set(
        device["config"]["methods"])
    report = (out / "report.md").read_text()
    for section in ("## Population stage", "## Phone bundle", "## On-device personalization",
                    "## Next intents from the bundle"):
        assert section in report, section
    assert "![" not in printed  # images stay in the files
    assert "report:" in printed.splitlines()[-1]


def test_bundle_names_no_path_of_the_converting_machine(journey):
    out, _ = journey
    prefix = str(out.parent.resolve())
    for name in ("student_tflite.json", "preprocessing.json", "vocab.json", "labels.txt"):
        assert prefix not in (out / name).read_text(), name
    assert prefix.encode() not in (out / "student.tflite").read_bytes()


def test_bundle_predictions_agree_with_keras_and_its_train_signature_runs(journey):
    from pitune_tf.prediction import NextIntentPredictor
    from tflite.runtime import Runtime

    out, _ = journey
    events = out / "data" / "example_user.csv"
    keras = NextIntentPredictor.from_run(out)
    lite = NextIntentPredictor.from_run(out, model=out / "student.tflite", backend="litert")
    windows = keras.next_windows(events)
    np.testing.assert_allclose(lite.probabilities(windows), keras.probabilities(windows),
                               atol=2e-5)
    written = pd.read_csv(out / "predictions.csv")
    assert written["intent"].tolist() == lite.predict_next(events)["intent"].tolist()

    runtime = Runtime(out / "student.tflite", backend="litert")  # the train signature, once
    before = runtime.get_weights()
    features = windows.features()
    labels = np.asarray([keras.intents.index(written["intent"][0])], np.int32)
    loss = runtime.train({k: features[k] for k in features}, labels, learning_rate=1e-2)
    assert np.isfinite(loss) and not np.allclose(runtime.get_weights(), before)


def _atomic_folder(folder):
    """The tiny UAF world written as RecBole atomic files (``source.inter``,
    ``target.inter``), as a user's own cross-domain log would come."""
    from nextitnet.data import generate_cross_domain
    from nextitnet.uaf_config import PRESETS, UAFConfig
    from pitune_tf.common.config import resolve_config

    data = generate_cross_domain(resolve_config(UAFConfig, PRESETS, "tiny").synthetic, seed=0)
    folder.mkdir()
    header = "user_id:token\titem_id:token\ttimestamp:float\n"
    for name, sequences in (("source.inter", data.source),
                            ("target.inter", data.targets)):
        rows = [f"{u}\t{item}\t{t}" for u, seq in zip(data.users, sequences)
                for t, item in enumerate(seq)]
        (folder / name).write_text(header + "\n".join(rows) + "\n")
    return data


def test_uaf_on_atomic_files_then_recommend(tmp_path):
    from nextitnet.uaf_recommender import UAFRecommender

    data = _atomic_folder(tmp_path / "atomic")
    run = tmp_path / "uaf"
    printed = command("trainers.uaf", "--mode", "soft", "--preset", "tiny", "--data-atomic",
                      tmp_path / "atomic", "--out", run, "--quiet")
    for row in ("MostPop", "Random", "UAF-Soft"):  # the trivial baselines, whatever --mode
        assert row in printed, row
    recommender = UAFRecommender.from_run(run, "soft")
    users = data.users[:3]
    top = recommender.recommend({u: s for u, s in zip(users, data.source)}, top_k=4)
    assert top["user_id"].tolist() == [u for u in users for _ in range(4)]
    assert set(top["item"]) <= set(recommender.target_tokens[1:])


def test_experiments_one_table_of_each_paper(tmp_path, journey):
    out, _ = journey
    command("trainers.experiments", "uaf", "--preset", "tiny", "--seeds", "1", "--only",
            "uaf_table2", "--modes", "mostpop,random-items,soft", "--out", tmp_path / "uaf")
    table = pd.read_csv(tmp_path / "uaf" / "uaf_table2.csv")
    assert table["mode"].tolist() == ["mostpop", "random-items", "soft", "oracle"]  # synthetic: its ceiling
    command("trainers.experiments", "pituning", "--run", out, "--preset", "tiny", "--seeds", "1",
            "--only", "pituning_fig6", "--out", tmp_path / "pituning")
    assert (tmp_path / "pituning" / "pituning_fig6.csv").is_file()
    assert "PITuning Figure 6" in (tmp_path / "pituning" / "index.md").read_text()


def test_fine_tuning_a_part_on_both_backends(journey, tmp_path):
    """``--train-part head``: the phone's ``train_head`` signature and the Keras tuner over
    the same part give the same users' results; a part the student lacks is one error."""
    out, _ = journey
    common = ["--run", out, "--users", 2, "--epochs", 2, "--method", "finetune",
              "--train-part", "head", "--quiet"]
    command("trainers.individual", *common, "--backend", "litert", "--out", tmp_path / "lite")
    command("trainers.individual", *common, "--out", tmp_path / "keras")
    lite = json.loads((tmp_path / "lite" / "summary.json").read_text())
    keras = json.loads((tmp_path / "keras" / "summary.json").read_text())
    assert lite["config"]["train_part"] == keras["config"]["train_part"] == "head"
    a = pd.read_csv(tmp_path / "lite" / "per_user.csv").set_index(["user_id", "method"])
    b = pd.read_csv(tmp_path / "keras" / "per_user.csv").set_index(["user_id", "method"])
    np.testing.assert_allclose(a.loc[b.index, "prec_w"], b["prec_w"], atol=0.02)
    # --train-part auto on the phone's runtime: a rule that gives every user the head (and
    # no unlearning) is exactly the head run, pituning included
    from pitune_tf.individual.train_part_rule import TrainPartRule

    TrainPartRule(tree={"leaf": "head"}, candidates=("head",)).save(tmp_path / "rule.json")
    command("trainers.individual", *common[:-5], "--method", "finetune,pituning", "--train-part", "auto",
            "--train-part-rule", tmp_path / "rule.json", "--quiet", "--backend", "litert", "--out", tmp_path / "auto")
    auto = pd.read_csv(tmp_path / "auto" / "per_user.csv").set_index(["user_id", "method"])
    for method in ("finetune", "pituning"):
        np.testing.assert_allclose(auto.xs(method, level="method")["prec_w"],
                                   a.xs("finetune", level="method")["prec_w"], atol=1e-6)
    assert set(auto["train_part"]) == {"head"} and not auto["unlearn_chosen"].any()
    done = subprocess.run([sys.executable, "-m", "trainers.individual", "--run", str(out),
                           "--train-part", "top7", "--users", "1"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().startswith("error: train_part 'top7'")


def test_a_streaming_student_journey_predicts_event_by_event(tmp_path):
    """``--student-span``: the quickstart's journey ships ``infer_step`` (its state size and
    FLOPs recorded), personalizes on LiteRT, and ``--each-event`` through the bundle ends
    with the journey's own predictions."""
    out = tmp_path / "stream"
    command("trainers.pipeline", "--out", out, "--users", 2, "--epochs", 2,
            "--population-args", "--preset tiny --student-span 2")
    meta = json.loads((out / "student_tflite.json").read_text())
    assert "infer_step" in meta["files"]["fp32"]["signatures"] and meta["state_size"] > 0
    assert meta["signature_flops"]["infer_step"] < meta["signature_flops"]["infer"]
    assert json.loads((out / "device" / "summary.json").read_text())["users"] == 2
    each = out / "each.csv"
    command("pitune_tf.predict", "--run", out, "--events", out / "data" / "example_user.csv",
            "--model", out / "student.tflite", "--each-event", "--out", each)
    last = pd.read_csv(each).groupby("user_id").tail(3)
    written = pd.read_csv(out / "predictions.csv")
    assert last["intent"].tolist() == written["intent"].tolist()
    np.testing.assert_allclose(last["probability"], written["probability"], atol=1e-5)
