"""PITuning layers on tiny configs: config round trips and hand-computed numbers."""

import numpy as np
import pytest

from pitune_tf.common.keras import keras, tf
from pitune_tf.layers import (
    ContextEmbedding,
    EventMasking,
    EventReconstructionHead,
    IntentAttention,
    IntentHead,
    LayerNorm,
    RepeatMixture,
    TransformerDecoder,
    TransformerDecoderBlock,
    gelu_tanh,
)

B, L, D = 2, 5, 8


def run_layer_test(layer, *args, **kwargs):
    """Config round trip; eager and tf.function calls agree; returns the eager output."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    eager = layer(*args, **kwargs)
    graph = tf.function(lambda: layer(*args, **kwargs))()
    tf.nest.map_structure(
        lambda a, b: np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6),
        eager, graph,
    )
    return eager


def _features(rng, vocab=6):
    ids = {k: rng.integers(1, vocab, (B, L)).astype(np.int32)
           for k in ("location", "weekday", "slot", "event")}
    mask = np.ones((B, L), np.float32)
    mask[0, :2] = 0.0  # left padding in row 0
    for k in ids:
        ids[k][mask == 0] = 0
    return {**ids, "mask": mask}


def test_context_embedding_concatenates_the_four_tables():
    rng = np.random.default_rng(0)
    features = _features(rng)
    layer = ContextEmbedding(6, 8, 6, 6, embedding_dim=3)
    out = run_layer_test(layer, features).numpy()
    assert out.shape == (B, L, 12)
    tables = [layer.location_embedding, layer.weekday_embedding, layer.slot_embedding,
              layer.event_embedding]
    for block, (key, table) in enumerate(zip(("location", "weekday", "slot", "event"), tables)):
        expected = table.embeddings.numpy()[features[key]]
        np.testing.assert_array_equal(out[..., 3 * block: 3 * block + 3], expected)


def test_event_masking_touches_only_the_event_field_of_chosen_positions():
    rng = np.random.default_rng(1)
    features = _features(rng)
    embedding = ContextEmbedding(6, 8, 6, 6, embedding_dim=3)
    masking = EventMasking(3, rate=0.5, seed=3)
    plain = embedding(features).numpy()
    masked_events, chosen = masking(embedding.embed_events(features["event"]), features["mask"],
                                    seed=tf.constant([3, 7], tf.int64))
    masked = embedding(features, event_embeddings=masked_events).numpy()
    chosen = chosen.numpy()
    assert chosen.sum() > 0 and (chosen <= features["mask"]).all()  # only real positions
    np.testing.assert_array_equal(masked[..., :9], plain[..., :9])  # location, weekday, slot
    np.testing.assert_array_equal(masked[chosen == 0][:, 9:], plain[chosen == 0][:, 9:])
    mask_vector = masking.mask_embedding.numpy()
    np.testing.assert_array_equal(masked[chosen == 1][:, 9:],
                                  np.tile(mask_vector, (int(chosen.sum()), 1)))


def test_event_masking_draws_are_seeded_and_advance():
    masking = EventMasking(3, rate=0.5, seed=0)
    emb = tf.zeros([4, 10, 3])
    mask = tf.ones([4, 10])
    _, first = masking(emb, mask)
    _, second = masking(emb, mask)
    assert int(masking.step.numpy()) == 2
    assert not np.array_equal(first.numpy(), second.numpy())
    again = EventMasking(3, rate=0.5, seed=0)
    _, replay = again(emb, mask)
    np.testing.assert_array_equal(replay.numpy(), first.numpy())
    assert run_layer_test(EventMasking(3, rate=1.0), emb, mask, seed=tf.constant([1, 1]))[1].numpy().all()


def _naive_attention(layer, history, mask):
    """Eq. 3 with the DIN unit written out over the concatenation, in numpy."""
    e = layer.intent_embedding.numpy()  # [N_I, D]
    h = history
    n_i = e.shape[0]
    ee = np.broadcast_to(e[None, :, None, :], (B, n_i, L, D))
    hh = np.broadcast_to(h[:, None, :, :], (B, n_i, L, D))
    z = np.concatenate([ee, hh, ee * hh, ee - hh], axis=-1) @ layer.first_kernel.numpy()
    z = z + layer.first_bias.numpy()
    alphas = [a.numpy() for a in layer.alphas]
    z = np.maximum(z, 0) + alphas[0] * np.minimum(z, 0)
    for dense, alpha in zip(layer.hidden_layers, alphas[1:]):
        z = z @ dense.kernel.numpy() + dense.bias.numpy()
        z = np.maximum(z, 0) + alpha * np.minimum(z, 0)
    w = (z @ layer.output_layer.kernel.numpy() + layer.output_layer.bias.numpy())[..., 0]
    w = w * mask[:, None, :]
    return np.einsum("bil,bld->bid", w, h), w


def test_intent_attention_matches_the_din_unit_over_the_concatenation():
    rng = np.random.default_rng(2)
    history = rng.normal(size=(B, L, D)).astype(np.float32)
    mask = np.ones((B, L), np.float32)
    mask[0, :2] = 0
    layer = IntentAttention(n_intents=4, units=(6, 3))
    layer.build(history.shape)
    for a in layer.alphas:  # non-zero PReLU slopes so the negative side is checked too
        a.assign(rng.uniform(0.1, 0.3, a.shape))
    pooled, weights = run_layer_test(layer, history, mask, return_attention=True)
    expected_pooled, expected_weights = _naive_attention(layer, history, mask)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pooled.numpy(), expected_pooled, rtol=1e-4, atol=1e-5)
    assert (weights.numpy()[0, :, :2] == 0).all()  # padding gets no weight
    changed = history.copy()
    changed[0, :2] += 5.0  # changing padded positions changes nothing
    np.testing.assert_allclose(layer(changed, mask).numpy(), pooled.numpy(), rtol=1e-6)


def test_intent_attention_softmax_normalizes_over_real_positions():
    rng = np.random.default_rng(3)
    history = rng.normal(size=(B, L, D)).astype(np.float32)
    mask = np.ones((B, L), np.float32)
    mask[1, :3] = 0
    layer = IntentAttention(3, units=(4,), normalize="softmax")
    _, weights = layer(history, mask, return_attention=True)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
    assert (weights.numpy()[1, :, :3] == 0).all()


def test_intent_attention_mean_divides_by_the_real_positions():
    rng = np.random.default_rng(6)
    history = rng.normal(size=(B, L, D)).astype(np.float32)
    mask = np.ones((B, L), np.float32)
    mask[0, :2] = 0  # 3 real positions in row 0, 5 in row 1
    plain = IntentAttention(3, units=(4,))
    plain.build(history.shape)
    mean = IntentAttention(3, units=(4,), normalize="mean")
    mean.build(history.shape)
    mean.set_weights(plain.get_weights())
    expected = plain(history, mask).numpy() / np.array([3.0, 5.0])[:, None, None]
    np.testing.assert_allclose(mean(history, mask).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_intent_head_per_intent_and_last_position_forms():
    rng = np.random.default_rng(4)
    head = IntentHead(n_intents=3, hidden_units=4)
    pooled = rng.normal(size=(B, 3, D)).astype(np.float32)
    logits = run_layer_test(head, pooled).numpy()
    w1, b1 = head.hidden.kernel.numpy(), head.hidden.bias.numpy()
    w2, b2 = head.output_kernel.numpy(), head.output_bias.numpy()
    hidden = np.maximum(pooled @ w1 + b1, 0)  # [B, N_I, U]
    np.testing.assert_allclose(logits, (hidden * w2[None]).sum(-1) + b2, rtol=1e-5, atol=1e-6)
    last = rng.normal(size=(B, D)).astype(np.float32)
    np.testing.assert_allclose(head(last).numpy(), np.maximum(last @ w1 + b1, 0) @ w2.T + b2,
                               rtol=1e-5, atol=1e-6)


def test_reconstruction_head_shape():
    out = run_layer_test(EventReconstructionHead(7, hidden_units=4), tf.ones([B, L, D]))
    assert out.shape == (B, L, 7)


def test_layer_norm_and_gelu_by_hand():
    x = np.array([[1.0, 2.0, 3.0, 6.0]], np.float32)
    out = run_layer_test(LayerNorm(epsilon=0.0), x).numpy()
    np.testing.assert_allclose(out, (x - 3.0) / np.sqrt(3.5), rtol=1e-5)
    v = np.array([-2.0, 0.0, 1.0], np.float32)
    expected = 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3)))
    np.testing.assert_allclose(gelu_tanh(tf.constant(v)).numpy(), expected, rtol=1e-5)


def test_decoder_block_is_causal_and_ignores_padding():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(B, L, D)).astype(np.float32)
    mask = np.ones((B, L), np.float32)
    mask[0, :2] = 0
    block = TransformerDecoderBlock(D, num_heads=2)
    out = run_layer_test(block, x, mask).numpy()
    future = x.copy()
    future[:, -1] += 3.0  # the last position is nobody's past
    np.testing.assert_allclose(block(future, mask).numpy()[:, :-1], out[:, :-1], rtol=1e-5)
    padded = x.copy()
    padded[0, :2] += 3.0  # padding is no real position's context
    np.testing.assert_allclose(block(padded, mask).numpy()[0, 2:], out[0, 2:], rtol=1e-5,
                               atol=1e-6)


def test_decoder_stack_static_shape_and_builtin_ops_only():
    decoder = TransformerDecoder(2, D, 2, sequence_length=L)
    x = tf.ones([B, L, D])
    mask = tf.ones([B, L])
    assert run_layer_test(decoder, x, mask).shape == (B, L, D)

    @tf.function(input_signature=[tf.TensorSpec([B, L, D]), tf.TensorSpec([B, L])])
    def train_graph(inputs, mask):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(decoder(inputs, mask, training=True))
        return tape.gradient(loss, decoder.trainable_variables)

    ops = {op.type for op in train_graph.get_concrete_function().graph.get_operations()}
    forbidden = {"Erf", "Erfc", "StridedSlice", "StridedSliceGrad", "FusedBatchNormV3",
                 "MatrixBandPart"}
    assert not ops & forbidden, ops & forbidden


def test_bad_arguments():
    with pytest.raises(ValueError):
        IntentAttention(2, normalize="bad")
    with pytest.raises(ValueError):
        TransformerDecoderBlock(6, num_heads=4)


def test_layers_are_registered_for_keras_saving():
    for cls in (ContextEmbedding, EventMasking, IntentAttention, IntentHead, LayerNorm,
                TransformerDecoder, TransformerDecoderBlock, EventReconstructionHead):
        name = keras.saving.get_registered_name(cls)
        assert name == f"pitune>{cls.__name__}"


def test_repeat_mixture_by_hand():
    """P = rho_c [i = c] + (1 - rho_c) softmax(z), rho_c = sigmoid(a_c) m_L; log P returned.
    Event ids 0..3 map to intents 0, 2, 1, 2."""
    layer = RepeatMixture([0, 2, 1, 2], n_intents=3, initial_logit=[0.0, np.log(3.0), 0.0])
    logits = tf.constant([[0.0, 0.0, 0.0], [0.0, np.log(2.0), 0.0], [1.0, 2.0, 3.0]])
    events = tf.constant([[1, 3], [3, 2], [0, 0]])  # newest: event 3 (intent 2), 2 (1), padding
    mask = tf.constant([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    probs = np.exp(run_layer_test(layer, logits, events, mask).numpy())
    third = 1.0 / 3.0
    np.testing.assert_allclose(probs[0], [0.5 * third, 0.5 * third, 0.5 + 0.5 * third], rtol=1e-5)
    np.testing.assert_allclose(probs[1], [0.25 * 0.25, 0.75 + 0.25 * 0.5, 0.25 * 0.25], rtol=1e-5)
    np.testing.assert_allclose(probs[2], tf.nn.softmax(logits[2]).numpy(), rtol=1e-5)  # padding: rho 0
    with pytest.raises(ValueError):
        RepeatMixture([0, 3], n_intents=3)


def test_repeat_logits_by_hand():
    """a_c = logit of P(y = c | c(e_L) = c), smoothed toward 0.5, clipped to [-4, 4]."""
    from pitune_tf.layers.repeat_mixture import repeat_logits

    labels = np.array([1, 1, 1, 2])
    last = np.array([1, 1, 2, 2])  # intent 1 follows 1 twice of 2; intent 2 follows 2 once of 2
    a = repeat_logits(labels, last, n_intents=3, pseudo_count=1.0)
    np.testing.assert_allclose(a, [-4.0, np.log(2.5 / 0.5), 0.0])  # (2 + .5) / 3 vs (1 + .5) / 3
