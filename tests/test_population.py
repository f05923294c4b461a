"""Population stage: losses by hand, train steps, distillation, save/load, config, run dir."""

import json
import math

import numpy as np
import pytest

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf
from pitune_tf.common.loss_model import LossModel
from pitune_tf.losses import distillation_loss, sparse_cross_entropy
from pitune_tf.models import build_student, build_teacher
from pitune_tf.models.teacher_io import load_teacher, save_teacher
from pitune_tf.population import (
    Distiller,
    PopulationConfig,
    PopulationTrainer,
    load_run,
    preset,
    resolve,
)
from pitune_tf.population.training_loop import best_epoch_callback

SIZES = {"location": 6, "slot": 25, "event": 9, "intent": 5}
L = 6


def tiny_config(**changes):
    values = dict(backbone="random:1x16", history=L, attention_units=[8, 4], head_units=8,
                  reconstruction_units=8, student_layers=1, student_width=16, student_heads=2)
    values.update(changes)
    return preset("tiny").replace(**values)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    n = 16
    features = {k: rng.integers(2, SIZES.get(k, 8), (n, L)).astype(np.int32)
                for k in ("location", "weekday", "slot", "event")}
    mask = np.ones((n, L), np.float32)
    mask[:4, :3] = 0
    for k in ("location", "weekday", "slot", "event"):
        features[k][mask == 0] = 0
    features["mask"] = mask
    labels = rng.integers(2, SIZES["intent"], n).astype(np.int32)
    return features, labels


def _one_batch(batch):
    return tf.data.Dataset.from_tensors(batch)


# ------------------------------------------------------------------ losses by hand


def test_sparse_cross_entropy_hand_computed():
    logits = np.array([[0.0, math.log(3.0)], [0.0, math.log(3.0)]], np.float32)  # p = 1/4, 3/4
    labels = np.array([1, 0])
    expected = -(math.log(0.75) + math.log(0.25)) / 2
    assert float(sparse_cross_entropy(labels, logits)) == pytest.approx(expected, rel=1e-6)
    weighted = sparse_cross_entropy(labels, logits, sample_weight=[1.0, 0.0])
    assert float(weighted) == pytest.approx(-math.log(0.75), rel=1e-6)
    assert float(sparse_cross_entropy(labels, logits, sample_weight=[0.0, 0.0])) == 0.0


def test_distillation_loss_hand_computed():
    teacher = np.array([[1.0, 2.0, 3.0]], np.float32)
    student = np.array([[3.0, 1.0, 0.0]], np.float32)
    alpha, eps = 0.3, 2.0
    p_t = np.exp(teacher / eps) / np.exp(teacher / eps).sum()
    p_s = np.exp(student / eps) / np.exp(student / eps).sum()
    soft = float((p_t * np.log(p_t / p_s)).sum()) * eps**2  # KL(teacher || student) * eps^2
    hard = -math.log(np.exp(student[0, 1]) / np.exp(student).sum())  # label 1, eps = 1
    terms = distillation_loss(np.array([1]), student, teacher, alpha=alpha, temperature=eps)
    assert float(terms["soft_loss"]) == pytest.approx(soft, rel=1e-5)
    assert float(terms["hard_loss"]) == pytest.approx(hard, rel=1e-5)
    assert float(terms["loss"]) == pytest.approx(alpha * soft + (1 - alpha) * hard, rel=1e-5)
    same = distillation_loss(np.array([1]), teacher, teacher, alpha=1.0)
    assert float(same["loss"]) == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------ train steps


def test_one_teacher_step_lowers_each_loss_term(batch):
    features, labels = batch
    keras.utils.set_random_seed(0)
    teacher = build_teacher(tiny_config(), SIZES)
    teacher.masking.rate = 1.0  # every real position masked: the same positions every call
    trainer = PopulationTrainer(teacher)
    trainer.compile(optimizer=keras.optimizers.SGD(1e-3))  # a small step: every term goes down
    before = trainer.compute_losses(batch, training=False)  # fixed masking mask_seed=[0, 0]
    logs = trainer.fit(_one_batch(batch), epochs=1, verbose=0).history
    assert set(logs) == {"loss", "intent_loss", "reconstruction_loss", "accuracy"}
    after = trainer.compute_losses(batch, training=False)
    for name in ("intent_loss", "reconstruction_loss", "loss"):
        assert float(after[name]) < float(before[name]), name


