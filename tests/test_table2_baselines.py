"""PITuning Table 2's other baselines (``pitune_tf.individual.baselines``) and their layers, on
tiny configs: hand-computed numbers, paths that must agree, config round trips, and each
method end to end on a tiny run (valid probabilities on every test window)."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pitune_tf.common.keras import keras, tf

sys.path.insert(0, str(Path(__file__).parent))
from individual_fixtures import make_tiny_run
from test_layers import run_layer_test

from pitune_tf.layers import (
    CompositionalEmbedding,
    GradientReversal,
    LoRADense,
    TransformerDecoderBlock,
)

# the baselines' sizes on a tiny run: seconds per user
TINY = dict(max_epochs=2, batch_size=16, baseline_pretrain_windows=256, baseline_pretrain_epochs=1,
            baseline_width=16, lora_rank=2, prompt_backbone="random:1x16")


# ----------------------------------------------------------------------------- layers


def _dense(n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    dense = keras.layers.Dense(n_out)
    dense.build([None, n_in])
    dense.kernel.assign(rng.normal(size=(n_in, n_out)).astype(np.float32))
    dense.bias.assign(rng.normal(size=(n_out,)).astype(np.float32))
    return dense


def test_lora_with_b_zero_is_the_base_layer_and_hand_computed_update():
    x = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]], np.float32)
    base = _dense()
    lora = LoRADense(base, rank=2, alpha=4.0)
    np.testing.assert_allclose(run_layer_test(lora, x).numpy(), base(x).numpy(), rtol=1e-6)
    assert not base.trainable and [w.name.split("/")[-1] for w in lora.trainable_weights] == [
        "lora_a:0", "lora_b:0"]
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)  # [3, 2]
    b = np.array([[1.0, -1.0], [2.0, 0.5]], np.float32)  # [2, 2]
    lora.lora_a.assign(a)
    lora.lora_b.assign(b)
    # row 0: x A = [0, 1]; (x A) B = [2, 0.5]; scale alpha / rank = 2 -> + [4, 1]
    expected = base(x).numpy() + 2.0 * (x @ a @ b)
    np.testing.assert_allclose(lora(x).numpy()[0], base(x).numpy()[0] + [4.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(lora(x).numpy(), expected, rtol=1e-6)


def test_merged_lora_equals_the_unmerged_forward():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 3)).astype(np.float32)  # [batch, L, in]: GPT2's layout
    lora = LoRADense(_dense(), rank=2, alpha=8.0)
    lora(x)
    lora.lora_b.assign(rng.normal(size=(2, 2)).astype(np.float32))
    before = lora(x).numpy()
    delta = lora.delta().numpy()
    lora.merge()
    np.testing.assert_allclose(lora(x).numpy(), before, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(lora.lora_b.numpy(), 0.0)
    np.testing.assert_allclose(lora.base(x).numpy(), before, rtol=1e-5, atol=1e-6)  # in the kernel
    lora.merge(-delta)  # an external update: back to W_0
    np.testing.assert_allclose(lora.base.kernel.numpy(), _dense().kernel.numpy(), rtol=1e-5, atol=1e-6)


def test_compositional_embedding_sums_codebook_rows_and_counts_parameters():
    layer = CompositionalEmbedding(50, 4, num_codebooks=3, codebook_size=5, seed=2)
    ids = np.array([[0, 7, 49]], np.int32)
    out = run_layer_test(layer, ids).numpy()
    assert out.shape == (1, 3, 4)
    assert layer.count_params() == 3 * 5 * 4  # 60, not 50 * 4 = 200
    assert layer.codes.shape == (50, 3) and layer.codes.max() < 15
    table = layer.codebooks.numpy()  # [M * K, D]
    np.testing.assert_allclose(out[0, 1], table[layer.codes[7]].sum(axis=0), rtol=1e-6)
    # codebook m's rows are m * K ... m * K + K - 1
    assert all(m * 5 <= c < (m + 1) * 5 for row in layer.codes for m, c in enumerate(row))
    layer.codebooks.assign(np.arange(60, dtype=np.float32).reshape(15, 4))
    codes = layer.codes[49]
    expected = sum(np.arange(4) + 4 * c for c in codes)  # row r of the table is 4r .. 4r + 3
    np.testing.assert_allclose(layer(ids).numpy()[0, 2], expected)
    again = CompositionalEmbedding.from_config(layer.get_config())
    np.testing.assert_array_equal(again.codes, layer.codes)  # the codes follow from the seed


def test_gradient_reversal_flips_and_scales_the_gradient():
    layer = GradientReversal(scale=0.5)
    x = tf.constant([[1.0, -2.0]])
    np.testing.assert_array_equal(run_layer_test(layer, x).numpy(), x.numpy())
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(layer(x) * tf.constant([[3.0, 4.0]]))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [[-1.5, -2.0]])


def test_bidirectional_block_sees_later_positions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 4, 8)).astype(np.float32)
    later = x.copy()
    later[0, 3] = rng.normal(size=8)  # only the newest position changes (not by a constant: LN)
    mask = np.ones((1, 4), np.float32)
    causal = TransformerDecoderBlock(8, 2)
    bidirectional = TransformerDecoderBlock(8, 2, causal=False)
    run_layer_test(bidirectional, x, mask)
    causal(x, mask)
    bidirectional.set_weights(causal.get_weights())
    np.testing.assert_allclose(causal(x, mask)[0, 0], causal(later, mask)[0, 0], rtol=1e-6)
    assert np.abs(bidirectional(x, mask)[0, 0] - bidirectional(later, mask)[0, 0]).max() > 1e-6
    np.testing.assert_allclose(causal(x, mask)[0, 3], bidirectional(x, mask)[0, 3], rtol=1e-5)


# ----------------------------------------------------------------------------- tiny run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("run"), n_users=2, with_teacher=True)


@pytest.fixture(scope="module")
def engine_and_users(tiny_run):
    from pitune_tf.individual.backends import build_engine
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.methods import TABLE2_BASELINES
    from pitune_tf.individual.user_data import load_users
    from pitune_tf.population import load_run

    run = load_run(tiny_run)
    config = IndividualConfig(methods=TABLE2_BASELINES, min_history=int(run.config.min_history), **TINY)
    engine = build_engine(run, config)
    users, _, _ = load_users(run, config=config)
    return engine, users


def _valid(scores, user, n_intents):
    assert scores.shape == (len(user.test), n_intents)
    assert np.isfinite(scores).all() and (scores >= 0).all()
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-4)


def test_lora_on_the_teacher_keeps_its_output_and_trains_only_the_adapters(tiny_run):
    from pitune_tf.individual.baselines.lora_adapters import AdapterOnly, add_lora
    from pitune_tf.models.teacher_io import load_teacher

    teacher = load_teacher(tiny_run / "teacher")
    x = teacher.dummy_inputs()
    before = teacher(x).numpy()
    adapters = add_lora(teacher.backbone.gpt2.transformer, rank=2, alpha=4.0)
    network = AdapterOnly(teacher, adapters)
    np.testing.assert_allclose(network(x).numpy(), before, rtol=1e-5, atol=1e-6)  # B = 0
    assert len(adapters) == len(teacher.backbone.gpt2.transformer.h)
    names = sorted(v.name.split("/")[-1] for v in network.trainable_variables)
    assert names == sorted(["lora_a:0", "lora_b:0"] * len(adapters))
    assert len(network.weights) == len(teacher.weights)  # the adapters are inside the teacher


def test_lsat_merges_the_long_and_short_term_adapters(engine_and_users):
    from pitune_tf.individual.baselines.lsat import LSAT_MERGE_WEIGHTS, recent_windows

    engine, users = engine_and_users
    user = users[0]
    assert len(recent_windows(user.train, 0.3)) == max(1, round(0.3 * len(user.train)))
    np.testing.assert_array_equal(recent_windows(user.train, 0.3).timestamp,
                                  user.train.timestamp[-len(recent_windows(user.train, 0.3)):])
    record = engine.run_user(user, ["none", "lsat"])
    scores, info = record["methods"]["lsat"]["scores"], record["methods"]["lsat"]["info"]
    _valid(scores, user, engine.n_intents)
    assert info["lsat_merge_weight"] in LSAT_MERGE_WEIGHTS
    assert 0 < info["trainable_parameters"] < 2000  # the adapters only
    lsat = engine.extra_methods["lsat"]
    shipped = lsat.backend().shipped_weights
    after = lsat.backend().get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(shipped, after))  # reset after the user


def _run_method(engine_and_users, method):
    engine, users = engine_and_users
    user = users[0]
    record = engine.run_user(user, [method])
    scores, info = record["methods"][method]["scores"], record["methods"][method]["info"]
    _valid(scores, user, engine.n_intents)
    return engine, user, info


def test_eodrec_compresses_the_event_table_and_runs(engine_and_users):
    from pitune_tf.individual.baselines.eodrec_network import EODRecNetwork

    engine, user, info = _run_method(engine_and_users, "eodrec")
    n_events = int(engine.run.vocabs.sizes["event"])
    assert info["eodrec_embedding_parameters"] == 4 * 16 * TINY["baseline_width"]  # M K D
    assert info["eodrec_full_table_parameters"] == n_events * TINY["baseline_width"]
    assert np.isfinite(info["pretrain_loss_last"]) and info["epochs"] >= 1
    network = engine.extra_methods["eodrec"].backend().network
    clone = EODRecNetwork.from_config(network.get_config())
    assert clone.get_config() == network.get_config()
    features = user.test.features()
    clone(features)
    clone.set_weights(network.get_weights())
    np.testing.assert_allclose(clone(features).numpy(), network(features).numpy(), rtol=1e-5, atol=1e-6)
    padded = {k: v.copy() for k, v in features.items()}  # padding positions are skipped
    padded["event"][padded["mask"] == 0] = 3
    np.testing.assert_allclose(network(padded).numpy(), network(features).numpy(), rtol=1e-5, atol=1e-6)


def test_reptile_outer_step_hand_computed():
    from pitune_tf.individual.baselines.reptile import meta_iterations, reptile

    theta = tf.Variable([0.0])

    def step(features, labels, weight):  # an inner optimizer that reaches the task's optimum
        theta.assign(features["target"][:1])
        return 0.0

    tasks = [({"target": np.ones(3, np.float32)}, np.zeros(3, np.int32))]
    reptile(step, [theta], tasks, iterations=2, inner_steps=1, step_size=0.5, batch_size=2, seed=0)
    # iteration 0: epsilon 0.5, theta 0 -> 0.5; iteration 1: epsilon 0.25, 0.5 -> 0.625
    np.testing.assert_allclose(theta.numpy(), [0.625])
    assert meta_iterations(1000, 2, 3, 32) == 21 and meta_iterations(10, 1, 3, 32) == 1


def test_activity_groups_split_at_the_median():
    from pitune_tf.individual.baselines.clover import activity_groups

    # rows: a 3, b 1, c 2 -> median 2: a and c active
    assert activity_groups(["a", "a", "a", "b", "c", "c"]).tolist() == [1, 1, 1, 0, 1, 1]


def test_clover_loss_is_ce_plus_weighted_adversary_and_reverses_its_gradient():
    from pitune_tf.individual.baselines.clover import AdversarialFairnessTuner
    from pitune_tf.individual.baselines.clover_network import CloverNetwork

    rng = np.random.default_rng(0)
    features = {k: rng.integers(1, 5, (2, 3)).astype(np.int32) for k in ("location", "weekday", "slot", "event")}
    features["mask"] = np.ones((2, 3), np.float32)
    network = CloverNetwork(5, 5, 5, 4, width=8)
    out = network.forward(features)
    labels, groups = np.array([1, 2]), np.array([0, 1])

    def ce(logits, y):
        logits = np.asarray(logits, np.float64)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(y)), y].mean()

    tuner = AdversarialFairnessTuner(network, adversary_weight=0.5)
    terms = tuner.compute_losses(({**features, "group": groups}, labels), training=False)
    assert float(terms["ce"]) == pytest.approx(ce(out["logits"], labels), rel=1e-5)
    assert float(terms["adversary_ce"]) == pytest.approx(ce(out["group_logits"], groups), rel=1e-5)
    assert float(terms["loss"]) == pytest.approx(float(terms["ce"]) + 0.5 * float(terms["adversary_ce"]))
    with tf.GradientTape(persistent=True) as tape:  # the reversal: u's gradient of the adversary
        user = network.user(tf.ones([2, 8]))
        plain = tf.reduce_sum(network.adversary(network.adversary_hidden(user)))
        reversed_ = tf.reduce_sum(network.adversary(network.adversary_hidden(network.reversal(user))))
    np.testing.assert_allclose(tape.gradient(reversed_, user), -tape.gradient(plain, user), rtol=1e-6)
    clone = CloverNetwork.from_config(network.get_config())
    assert clone.get_config() == network.get_config()


@pytest.mark.parametrize("method", ["metabert4rec", "clover"])
def test_meta_learned_baselines_run(engine_and_users, method):
    engine, user, info = _run_method(engine_and_users, method)
    baseline = engine.extra_methods[method]
    assert baseline.meta_tasks >= 2 and np.isfinite(baseline.pretrain_losses).all()
    network = baseline.backend().network
    clone = type(network).from_config(network.get_config())
    assert clone.get_config() == network.get_config()


def _prompt_window():
    words = {"event": ["<pad>", "<unk>", "news", "music"], "location": ["<pad>", "<unk>", "home"]}
    from pitune_tf.individual.baselines.prompt_tokenizer import WEEKDAYS, slot_words

    words.update(weekday=list(WEEKDAYS), slot=slot_words(25, 60))
    window = {"event": np.array([[0, 2, 3]]), "location": np.array([[0, 2, 2]]),
              "weekday": np.array([[0, 1, 1]]), "slot": np.array([[0, 10, 11]]),
              "mask": np.array([[0.0, 1.0, 1.0]], np.float32)}  # left-padded: 2 real events
    return words, window


@pytest.mark.parametrize("template, expected", [
    ("p5", "given the following interaction history of the user : news , music , "
           "what is the next intent of the user ?"),
    ("tallrec", "instruction : given the user's history of events with their time and place , "
                "answer with the intent of the next event . input : news at home on monday 09:00 ; "
                "music at home on monday 10:00 ; output :"),
    ("instructrec", "the user's recent activities are : news ( home monday 09:00 ) music ( home "
                    "monday 10:00 ) . now it is monday 10:00 at home . which intent will the user "
                    "have next ?"),
])
def test_prompt_tokenizer_writes_the_template_by_hand(template, expected):
    from pitune_tf.individual.baselines.prompt_tokenizer import PAD, TEMPLATES, PromptTokenizer

    words, window = _prompt_window()
    tokenizer = PromptTokenizer(words, ["<pad>", "<unk>", "news", "leisure"], template, history=3)
    assert tokenizer.text(window) == expected
    prefix, event, suffix = (len(part.split()) for part in TEMPLATES[template])
    assert tokenizer.length == prefix + 3 * event + suffix
    ids, mask = tokenizer.encode(window)
    assert ids.shape == (1, tokenizer.length) and mask.numpy().sum() == len(expected.split())
    assert (ids.numpy()[mask.numpy() == 0] == PAD).all()  # the padding event's words
    assert [tokenizer.words[i] for i in tokenizer.intent_ids] == ["<pad>", "<unk>", "news", "leisure"]
    # the same word in two fields ("news": an event and an intent) has two ids
    assert tokenizer.words.count("news") == 2


def test_prompt_network_scores_the_answer_words(tiny_run):
    from pitune_tf.individual.baselines.prompt_network import PromptIntentNetwork
    from pitune_tf.population import load_run

    run = load_run(tiny_run)
    network = PromptIntentNetwork.from_vocabularies(run.vocabs, "p5", run.config.history,
                                                    backbone="random:1x16")
    features = {k: v.numpy() for k, v in run.student.dummy_inputs().items()}
    logits = network(features).numpy()
    assert logits.shape == (2, run.vocabs.n_intents)
    ids, mask = network.tokenizer.encode(features)
    hidden = network.gpt2(input_ids=ids, attention_mask=mask).last_hidden_state[:, -1].numpy()
    table = network.gpt2.transformer.wte.embeddings.numpy()[network.tokenizer.intent_ids]
    np.testing.assert_allclose(logits, hidden @ table.T, rtol=1e-5, atol=1e-6)
    clone = PromptIntentNetwork.from_config(network.get_config())
    assert clone.get_config() == network.get_config()
    from pitune_tf.common.errors import UserInputError

    with pytest.raises(UserInputError, match="random:<layers>x<width>"):
        PromptIntentNetwork.from_vocabularies(run.vocabs, "p5", 6, backbone="gpt2")


@pytest.mark.parametrize("method", ["tallrec", "p5", "instructrec"])
def test_prompt_baselines_run(engine_and_users, method):
    engine, user, info = _run_method(engine_and_users, method)
    assert info["prompt_tokens"] > 3 * engine.run.config.history
    if method == "tallrec":  # LoRA only
        assert info["trainable_parameters"] < info["parameters"] / 4
    else:
        assert info["trainable_parameters"] == info["parameters"]


def test_table2_baselines_are_not_default_nor_in_all():
    from pitune_tf.individual.command_line import parse_methods
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.methods import TABLE2_BASELINES

    assert not set(TABLE2_BASELINES) & set(IndividualConfig().methods)
    assert not set(TABLE2_BASELINES) & set(parse_methods("all", "keras"))
    assert parse_methods("table2", "keras") == TABLE2_BASELINES
    assert parse_methods("none,table2", "keras") == ("none", *TABLE2_BASELINES)


def test_cli_runs_a_table2_baseline(tiny_run, tmp_path):
    from trainers.individual import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps({k: v for k, v in TINY.items() if k != "max_epochs"}))
    out = tmp_path / "out"
    assert main(["--run", str(tiny_run), "--method", "none,eodrec", "--config", str(config),
                 "--epochs", "2", "--users", "1", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"none", "eodrec", "oracle"} <= set(summary["methods"])
    assert summary["config"]["baseline_pretrain_windows"] == TINY["baseline_pretrain_windows"]
    assert "| eodrec |" in (out / "results.md").read_text()
    row = summary["device_models"]["eodrec"]  # Table 3's row, from the user's record
    assert row["parameters"] >= row["trainable_parameters"] > 0 and row["infer_ms"] > 0
    assert row["users"] == 1 and 0 <= row["prec_w"] <= 1


# ----------------------------------------------------------------------------- Figs. 5, 6


def test_fig6_attention_maps_per_intent(tiny_run, tmp_path):
    from pitune_tf.common.plotting import is_png
    from pitune_tf.experiments.pituning_experiments import fig6, plot_fig6
    from pitune_tf.experiments.pituning_suite import PITuningSuite

    suite = PITuningSuite(tiny_run, tmp_path, preset="tiny", seeds=1)
    frame = fig6(suite)
    positions = [c for c in frame.columns if c.startswith("pos")]
    assert len(positions) == suite.run.config.history and set(frame["model"]) == {"teacher", "student"}
    # each window's |w| are shares of its positions: the mean map's rows sum to 1
    np.testing.assert_allclose(frame[positions].sum(axis=1), 1.0, rtol=1e-5)
    assert "<pad>" not in set(frame["intent"])
    plot_fig6(frame, tmp_path / "fig6.png", suite)
    assert is_png(tmp_path / "fig6.png")


def test_fig5_runs_and_curves(tmp_path):
    """The GPT2 row is RUN's backbone; with a random one it is also Transformer-L (one run,
    labelled so); the curves come from each run's training.json."""
    import pandas as pd

    from pitune_tf.common.plotting import is_png
    from pitune_tf.experiments import pituning_experiments as experiments
    from pitune_tf.population import PopulationConfig

    class Suite:
        settings = {"curve_epochs": 2}
        calls = []

        def __init__(self, backbone):
            self.run = SimpleNamespace(config=PopulationConfig(backbone=backbone, student_layers=1,
                                                               student_width=16))

        def population_run(self, name, **changes):
            self.calls.append((name, changes))
            path = tmp_path / name
            path.mkdir(exist_ok=True)
            history = {"epoch": [1, 2], "accuracy": [0.3, 0.4], "val_accuracy": [0.25, 0.35],
                       "intent_loss": [2.0, 1.5], "val_intent_loss": [2.1, 1.7], "loss": [9, 9]}
            (path / "training.json").write_text(json.dumps(
                {"teacher": {"history": history, "monitor": "val_intent_loss"}}))
            return path

    suite = Suite("random:2x64")
    runs = experiments.fig5_runs(suite)
    assert list(runs) == ["GPT2 = Transformer-L (random:2x64, random init, no pretrained weights reachable)",
                          "Transformer-S (random:1x16, random init)"]
    assert suite.calls[1] == ("fig5_transformer_s", {"teacher_epochs": 2, "student_epochs": 1,
                                                     "embedding_dim": 0, "backbone": "random:1x16"})
    frame = experiments.fig5(suite)
    assert frame["epoch"].tolist() == [1, 2, 1, 2]
    assert frame["val_intent_loss"].tolist() == [2.1, 1.7, 2.1, 1.7]  # the intent loss, not the total
    assert frame["accuracy"].tolist() == [0.3, 0.4, 0.3, 0.4]
    experiments.plot_fig5(frame, tmp_path / "fig5.png", suite)
    assert is_png(tmp_path / "fig5.png")
    assert isinstance(frame, pd.DataFrame)
    suite = Suite("gpt2")  # a pretrained backbone: three runs, Transformer-L of its shape
    shape = SimpleNamespace(n_layer=12, n_embd=768)  # what RUN's GPT2 teacher reports
    suite.load_run = lambda path: SimpleNamespace(
        teacher=SimpleNamespace(backbone=SimpleNamespace(gpt2=SimpleNamespace(config=shape))))
    runs = experiments.fig5_runs(suite)
    assert list(runs) == ["GPT2 (gpt2, pretrained)", "Transformer-L (random:12x768, random init)",
                          "Transformer-S (random:1x16, random init)"]
    suite = Suite("random:1x16")  # the student's shape: one run for all three
    assert list(experiments.fig5_runs(suite)) == [
        "GPT2 = Transformer-L = Transformer-S (random:1x16, random init, no pretrained weights reachable)"]


