"""UAF model, gates, learner and CLI on tiny configs (hand-checked numbers)."""

import math

import numpy as np
import pytest

from nextitnet import gates as gate_fns
from nextitnet.fine_tuning_loss import UAFLearner
from nextitnet.losses import (
    masked_next_item_loss,
    policy_entropy,
    policy_reward,
    self_critical_loss,
)
from nextitnet.nextitnet_backbone import NextItNet
from nextitnet.policy_network import PolicyNetwork
from nextitnet.target_head import TargetHead
from nextitnet.uaf_model import MODES, UAFModel
from pitune_tf.common.keras import keras, tf

ITEMS = np.array([[0, 0, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [0, 0, 0, 0, 2, 9]], np.int32)
TARGETS = np.array([1, 2, 3], np.int32)


def pretrained_net():
    net = NextItNet(n_items=20, embedding_dim=8, block_dilations=(1, 2))
    net.build([None, None])
    return net


def uaf(mode, **kwargs):
    model = UAFModel(20, 110, mode=mode, embedding_dim=8, block_dilations=(1, 2), policy_dim=8,
                     policy_dilations=(1,), adapter_dim=2, **kwargs)
    model.load_pretrained(pretrained_net())
    return model


def one_step(model, objective="bpr", lr=0.1):
    learner = UAFLearner(model, objective=objective)
    learner.compile(optimizer=keras.optimizers.SGD(lr))
    return learner.train_step({"source": tf.constant(ITEMS), "target": tf.constant(TARGETS)})


def test_hard_gates_one_hot_forward_with_policy_gradients():
    logits = tf.Variable([[[0.3, -0.2], [1.0, 1.5]]])
    noise = tf.constant([[[0.1, 0.9], [0.0, -1.0]]])
    with tf.GradientTape() as tape:
        gates, alpha = gate_fns.gumbel_softmax_gates(logits, temperature=10.0, noise=noise)
        loss = tf.reduce_sum(gates * tf.constant([[1.0, 2.0]]))
    # block 0: log pi + g = (log_softmax [0.3, -0.2]) + [0.1, 0.9] -> argmax 1 -> fine-tune
    # block 1: log_softmax([1, 1.5]) + [0, -1] -> [-0.974, -1.474] -> argmax 0 -> freeze
    np.testing.assert_array_equal(gates.numpy(), [[1.0, 0.0]])
    grad = tape.gradient(loss, logits).numpy()
    assert np.abs(grad).min() > 0  # the relaxation (Eq. 10) passes gradients to every logit
    # d alpha_1 / d logit_1 = alpha_1 (1 - alpha_1) / tau for the first block
    a1 = float(alpha[0, 0, 1])
    assert grad[0, 0, 1] == pytest.approx(a1 * (1 - a1) / 10.0, rel=1e-4)


def test_hard_mode_policy_gets_gradients_in_the_model():
    model = uaf("hard")
    kernel = model.tuned_blocks[0].conv1.kernel
    kernel.assign(kernel + 0.3)  # at initialisation F'_l = F_l, so d loss / d gate = 0
    out = model(ITEMS, training=True)
    assert set(np.unique(out["gates"].numpy())) <= {0.0, 1.0}
    with tf.GradientTape() as tape:
        logits = model(ITEMS, training=True)["logits"]
        loss = tf.reduce_sum(tf.gather(logits, TARGETS, axis=1, batch_dims=1))
    grads = tape.gradient(loss, model.policy.trainable_variables)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads if g is not None) > 0


def test_soft_gates_in_open_interval():
    model = uaf("soft")
    gates = model(ITEMS)["gates"].numpy()
    assert gates.shape == (3, 2) and np.all(gates > 0) and np.all(gates < 1)
    assert float(gate_fns.soft_gates(tf.constant([[[0.0, math.log(3.0)]]]))[0, 0]) == pytest.approx(0.75)