def test_teacher_without_reconstruction_or_iat(batch):
    features, labels = batch
    teacher = build_teacher(tiny_config(reconstruction=False, use_iat=False), SIZES)
    assert teacher.masking is None and teacher.attention is None
    trainer = PopulationTrainer(teacher, reconstruction=False)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    logs = trainer.fit(_one_batch(batch), epochs=2, verbose=0).history
    assert logs["reconstruction_loss"] == [0.0, 0.0]
    assert logs["intent_loss"][1] < logs["intent_loss"][0]
    with pytest.raises(ValueError, match="no intent attention"):
        teacher.get_attention(features)


def test_distillation_step_updates_the_student_only(batch):
    features, labels = batch
    keras.utils.set_random_seed(0)
    teacher = build_teacher(tiny_config(), SIZES)
    fitting = PopulationTrainer(teacher)  # a teacher that knows the labels: both terms agree
    fitting.compile(optimizer=keras.optimizers.Adam(1e-2))
    fitting.fit(_one_batch(batch).repeat(20), epochs=1, verbose=0)
    student = build_student(tiny_config(), SIZES)
    teacher_before = [w.numpy().copy() for w in teacher.weights]
    student_before = [w.numpy().copy() for w in student.weights]
    distiller = Distiller(student, teacher, alpha=0.5, temperature=1.0)
    distiller.compile(optimizer=keras.optimizers.SGD(1e-3))

    def terms():
        return distillation_loss(labels, student(features), teacher(features))

    first = terms()
    logs = distiller.fit(_one_batch(batch), epochs=1, verbose=0).history
    assert set(logs) == {"loss", "soft_loss", "hard_loss", "accuracy"}
    second = terms()
    for name in ("loss", "soft_loss", "hard_loss"):
        assert float(second[name]) < float(first[name]), name
    for before, w in zip(teacher_before, teacher.weights):
        np.testing.assert_array_equal(before, w.numpy())
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(student_before, student.weights))


def test_fit_history_is_the_epoch_mean_of_the_batch_losses(batch):
    """LossModel's ``fit`` logs the unweighted mean of the per-batch terms (a short last
    batch counts as one batch), the same terms ``train_batch`` returns."""
    features, labels = batch
    first = ({k: v[:10] for k, v in features.items()}, labels[:10])
    second = ({k: v[10:] for k, v in features.items()}, labels[10:])  # 6 rows

    def trainer():
        keras.utils.set_random_seed(0)
        model = PopulationTrainer(build_teacher(tiny_config(), SIZES))
        model.compile(optimizer=keras.optimizers.SGD(1e-2))
        return model

    fitted, by_hand = trainer(), trainer()
    dataset = tf.data.Dataset.from_tensors(first).concatenate(tf.data.Dataset.from_tensors(second))
    history = fitted.fit(dataset, epochs=1, verbose=0).history
    terms = [by_hand.train_batch(first), by_hand.train_batch(second)]
    for name in ("loss", "intent_loss", "reconstruction_loss", "accuracy"):
        expected = (float(terms[0][name]) + float(terms[1][name])) / 2
        assert history[name][0] == pytest.approx(expected, rel=1e-5, abs=1e-7), name
    for a, b in zip(fitted.model.weights, by_hand.model.weights):  # the same two steps
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_trainers_are_loss_models_without_their_own_steps():
    for cls in (PopulationTrainer, Distiller):
        assert issubclass(cls, LossModel)
        for name in ("train_step", "test_step", "train_batch"):
            assert name not in vars(cls), (cls.__name__, name)