def test_pretraining_stops_early_on_population_validation_and_keeps_the_best_epoch(monkeypatch):
    """The baselines' pretraining budget is the student's: the validation cross-entropy of
    epochs 1-4 is 2.0, 1.0, 1.5, 1.6 (hand-made logits), so with patience 2 the pretraining
    stops after epoch 4 and restores epoch 2's weights; its Adam rate is the run's student
    rate unless baseline_pretrain_learning_rate is given."""
    from pitune_tf.individual.baselines.population_baseline import PopulationBaseline
    from pitune_tf.individual.individual_config import IndividualConfig

    targets = {1: 2.0, 2: 1.0, 3: 1.5, 4: 1.6, 5: 9.0}

    class Backend:
        epoch, weights = 0, None

        def train(self, features, labels, weight):
            return 0.5

        def logits(self, windows):  # two intents, label 0: CE = -log p0 = the epoch's target
            p0 = np.exp(-targets[self.epoch])
            return np.log(np.tile([[p0, 1.0 - p0]], (len(windows.label), 1)))

        def get_weights(self):
            return [self.epoch]

        def set_weights(self, weights):
            self.weights = weights

    baseline = PopulationBaseline.__new__(PopulationBaseline)
    baseline.config = IndividualConfig(baseline_pretrain_epochs=10, baseline_pretrain_patience=2,
                                       batch_size=2)
    baseline.run = SimpleNamespace(config=SimpleNamespace(student_learning_rate=2e-3))
    baseline.pretrain_losses = []
    validation = SimpleNamespace(label=np.zeros(3, np.int64))
    baseline._windows = (None, validation, None)
    backend = Backend()
    epochs = iter(range(1, 11))

    def train_epoch(step, pool, batch_size, rng):
        backend.epoch = next(epochs)
        return step(None, None, None)

    import pitune_tf.individual.baselines.population_baseline as module

    monkeypatch.setattr(module, "train_epoch", train_epoch)
    baseline.pretrain(backend, pool=None)
    np.testing.assert_allclose(baseline.pretrain_val_losses, [2.0, 1.0, 1.5, 1.6], rtol=1e-6)
    assert backend.weights == [2] and baseline.pretrain_best_epoch == 2
    assert len(baseline.pretrain_losses) == 4
    assert baseline.pretrain_learning_rate() == 2e-3
    baseline.config = IndividualConfig(baseline_pretrain_learning_rate=1e-3)
    assert baseline.pretrain_learning_rate() == 1e-3


def test_reptile_calls_after_each_pass_and_stops_when_told():
    """10 iterations, 4 per pass: after_pass(1) at iteration 4, (2) at 8, (3) at 10 (the last,
    partial pass); returning True at pass 2 stops after 8 iterations."""
    from pitune_tf.individual.baselines.reptile import reptile

    variable = tf.Variable([0.0])
    tasks = [({"x": np.zeros((2, 1), np.float32)}, np.zeros(2, np.int64))]
    calls = []

    def step(features, labels, weight):
        variable.assign_add([1.0])
        return 0.0

    def run(stop_at):
        calls.clear()
        return reptile(step, [variable], tasks, 10, 1, 0.5, 2, seed=0, pass_iterations=4,
                       after_pass=lambda n: calls.append(n) or n == stop_at)

    assert len(run(None)) == 10 and calls == [1, 2, 3]
    assert len(run(2)) == 8 and calls == [1, 2]
