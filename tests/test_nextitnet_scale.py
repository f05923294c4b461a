"""NextItNet at scale: padding invariance inside the blocks, the bounded-memory next-item
losses (fused full CE, sampled softmax) and the fast training path against the reference."""

import numpy as np
import pytest

from nextitnet.losses import full_next_item_loss, masked_next_item_loss, sampled_next_item_loss
from nextitnet.nextitnet_backbone import NextItNet
from nextitnet.pretraining_loss import NextItNetPretrainer, resolve_pretrain_loss
from nextitnet.residual_block import ResidualBlock
from pitune_tf.common.keras import keras, tf


def tiny_net(n_items=20, adapter_dim=0):
    keras.utils.set_random_seed(0)
    net = NextItNet(n_items=n_items, embedding_dim=8, block_dilations=(1, 2), adapter_dim=adapter_dim)
    net.build([None, None])
    return net


def random_tensors(n_items=20, batch=2, length=7, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    hidden = tf.constant(rng.normal(size=(batch, length, dim)).astype("float32"))
    targets = rng.integers(1, n_items, size=(batch, length)).astype("int32")
    targets[0, :3] = 0  # padding targets are not scored
    kernel = tf.Variable(rng.normal(size=(dim, n_items)).astype("float32"))
    bias = tf.Variable(rng.normal(size=(n_items,)).astype("float32"))
    return hidden, tf.constant(targets), kernel, bias


@pytest.mark.parametrize("adapter_dim", [0, 2])
def test_outputs_at_real_positions_ignore_the_amount_of_left_padding(adapter_dim):
    net = tiny_net(adapter_dim=adapter_dim)
    rng = np.random.default_rng(3)
    for variable in net.variables:  # non-zero biases and LayerNorm offsets, as after training
        if "bias" in variable.name or "beta" in variable.name:
            variable.assign(rng.normal(size=variable.shape).astype("float32"))
    short = net(np.array([[0] * 5 + [3, 4, 5]], np.int32)).numpy()[0, -3:]
    long = net(np.array([[0] * 20 + [3, 4, 5]], np.int32)).numpy()[0, -3:]
    np.testing.assert_allclose(short, long, atol=1e-5)


def test_block_zeroes_padding_between_its_convolutions():
    block = ResidualBlock(channels=4, dilation=1)
    block.build([None, None, 4])
    for layer_norm in (block.ln1, block.ln2):  # offsets make padding non-zero inside F_l
        layer_norm.beta.assign(tf.fill([4], 0.5))
    x = np.zeros((1, 6, 4), np.float32)
    x[0, 3:] = np.random.default_rng(0).normal(size=(3, 4))
    mask = tf.constant([[0, 0, 0, 1, 1, 1]], tf.float32)[..., None]
    mapped = block.residual_mapping(x, padding_mask=mask).numpy()
    assert np.all(mapped[0, :3] == 0)
    assert np.abs(block.residual_mapping(x).numpy()[0, :3]).max() > 0  # unmasked: it leaks


def test_tap_matmul_convolution_equals_keras_conv1d():
    block = ResidualBlock(channels=4, dilation=2)
    block.build([None, None, 4])
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 9, 4)).astype("float32"))
    expected = block.conv1(tf.pad(x, [[0, 0], [4, 0], [0, 0]]))  # valid dilated Conv1D
    np.testing.assert_allclose(block._causal_conv(block.conv1, x, 2).numpy(), expected.numpy(), atol=1e-5)


def test_full_loss_and_gradients_equal_the_reference():
    hidden, targets, kernel, bias = random_tensors()
    hidden = tf.Variable(hidden)
    with tf.GradientTape(persistent=True) as tape:
        reference = masked_next_item_loss(targets, tf.matmul(hidden, kernel) + bias)
        fused = full_next_item_loss(hidden, targets, kernel, bias, chunk_rows=3)  # several chunks
    np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=1e-6)
    for want, got in zip(tape.gradient(reference, [hidden, kernel, bias]),
                         tape.gradient(fused, [hidden, kernel, bias])):
        np.testing.assert_allclose(tf.convert_to_tensor(got).numpy(), tf.convert_to_tensor(want).numpy(),
                                   atol=1e-6)


def test_full_loss_of_only_padding_is_zero():
    hidden, _, kernel, bias = random_tensors()
    with tf.GradientTape() as tape:
        tape.watch(hidden)
        loss = full_next_item_loss(hidden, tf.zeros([2, 7], tf.int32), kernel, bias)
    assert float(loss) == 0.0 and float(tf.reduce_sum(tf.abs(tape.gradient(loss, hidden)))) == 0.0