def test_eq6_at_initialisation_equals_the_pretrained_network():
    net = pretrained_net()
    model = UAFModel(20, 110, mode="soft", embedding_dim=8, block_dilations=(1, 2), policy_dim=8)
    model.load_pretrained(net)
    for gates in (np.zeros((3, 2), np.float32), np.full((3, 2), 0.3, np.float32)):
        np.testing.assert_allclose(model.encode(ITEMS, gates).numpy(), net(ITEMS).numpy(), atol=1e-5)


def test_eq6_mixes_frozen_and_tuned_blocks():
    model = uaf("soft")
    for var in model.tuned_blocks[0].conv1.weights[:1]:
        var.assign(var + 0.5)
    x = model.backbone.embed(ITEMS)
    frozen = model.backbone.blocks[0](x)
    tuned = model.tuned_blocks[0](x)
    g = 0.25
    mixed = g * tuned + (1 - g) * frozen
    expected = model.backbone.blocks[1](mixed) * 0.75 + model.tuned_blocks[1](mixed) * 0.25
    got = model.encode(ITEMS, np.full((3, 2), g, np.float32))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("mode", ["soft", "hard", "rl", "random", "finetune-cls", "peterrec"])
def test_frozen_blocks_unchanged_after_a_step(mode):
    model = uaf(mode)
    frozen = [w.numpy().copy() for b in model.backbone.blocks for w in (b.conv1.kernel, b.ln2.gamma)]
    head = model.head.dense.kernel.numpy().copy()
    losses = one_step(model)
    after = [w.numpy() for b in model.backbone.blocks for w in (b.conv1.kernel, b.ln2.gamma)]
    for a, b in zip(frozen, after):
        np.testing.assert_array_equal(a, b)
    assert np.abs(model.head.dense.kernel.numpy() - head).max() > 0
    assert "loss" in losses and "bpr" in losses
    if mode in ("soft", "hard", "rl", "random"):
        assert "gate_mean" in losses


def test_trainable_sets_per_mode():
    counts = {m: len(uaf(m).trainable_variables) for m in MODES}
    # head: 2 variables; one block: conv1 (2) + ln1 (2) + conv2 (2) + ln2 (2) = 8
    assert counts["finetune-cls"] == 2
    assert counts["finetune-last1"] == 2 + 8 and counts["finetune-last2"] == 2 + 16
    assert counts["finetune-all"] == counts["finetune-zero"] == 2 + 16 + 1
    assert counts["mtl"] == counts["finetune-all"] + 2  # the source softmax layer
    assert counts["peterrec"] == 2 + 2 * 2 * 4  # 2 blocks x 2 adapters x (down, up) x (w, b)
    assert counts["random"] == 2 + 16 + 1  # tuned copies, head, embedding


def test_rl_loss_raises_probability_of_a_winning_sampled_action():
    logits = tf.Variable([[[0.0, 0.0]]])
    sampled = tf.constant([[1.0]])
    # sampled action correct with 1 of 1 blocks fine-tuned: R = 1 - 1^2 = 0; greedy wrong: -1
    reward_s = policy_reward(tf.constant([True]), sampled, gamma=1.0)
    reward_g = policy_reward(tf.constant([False]), tf.constant([[0.0]]), gamma=1.0)
    assert float(reward_s[0]) == 0.0 and float(reward_g[0]) == -1.0
    with tf.GradientTape() as tape:
        loss = self_critical_loss(logits, sampled, reward_s, reward_g)
    assert float(loss) == pytest.approx(math.log(2.0), rel=1e-6)  # -log(0.5) * (0 - (-1))
    grad = tape.gradient(loss, logits)
    np.testing.assert_allclose(grad.numpy(), [[[0.5, -0.5]]], atol=1e-6)
    logits.assign_sub(0.1 * grad)  # SGD: logits -> [-0.05, 0.05]
    p = float(tf.nn.softmax(logits)[0, 0, 1])
    assert p == pytest.approx(1 / (1 + math.exp(-0.1)), rel=1e-6) and p > 0.5


