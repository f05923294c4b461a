"""The converter's command line on a run directory, the quantized models, and the
personalization loop on the LiteRT backend against the Keras backend (same users, same
options). Slow: each test converts a student (pass --runslow)."""

import json

import numpy as np
import pytest

from pitune_tf.common.keras import keras


@pytest.fixture(scope="module")
def converted_run(tmp_path_factory):
    """A tiny run directory (tests/individual_fixtures.py) converted by the CLI."""
    from individual_fixtures import make_tiny_run

    from tflite.convert import main

    run_dir = make_tiny_run(tmp_path_factory.mktemp("run"), n_users=3, with_teacher=False)
    assert main(["--run", str(run_dir), "--batch-size", "8"]) == 0
    return run_dir


@pytest.mark.slow
def test_convert_cli_writes_three_models(converted_run):
    from tflite.runtime import Runtime

    meta = json.loads((converted_run / "student_tflite.json").read_text())
    assert meta["batch_size"] == 8 and meta["history"] == 6
    assert set(meta["files"]) == {"fp32", "int8", "fp16"}
    rt = Runtime(converted_run / "student.tflite")
    assert rt.batch_size == 8 and rt.num_weights == meta["num_weights"]
    for name in ("student_int8.tflite", "student_fp16.tflite"):
        Runtime(converted_run / name, required=("infer",))


@pytest.mark.slow
def test_quantized_models_stay_close_to_fp32(converted_run):
    from pitune_tf.population import load_run
    from tflite.runtime import Runtime

    run = load_run(converted_run)
    rng = np.random.default_rng(0)
    sizes = run.vocabs.sizes
    x = {k: rng.integers(1, sizes[k], (16, 6)).astype(np.int32)
         for k in ("location", "weekday", "slot", "event")}
    x["mask"] = np.ones((16, 6), np.float32)
    fp32 = Runtime(converted_run / "student.tflite").infer(x)["probabilities"]
    for name in ("student_int8.tflite", "student_fp16.tflite"):
        probs = Runtime(converted_run / name, required=("infer",)).infer(x)["probabilities"]
        assert np.abs(probs - fp32).max() < 0.02, name


@pytest.mark.slow
def test_litert_backend_matches_keras_backend(converted_run):
    """Per user, the one personalization loop on the LiteRT backend (TFLite signatures only)
    and on the Keras backend takes the same steps on the same batches: same epochs, and the
    same test scores up to round-off."""
    from pitune_tf.data import read_events
    from pitune_tf.individual.backends import build_engine
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.user_data import prepare_users
    from pitune_tf.population import load_run

    run = load_run(converted_run)
    config = IndividualConfig(methods=("none", "finetune", "pituning"), batch_size=8,
                              max_epochs=3, unlearn_steps=4)
    users, _ = prepare_users(read_events(run.individual_data_path), run.vocabs, history=6,
                             slot_minutes=run.config.slot_minutes)
    keras.utils.set_random_seed(0)
    keras_engine = build_engine(run, config)
    litert_engine = build_engine(run, config, backend="litert",
                                 model=converted_run / "student.tflite")
    assert litert_engine.batch_size == keras_engine.batch_size == 8
    for user in users[:2]:
        expected = keras_engine.run_user(user, config.methods)
        got = litert_engine.run_user(user, config.methods)
        assert got["forget"] == expected["forget"]
        for method in config.methods:
            e, g = expected["methods"][method], got["methods"][method]
            for key in ("epochs", "best_epoch", "unlearn_steps"):
                assert g["info"].get(key) == e["info"].get(key), (user.user, method, key)
            np.testing.assert_allclose(g["scores"], e["scores"], atol=1e-4, err_msg=method)


@pytest.mark.slow
def test_litert_cli_writes_the_individual_trainer_tables(converted_run, tmp_path):
    from trainers.individual import main

    keras_out, out = tmp_path / "keras", tmp_path / "device"
    common = ["--run", str(converted_run), "--users", "2", "--epochs", "2", "--quiet",
              "--batch-size", "8"]
    assert main([*common, "--method", "none,finetune,pituning", "--out", str(keras_out)]) == 0
    assert main([*common, "--backend", "litert", "--out", str(out), "--dump-predictions",
                 "--compare", str(keras_out)]) == 0
    for name in ("per_user.csv", "summary.json", "results.md", "predictions.csv", "compare.md"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"none", "finetune", "pituning", "oracle"}
    assert summary["users"] == 2 and summary["backend"] == "litert"
    keras_summary = json.loads((keras_out / "summary.json").read_text())  # same test rows
    assert summary["methods"]["oracle"]["pooled"] == keras_summary["methods"]["oracle"]["pooled"]
    assert "gap_closed" in summary["methods"]["pituning"]


def test_engine_batches_are_padded_permutations():
    """One seeded permutation per epoch; the last batch padded to B with weight-0 rows."""
    from pitune_tf.individual.engine import PersonalizationEngine

    class Windows:
        label = np.arange(5, dtype=np.int32)

        def features(self):
            return {"event": np.arange(5)[:, None]}

        def __len__(self):
            return 5

    engine = PersonalizationEngine.__new__(PersonalizationEngine)
    engine.batch_size = 2
    batches = list(engine.batches(Windows(), np.random.default_rng(3)))
    order = np.random.default_rng(3).permutation(5)
    assert [b[3].tolist() for b in batches] == [order[:2].tolist(), order[2:4].tolist(),
                                                [order[4], order[4]]]
    assert [b[2].tolist() for b in batches] == [[1, 1], [1, 1], [1, 0]]
    assert all(b[0]["event"].shape == (2, 1) for b in batches)