@pytest.mark.parametrize("sampler", ["uniform", "log_uniform"])
def test_sampled_loss_over_every_item_is_the_softmax_over_items(sampler):
    hidden, targets, kernel, bias = random_tensors()
    loss = sampled_next_item_loss(hidden, targets, kernel, bias, n_sampled=19, sampler=sampler)
    logits = (tf.matmul(hidden, kernel) + bias)[..., 1:]  # every item but padding
    weights = (targets.numpy() != 0).astype(np.float32)
    log_p = tf.nn.log_softmax(logits).numpy()
    picked = np.take_along_axis(log_p, np.maximum(targets.numpy() - 1, 0)[..., None], -1)[..., 0]
    expected = -(picked * weights).sum() / weights.sum()
    if sampler == "uniform":  # equal log Q for every item: the correction cancels
        np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    else:  # the log-uniform correction reweights items: a different, finite value
        assert np.isfinite(float(loss)) and abs(float(loss) - expected) > 1e-4


def test_sampled_loss_hand_computed_with_one_negative():
    hidden = tf.constant([[[1.0, 0.0]]])  # one position, k = 2
    kernel = tf.constant([[0.0, 2.0, -1.0], [0.0, 0.0, 0.0]])  # items 1 (target) and 2 score 2, -1
    bias = tf.zeros([3])
    loss = sampled_next_item_loss(hidden, tf.constant([[1]]), kernel, bias, n_sampled=2, sampler="uniform")
    # the sample is {1, 2}; 1 is the target (an accidental hit, removed): softmax over {2, -1}
    np.testing.assert_allclose(float(loss), np.log(np.exp(2.0) + np.exp(-1.0)) - 2.0, rtol=1e-6)


def test_bounded_memory_steps_never_make_batch_length_vocab_tensors():
    n_items, batch, length, dim = 5000, 4, 6, 8
    for loss in ("full", "sampled", "reference"):
        net = NextItNet(n_items, dim, (1,))
        net.build([None, None])
        trainer = NextItNetPretrainer(net, loss=loss, n_sampled=16, chunk_rows=8)
        trainer.compile(optimizer=keras.optimizers.SGD(0.1))
        step = tf.function(trainer.train_batch).get_concrete_function(
            tf.TensorSpec([batch, length + 1], tf.int32))
        # every tensor of the step outside the chunk loop: only the weights' shapes hold V
        wide = {tuple(out.shape.as_list()) for op in step.graph.get_operations() for out in op.outputs
                if out.shape.rank and out.shape[-1] == n_items}
        allowed = {(n_items,), (dim, n_items)}
        assert (wide <= allowed) == (loss != "reference"), (loss, wide - allowed)


def test_auto_samples_only_large_vocabularies():
    assert resolve_pretrain_loss("auto", 20_000) == "full"
    assert resolve_pretrain_loss("auto", 650_000) == "sampled"
    with pytest.raises(ValueError):
        resolve_pretrain_loss("softmax", 10)


@pytest.mark.parametrize("jit", [False, True])
def test_fast_training_step_equals_the_reference_step(jit):
    items = tf.constant(np.random.default_rng(2).integers(0, 20, size=(3, 8)), tf.int32)
    grads = {}
    for loss in ("reference", "full"):
        net = tiny_net()
        trainer = NextItNetPretrainer(net, loss=loss, chunk_rows=4, jit=jit and loss == "full")
        with tf.GradientTape() as tape:
            value = trainer.compute_losses(items, training=True)["loss"]
        grads[loss] = (float(value), [tf.convert_to_tensor(g).numpy()
                                      for g in tape.gradient(value, net.trainable_variables)])
    np.testing.assert_allclose(grads["full"][0], grads["reference"][0], rtol=1e-6)
    for got, want in zip(grads["full"][1], grads["reference"][1]):
        # XLA fuses and reorders the float32 sums: agreement is to float32 rounding of
        # the largest entry of each gradient, not of each entry on its own.
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_sampled_pretraining_step_lowers_the_sampled_loss():
    net = tiny_net(n_items=200)
    trainer = NextItNetPretrainer(net, loss="sampled", n_sampled=50, sampler="uniform")
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    items = tf.constant(np.tile(np.arange(1, 9, dtype=np.int32), (4, 1)))
    first = float(trainer.train_batch(items)["loss"])
    for _ in range(20):
        last = float(trainer.train_batch(items)["loss"])
    assert last < first