def test_policy_reward_hand_computed():
    actions = tf.constant([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    r = policy_reward(tf.constant([True, False]), actions, gamma=2.0).numpy()
    np.testing.assert_allclose(r, [1 - 0.25**2, -2.0])


def test_rl_step_returns_every_term():
    losses = one_step(uaf("rl"))
    assert {"loss", "bpr", "rl", "reward", "gate_mean"} <= set(losses)
    assert float(losses["loss"]) == pytest.approx(float(losses["bpr"]) + float(losses["rl"]), rel=1e-5)


def test_mtl_step_adds_source_objective():
    model = UAFModel(20, 110, mode="mtl", embedding_dim=8, block_dilations=(1, 2))
    losses = one_step(model)
    assert float(losses["loss"]) == pytest.approx(float(losses["bpr"]) + float(losses["source_ce"]), rel=1e-5)


def test_inference_greedy_and_random_gates_are_fixed():
    hard = uaf("hard")
    a, b = hard(ITEMS)["gates"].numpy(), hard(ITEMS)["gates"].numpy()
    np.testing.assert_array_equal(a, b)
    logits = hard.policy_logits(ITEMS).numpy()
    np.testing.assert_array_equal(a, (logits[..., 1] > logits[..., 0]).astype(np.float32))
    rnd = uaf("random", seed=4)
    g1 = rnd(ITEMS, training=True)["gates"].numpy()
    np.testing.assert_array_equal(g1, rnd(ITEMS)["gates"].numpy())
    assert set(np.unique(g1)) <= {0.0, 1.0}
    many = gate_fns.hashed_bernoulli_gates(tf.constant(np.arange(2000).reshape(1000, 2)), 4, seed=0)
    assert 0.45 < float(tf.reduce_mean(many)) < 0.55


def test_negative_in_training_is_never_the_positive():
    learner = UAFLearner(uaf("finetune-cls"))
    positives = tf.constant(np.arange(1, 110).repeat(20), tf.int32)
    negatives = learner.sample_negatives(positives).numpy()
    assert negatives.min() >= 1 and negatives.max() <= 109
    assert not np.any(negatives == positives.numpy())


def test_gru_policy_shapes_and_config():
    policy = PolicyNetwork(n_items=20, n_blocks=3, kind="gru", embedding_dim=8)
    assert policy(ITEMS).shape == (3, 3, 2)
    assert PolicyNetwork.from_config(policy.get_config()).get_config() == policy.get_config()
    with pytest.raises(ValueError):
        PolicyNetwork(20, 3, kind="lstm")


def test_profile_objective_step():
    model = UAFModel(20, 2, mode="soft", embedding_dim=8, block_dilations=(1, 2), policy_dim=8)
    learner = UAFLearner(model, objective="ce")
    learner.compile(optimizer=keras.optimizers.SGD(0.1))
    losses = learner.train_step({"source": tf.constant(ITEMS), "target": tf.constant([0, 1, 1])})
    assert "ce" in losses and float(losses["ce"]) > 0


def test_same_seed_same_step():
    results = []
    for _ in range(2):
        keras.utils.set_random_seed(7)
        model = uaf("hard", seed=7)
        losses = one_step(model)
        results.append((float(losses["loss"]), model.head.dense.kernel.numpy().copy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_reward_forms_hand_computed():
    actions = tf.constant([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    correct = tf.constant([True, True, False])
    # shares 0.25, 0.5, 1; paper: 1 - share^2; authors: 1 - gamma (1 - share)^2; wrong: -gamma
    np.testing.assert_allclose(policy_reward(correct, actions, 2.0, "paper").numpy(), [1 - 0.0625, 0.75, -2.0])
    np.testing.assert_allclose(policy_reward(correct, actions, 2.0, "authors").numpy(),
                               [1 - 2 * 0.5625, 1 - 2 * 0.25, -2.0])


def test_correct_sampled_and_full_protocols():
    logits = tf.constant([[0.0, 0.9, 0.5, 0.5, 0.1, 0.7, 0.8, 0.6]])  # ids 0..7, target 3
    targets = tf.constant([3])
    sampled = UAFLearner(uaf("rl"), reward_protocol="sampled", reward_top_k=3)
    # candidates 1 (0.9), 2 (0.5, a tie: counts against), 4 (0.1): rank 3
    assert bool(sampled.correct(logits, targets, tf.constant([[1, 2, 4]]))[0])
    sampled.reward_top_k = 2
    assert not bool(sampled.correct(logits, targets, tf.constant([[1, 2, 4]]))[0])
    full = UAFLearner(uaf("rl"), reward_protocol="full", reward_top_k=5)
    # ids 1..7 scoring >= 0.5: 1, 2, 3, 5, 6, 7 -> rank 6
    assert not bool(full.correct(logits, targets)[0])
    full.reward_top_k = 6
    assert bool(full.correct(logits, targets)[0])


def test_sampled_reward_negatives_distinct_valid_never_positive():
    learner = UAFLearner(uaf("rl"), n_negatives=99)
    positives = tf.constant(np.arange(1, 110).repeat(3), tf.int32)
    negs = learner.sample_eval_negatives(positives).numpy()
    assert negs.shape == (327, 99) and negs.min() >= 1 and negs.max() <= 109
    assert not np.any(negs == positives.numpy()[:, None])
    assert all(len(set(row)) == 99 for row in negs)
    assert UAFLearner(uaf("rl"), n_negatives=500).n_negatives == 108  # capped: 109 valid ids - 1


def test_rl_warmup_trains_without_the_policy_then_switches_on():
    model = uaf("rl")
    learner = UAFLearner(model, rl_warmup_epochs=1)
    learner.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [v.numpy().copy() for v in model.policy.trainable_variables]
    head = model.head.dense.kernel.numpy().copy()
    batch = {"source": tf.constant(ITEMS), "target": tf.constant(TARGETS)}
    learner.start_epoch(0)
    losses = learner.train_batch(batch)
    assert float(losses["rl_active"]) == 0.0 and float(losses["loss"]) == pytest.approx(float(losses["bpr"]))
    for a, b in zip(before, model.policy.trainable_variables):
        np.testing.assert_array_equal(a, b.numpy())
    assert np.abs(model.head.dense.kernel.numpy() - head).max() > 0
    learner.start_epoch(1)
    losses = learner.train_batch(batch)
    assert float(losses["rl_active"]) == 1.0 and {"correct", "advantage_nonzero", "advantage_batch"} <= set(losses)


def test_mean_representation_averages_real_positions():
    head = TargetHead(3, representation="mean")
    hidden = tf.constant([[[9.0, 9.0], [1.0, 2.0], [3.0, 6.0]]])  # position 0 is padding
    items = tf.constant([[0, 4, 5]])
    head.build([None, None, 2])
    expected = head.dense(tf.constant([[2.0, 4.0]]))
    np.testing.assert_allclose(head(hidden, items).numpy(), expected.numpy(), rtol=1e-6)
    assert TargetHead.from_config(head.get_config()).representation == "mean"
    assert uaf("soft", representation="mean")(ITEMS)["logits"].shape == (3, 110)


def test_mtl_source_objective_draws_from_every_source_window():
    window = np.array([[0, 0, 3, 4, 5, 6, 7]], np.int32)  # L + 1 = 7
    model = UAFModel(20, 110, mode="mtl", embedding_dim=8, block_dilations=(1, 2))
    learner = UAFLearner(model, source_windows=np.repeat(window, 5, axis=0))
    losses = learner.compute_losses({"source": tf.constant(ITEMS), "target": tf.constant(TARGETS)}, True)
    hidden = model.encode(tf.constant(window[:, :-1]), training=True)
    expected = masked_next_item_loss(window[:, 1:], model.backbone.next_item_logits(hidden))
    assert float(losses["source_ce"]) == pytest.approx(float(expected), rel=1e-5)


def test_policy_entropy_hand_computed():
    logits = tf.constant([[[0.0, 0.0], [0.0, math.log(3.0)]]])  # p(fine-tune) = 0.5, 0.75
    expected = (math.log(2.0) - (0.25 * math.log(0.25) + 0.75 * math.log(0.75))) / 2
    assert float(policy_entropy(logits)) == pytest.approx(expected, rel=1e-6)


def test_rl_step_subtracts_the_entropy_bonus():
    keras.utils.set_random_seed(3)
    learner = UAFLearner(uaf("rl"), entropy_weight=0.5)
    losses = learner.compute_losses({"source": tf.constant(ITEMS), "target": tf.constant(TARGETS)}, True)
    expected = float(losses["bpr"]) + float(losses["rl"]) - 0.5 * float(losses["entropy"])
    assert float(losses["loss"]) == pytest.approx(expected, rel=1e-5)


def test_rl_warmup_with_every_block_fine_tuned():
    learner = UAFLearner(uaf("rl"), rl_warmup_epochs=1, rl_warmup_gates="ones")
    learner.start_epoch(0)
    losses = learner.compute_losses({"source": tf.constant(ITEMS), "target": tf.constant(TARGETS)}, True)
    assert float(losses["gate_mean"]) == 1.0 and float(losses["rl_active"]) == 0.0
    with pytest.raises(ValueError, match="rl_warmup_gates"):
        UAFLearner(uaf("rl"), rl_warmup_gates="all")


def test_rl_policy_learns_gates_that_differ_across_users():
    # UAF Eq. 14 with a per-user reward: fine-tuning pays for user 0 and 2, freezing for user 1
    keras.utils.set_random_seed(0)
    model = uaf("rl")
    policy = model.policy
    prefers = tf.constant([1.0, 0.0, 1.0])  # [batch]
    optimizer = keras.optimizers.Adam(0.05)
    rng = tf.random.Generator.from_seed(0)
    for _ in range(200):
        with tf.GradientTape() as tape:
            logits = policy(tf.constant(ITEMS))  # [3, 2, 2]
            sampled = gate_fns.sample_actions(logits, rng=rng)  # [3, 2]
            greedy = gate_fns.greedy_actions(logits)

            def reward(actions):
                return tf.reduce_mean(1.0 - tf.abs(actions - prefers[:, None]), axis=-1)  # [3]

            loss = self_critical_loss(logits, sampled, reward(sampled), reward(greedy))
        grads = tape.gradient(loss, policy.trainable_variables)
        optimizer.apply_gradients(zip(grads, policy.trainable_variables))
    gates = model.gates_for(tf.constant(ITEMS)).numpy()  # inference: greedy
    np.testing.assert_array_equal(gates, [[1, 1], [0, 0], [1, 1]])


def test_reward_advantage_of_a_correctness_flip_against_the_usage_cost_by_hand():
    # row 0: both actions correct, sampled fine-tunes all 4 blocks, greedy none: usage only;
    # row 1: only the sampled action (1 block of 4) is correct: the accuracy term
    sampled = tf.constant([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    greedy = tf.zeros([2, 4])
    for gamma, flip in ((1.0, 1 - 1 / 16 + 1.0), (10.0, 1 - 1 / 16 + 10.0)):
        advantage = (policy_reward(tf.constant([True, True]), sampled, gamma)
                     - policy_reward(tf.constant([True, False]), greedy, gamma)).numpy()
        np.testing.assert_allclose(advantage, [-1.0, flip], rtol=1e-6)