def test_epoch_batches_are_the_shared_batching_of_the_old_in_graph_shuffle():
    """fit_phase's batches: per epoch ``stateless_permutation`` cut by ``index_batches`` (the
    last batch short), identical to the former in-graph ``stateless_shuffle`` of each epoch."""
    from pitune_tf.data import Windows
    from pitune_tf.population.training_loop import epoch_dataset

    n, batch_size, seed = 23, 5, 3
    ids = np.arange(n, dtype=np.int32)[:, None].repeat(2, axis=1)
    windows = Windows(location=ids, weekday=ids, slot=ids, event=ids,
                      mask=np.ones(ids.shape, np.float32), label=ids[:, 0].copy(),
                      user=np.array(["u"] * n), timestamp=np.arange(n, dtype=np.int64))
    got = [labels.tolist() for _, labels in epoch_dataset(windows, batch_size, seed, 1, 3)
           .as_numpy_iterator()]
    expected = []
    for epoch in (1, 2):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.constant([seed, epoch], tf.int64)).numpy()
        expected += [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]
    assert got == expected
    assert [len(b) for b in got] == [5, 5, 5, 5, 3] * 2


# ------------------------------------------------------------------ save and load


def test_student_keras_file_round_trip(batch, tmp_path):
    features, _ = batch
    student = build_student(tiny_config(), SIZES)
    path = tmp_path / "student.keras"
    student.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert loaded.name == "student" and loaded.sequence_length == L
    np.testing.assert_array_equal(loaded(features).numpy(), student(features).numpy())
    np.testing.assert_array_equal(loaded.get_attention(features).numpy(),
                                  student.get_attention(features).numpy())
    assert student.get_attention(features).shape == (16, SIZES["intent"], L)


def test_teacher_round_trip(batch, tmp_path):
    features, _ = batch
    teacher = build_teacher(tiny_config(tuning="partial"), SIZES)
    save_teacher(teacher, tmp_path / "teacher")
    loaded = load_teacher(tmp_path / "teacher")
    assert loaded.backbone.tuning == "partial"
    np.testing.assert_array_equal(loaded(features).numpy(), teacher(features).numpy())
    assert len(loaded.weights) == len(teacher.weights)
    for a, b in zip(loaded.weights, teacher.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_teacher_round_trip_keeps_the_learned_repeat_logits(batch, tmp_path):
    """The repeat mixture's trained rho_c logits are saved and loaded, not reset to their
    start (repeat_init); a teacher saved without them still loads with its start."""
    features, _ = batch
    event_intent = np.r_[0, 0, np.arange(2, 9) % 3 + 2]
    teacher = build_teacher(tiny_config(), SIZES, event_intent=event_intent,
                            repeat_init=np.full(SIZES["intent"], -2.0))
    learned = np.array([-4.0, -4.0, 1.5, -0.5, 0.25], np.float32)
    teacher.repeat.set_weights([learned])  # as training leaves them
    save_teacher(teacher, tmp_path / "teacher")
    loaded = load_teacher(tmp_path / "teacher")
    np.testing.assert_array_equal(loaded.repeat.get_weights()[0], learned)
    np.testing.assert_array_equal(loaded(features).numpy(), teacher(features).numpy())
    path = tmp_path / "teacher" / "layers.npz"
    with np.load(path) as arrays:
        older = {k: arrays[k] for k in arrays.files if not k.startswith("repeat/")}
    np.savez(path, **older)
    np.testing.assert_array_equal(load_teacher(tmp_path / "teacher").repeat.get_weights()[0],
                                  np.full(SIZES["intent"], -2.0, np.float32))


def test_load_run_names_the_missing_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(tiny_config().to_dict()))
    with pytest.raises(UserInputError, match="vocab.json"):
        load_run(tmp_path)
    with pytest.raises(UserInputError, match="not found"):
        load_run(tmp_path / "absent")


# ------------------------------------------------------------------ config


def test_config_precedence_and_unknown_keys(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"alpha": 0.7, "student_layers": 3}))
    config = resolve("demo", path, {"alpha": 0.9, "temperature": None})
    assert (config.alpha, config.student_layers, config.temperature) == (0.9, 3, 1.0)
    assert resolve("paper").backbone == "gpt2" and resolve("paper").student_width == 768
    path.write_text(json.dumps({"alpah": 0.7}))
    with pytest.raises(UserInputError, match="unknown config key"):
        resolve("demo", path)
    with pytest.raises(UserInputError, match="unknown preset"):
        resolve("nope")
    with pytest.raises(UserInputError, match="tuning"):
        PopulationConfig(tuning="half")


def test_cli_flags_reach_the_config(tmp_path):
    from pitune_tf.population.command_line import build_parser, config_from_args

    args = build_parser().parse_args([
        "--no-iat", "--no-reconstruction", "--tuning", "partial", "--backbone", "random:4x128",
        "--mask-rate", "0.2", "--alpha", "0.7", "--temperature", "2", "--student-layers", "3",
        "--student-width", "96", "--epochs", "4", "--batch-size", "32", "--seed", "5",
        "--data", "pop.csv", "ind.csv",
    ])
    config = config_from_args(args)
    assert (config.use_iat, config.reconstruction, config.tuning) == (False, False, "partial")
    assert (config.backbone, config.mask_rate, config.alpha, config.temperature) == (
        "random:4x128", 0.2, 0.7, 2.0)
    assert (config.student_layers, config.student_width, config.teacher_epochs,
            config.student_epochs, config.batch_size, config.seed) == (3, 96, 4, 4, 32, 5)
    assert [p.rsplit("/", 1)[-1] for p in config.data] == ["pop.csv", "ind.csv"]
    defaults = config_from_args(build_parser().parse_args([]))
    assert defaults == preset("demo") and defaults.use_iat and defaults.reconstruction


def test_demo_fit_preset_is_the_demo_at_a_larger_budget():
    """``--preset demo_fit`` (what the individual stage's quality is measured from) changes
    only the demo's training budget: 40,000 windows, 6 teacher and 12 student epochs."""
    from pitune_tf.population.command_line import build_parser, config_from_args

    fit, demo = config_from_args(build_parser().parse_args(["--preset", "demo_fit"])), preset("demo")
    budget = {"max_train_windows": 40000, "teacher_epochs": 6, "student_epochs": 12}
    assert fit.train_window_cap() == 40000 and fit.epochs("teacher") == 6
    assert fit == demo.replace(**budget)


def test_cli_rejects_bad_options(capsys):
    from pitune_tf.common.cli import run_main
    from trainers.population import main

    assert run_main(main, ["--alpha", "2", "--out", "unused"]) == 2
    assert "alpha" in capsys.readouterr().err


# ------------------------------------------------------------------ data plumbing


def test_single_events_file_is_split_into_disjoint_users(tmp_path):
    from pitune_tf.data import write_events
    from pitune_tf.data.synthetic import generate
    from pitune_tf.population import load_data

    events = generate("tiny", seed=0).population
    write_events(events, tmp_path / "events.csv")
    config = tiny_config(data=[str(tmp_path / "events.csv")], individual_fraction=0.25)
    population, individual = load_data(config)
    assert set(population.user_id).isdisjoint(set(individual.user_id))
    assert len(population) + len(individual) == len(events)
    assert individual.user_id.nunique() == round(0.25 * events.user_id.nunique())


def test_baseline_scores_by_hand():
    from pitune_tf.data import Windows
    from pitune_tf.population import baseline_scores

    events = np.array([[0, 3, 4], [3, 3, 2]], np.int32)  # last events: 4 and 2
    zeros = np.zeros_like(events)
    windows = Windows(location=zeros, weekday=zeros, slot=zeros, event=events,
                      mask=np.ones(events.shape, np.float32), label=np.array([2, 3], np.int32),
                      user=np.array(["a", "b"]), timestamp=np.array([1, 2], np.int64))
    p_pop = np.array([0.0, 0.0, 0.5, 0.3, 0.2])
    event_intent = np.array([0, 1, 3, 2, 4], np.int32)  # event id -> intent id
    scores = baseline_scores(windows, p_pop, event_intent)
    assert (scores["most_frequent"].argmax(1) == [2, 2]).all()
    assert (scores["last_event_intent"].argmax(1) == [4, 3]).all()
    assert scores["last_event_intent"][0].argsort()[-2] == 2  # ties broken by p_pop


def test_student_compared_to_baselines_by_hand():
    from pitune_tf.data import Windows
    from pitune_tf.population.command_line import comparison_rows, metrics_markdown
    from pitune_tf.population.evaluation import baseline_scores, compare_to_baselines

    # 4 windows of 2 users; the student is right on all, the last event's intent (0, 1, 0, 1)
    # on 1 of 4, the most frequent intent (1) on 3 of 4
    events = np.array([[1], [2], [1], [2]], np.int32)
    zeros = np.zeros_like(events)
    windows = Windows(location=zeros, weekday=zeros, slot=zeros, event=events,
                      mask=np.ones(events.shape, np.float32), label=np.array([1, 0, 1, 1], np.int32),
                      user=np.array(["a", "a", "b", "b"]), timestamp=np.arange(4, dtype=np.int64))
    p_pop = np.array([0.25, 0.75])
    event_intent = np.array([0, 0, 1], np.int32)
    got = compare_to_baselines(windows, np.eye(2)[windows.label],
                               baseline_scores(windows, p_pop, event_intent))
    assert got["unit"] == "window"  # 2 users: fewer than MIN_BOOTSTRAP_GROUPS
    assert got["last_event_intent"]["acc"]["diff"] == pytest.approx(1 - 1 / 4)
    assert got["most_frequent"]["acc"]["diff"] == pytest.approx(1 - 3 / 4)
    title, rows = comparison_rows({"student_vs_baselines": got})
    assert title.endswith("over windows:") and [name for name, _ in rows] == [
        "most_frequent", "last_event_intent"]
    assert "Acc +0.7500 [" in rows[1][1]
    assert comparison_rows({}) == ("", [])
    assert metrics_markdown({"student_vs_baselines": got}).endswith(
        f"- last_event_intent: {rows[1][1]}")


# ------------------------------------------------------------------ end to end (slow)


def _small_run_config(**changes):
    values = dict(max_train_windows=300, teacher_epochs=2, student_epochs=1, batch_size=64)
    values.update(changes)
    return tiny_config(**values)


@pytest.mark.slow
def test_run_directory_and_resume(tmp_path, monkeypatch):
    from pitune_tf import population

    config = _small_run_config()
    metrics = population.run_population(config, tmp_path / "full")
    for name in ("config.json", "vocab.json", "student.keras", "metrics.json", "p_out.json",
                 "teacher/backbone/tf_model.h5", "teacher/layers.npz", "summaries/student.txt",
                 "data/individual.parquet", "data/individual_oracle.parquet"):
        assert (tmp_path / "full" / name).exists(), name
    assert not (tmp_path / "full" / population.CHECKPOINTS).exists()
    from pitune_tf.common.plotting import is_png
    from pitune_tf.population.plots import plot_paths

    assert all(is_png(p) for p in plot_paths(tmp_path / "full"))
    history = metrics["training"]["teacher"]["history"]
    assert history["epoch"] == [1, 2] and len(history["val_intent_loss"]) == 2
    assert set(metrics["baselines"]) == {"most_frequent", "last_event_intent"}
    run = load_run(tmp_path / "full")
    assert run.p_out.shape == run.p_pop.shape == (run.vocabs.n_intents,)
    assert run.p_pop.sum() == pytest.approx(1.0)

    original = population.EpochCheckpoint.on_epoch_end

    def interrupt(self, epoch, logs=None):
        original(self, epoch, logs)
        if self.phase == "teacher" and epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(population.EpochCheckpoint, "on_epoch_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        population.run_population(config, tmp_path / "resumed")
    monkeypatch.setattr(population.EpochCheckpoint, "on_epoch_end", original)
    resumed = population.run_population(config, tmp_path / "resumed")
    for model in ("teacher", "student"):
        assert resumed[model]["test"] == pytest.approx(metrics[model]["test"], abs=1e-6)
    resumed_history = resumed["training"]["teacher"]["history"]  # epoch 1 ran before the stop
    assert set(resumed_history) == set(history)
    for name, values in history.items():
        assert resumed_history[name] == pytest.approx(values, abs=1e-5), name
    with pytest.raises(UserInputError, match="--overwrite"):
        population.run_population(config, tmp_path / "resumed")


def test_student_converts_to_builtin_tflite_ops_and_trains(batch):
    """The student infers and trains in TFLite with builtin ops only (what tflite/ needs)."""
    features, labels = batch
    # keras' own seed generator outlives conftest's reseeding once any earlier test called
    # set_random_seed: seed here so the student's initial weights do not depend on test order
    keras.utils.set_random_seed(0)
    student = build_student(tiny_config(), SIZES)
    n = labels.shape[0]
    spec = {k: tf.TensorSpec([n, L], tf.int32) for k in ("location", "weekday", "slot", "event")}
    spec["mask"] = tf.TensorSpec([n, L], tf.float32)

    class Module(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[spec])
        def infer(self, inputs):
            return {"logits": self.model(inputs, training=False)}

        @tf.function(input_signature=[spec, tf.TensorSpec([n], tf.int32)])
        def train(self, inputs, labels):
            with tf.GradientTape() as tape:
                loss = sparse_cross_entropy(labels, self.model(inputs, training=True))
            variables = self.model.trainable_variables
            for grad, var in zip(tape.gradient(loss, variables), variables):
                var.assign_sub(0.05 * tf.convert_to_tensor(grad))
            return {"loss": loss}

    module = Module(student)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.infer.get_concrete_function(), module.train.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex
    converter.experimental_enable_resource_variables = True
    from ai_edge_litert.interpreter import Interpreter  # LiteRT, what phones run

    interpreter = Interpreter(model_content=converter.convert())
    runners = {name: interpreter.get_signature_runner(name)
               for name in interpreter.get_signature_list()}
    keys = sorted(features)  # the dict argument's inputs are inputs, inputs_1, ... by key

    def named(extra=None):
        names = sorted((k for k in interpreter.get_signature_list()["infer"]["inputs"]),
                       key=lambda s: (len(s), s))
        return {**{name: features[key] for name, key in zip(names, keys)}, **(extra or {})}

    np.testing.assert_allclose(runners["infer"](**named())["logits"], student(features).numpy(),
                               rtol=1e-4, atol=1e-5)
    losses = [float(runners["train"](**named({"labels": labels}))["loss"]) for _ in range(3)]
    assert losses[2] < losses[0]


def test_best_epoch_stops_keeps_the_best_weights_and_resumes(tmp_path):
    """Early stopping on a validation loss: patience 2, losses 3, 2, 2.5, 2.6 -> stop after
    epoch 4 with epoch 2's weights; a new callback on the same folder (a resumed run) knows."""
    net = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    holder = keras.Sequential([net])
    best = best_epoch_callback(net, "val_loss", patience=2, directory=tmp_path)
    best.set_model(holder)
    kept = None
    for epoch, loss in enumerate((3.0, 2.0, 2.5, 2.6)):
        net.layers[0].kernel.assign(np.full((2, 1), float(epoch), np.float32))
        best.on_epoch_end(epoch, {"val_loss": loss})
        if epoch == 1:
            kept = net.get_weights()
    assert best.stopped and holder.stop_training and best.state["best"] == {"epoch": 2, "value": 2.0}
    resumed = best_epoch_callback(net, "val_loss", patience=2, directory=tmp_path)
    assert resumed.stopped and resumed.restore() == 2
    for got, want in zip(net.get_weights(), kept):
        np.testing.assert_array_equal(got, want)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-2", "best.json"]


def test_best_epoch_reads_a_best_json_written_before_the_shared_rule(tmp_path):
    """``{"epoch", "value", "stopped"}``: stopped 2 epochs (the patience) after epoch 2."""
    (tmp_path / "best.json").write_text(json.dumps({"epoch": 2, "value": 2.0, "stopped": True}))
    net = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    best = best_epoch_callback(net, "val_loss", patience=2, directory=tmp_path)
    assert best.stopped and best.state == {"best": {"epoch": 2, "value": 2.0}, "stopped_epoch": 4}


def test_epoch_and_subsample_defaults_follow_the_data():
    config = PopulationConfig()
    assert (config.epochs("teacher"), config.epochs("student"), config.train_window_cap()) == (3, 6, 20000)
    mine = PopulationConfig(data=["events.csv"])
    assert (mine.epochs("teacher"), mine.train_window_cap()) == (30, 0)
    assert PopulationConfig(data=["e.csv"], teacher_epochs=5).epochs("teacher") == 5
    with pytest.raises(UserInputError):
        PopulationConfig(teacher_epochs=0)


def test_algorithm_1_intent_loss_on_a_clean_pass(batch):
    """passes="two" (PITuning Algorithm 1): the intent loss is the clean input's; the
    reconstruction loss comes from the masked pass. passes="one" takes both from it."""
    features, labels = batch
    keras.utils.set_random_seed(0)
    teacher = build_teacher(tiny_config(), SIZES)
    clean = float(sparse_cross_entropy(labels, teacher(features, training=False)))
    two = PopulationTrainer(teacher, passes="two").compute_losses(batch, training=True)
    assert float(two["intent_loss"]) == pytest.approx(clean, rel=1e-6)
    assert float(two["reconstruction_loss"]) > 0
    one = PopulationTrainer(teacher, passes="one").compute_losses(batch, training=True)
    assert float(one["intent_loss"]) != pytest.approx(clean, rel=1e-6)


def test_prior_decision_rule_by_hand():
    """argmax p / P_pop^tau: tau = 1 turns a majority-biased score into the rare intent; tau
    is picked on the given (validation) labels."""
    from pitune_tf.population.evaluation import choose_tau, prior_rule

    p_pop = np.array([0.0, 0.0, 0.8, 0.2])
    scores = np.array([[0, 0, 0.6, 0.4], [0, 0, 0.9, 0.1]])
    assert prior_rule(scores, p_pop, 1.0).argmax(1).tolist() == [3, 2]  # 0.75 vs 2.0; 1.125 vs 0.5
    assert prior_rule(scores, p_pop, 0.0).argmax(1).tolist() == [2, 2]
    assert choose_tau(np.array([3, 2]), scores, p_pop) > 0
    assert choose_tau(np.array([2, 2]), scores, p_pop) == 0.0
    # only the first place moves: the rest keeps p's order
    p = np.array([[0.0, 0.1, 0.5, 0.4]])
    ranked = prior_rule(p, np.array([0.0, 0.1, 0.6, 0.3]), 1.0)  # p / prior: -, 1.0, 0.83, 1.33
    assert np.argsort(-ranked[0], kind="stable").tolist() == [3, 2, 1, 0]
    np.testing.assert_allclose(ranked, [[0.0, 0.1, 0.5, 1.4]])


@pytest.mark.parametrize("name, content, message", [
    ("config.json", "{not json", "not valid JSON"),
    ("p_out.json", '{"intents": []}', "lacks p_out, p_pop"),
    ("student.keras", "truncated", "cannot be loaded"),
])
def test_broken_run_files_are_one_clear_error(tmp_path, name, content, message):
    """A truncated student.keras, a config.json that is not JSON, a p_out.json without its
    keys: one UserInputError naming the file (the CLIs print it as one error: line)."""
    import shutil

    from individual_fixtures import make_tiny_run

    run = make_tiny_run(tmp_path / "run", n_users=1, with_teacher=False)
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / name).write_text(content)
    with pytest.raises(UserInputError, match=message):
        load_run(broken)


def test_bad_config_values_are_user_errors():
    for changes in ({"history": "abc"}, {"split": 0.5}, {"dropout": 5.0}, {"teacher_epochs": 0}):
        with pytest.raises(UserInputError):
            preset("demo").replace(**changes)


def test_overwrite_keeps_the_finished_run_until_the_new_one_is_complete(tmp_path, monkeypatch):
    """--overwrite moves a finished run aside; a new run that fails puts it back whole."""
    from pitune_tf.population import population_stage, run_population

    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"finished": true}')
    (out / "student.keras").write_text("the user's model")

    def fail(*args, **kwargs):
        raise UserInputError("the backbone cannot be loaded")

    monkeypatch.setattr(population_stage, "_train_and_write", fail)
    with pytest.raises(UserInputError, match="backbone"):
        run_population(preset("tiny"), out, overwrite=True)
    assert (out / "student.keras").read_text() == "the user's model"
    assert (out / "metrics.json").read_text() == '{"finished": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
