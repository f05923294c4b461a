"""Vocabularies, context ids, windows (PITuning Eq. 1), splits and tf.data on hand-made logs."""

import logging

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.errors import UserInputError
from pitune_tf.data import (
    Vocabularies,
    Vocabulary,
    Windows,
    encode_events,
    make_windows,
    split_users,
    split_windows,
)
from pitune_tf.data.features import n_slot_ids, slot_ids, weekday_ids
from pitune_tf.data.windows import iter_windows


def two_user_log():
    """User a: x y x z (Mon 08:00, Mon 09:30, Tue 10:00, Sat 23:59); user b: y x (Sun)."""
    rows = [
        ("b", "2024-01-07 12:00", "x", "I1", "home"),  # deliberately unsorted
        ("a", "2024-01-01 08:00", "x", "I1", "home"),
        ("a", "2024-01-01 09:30", "y", "I2", "work"),
        ("a", "2024-01-02 10:00", "x", "I1", "home"),
        ("a", "2024-01-06 23:59", "z", "I2", "work"),
        ("b", "2024-01-07 00:00", "y", "I2", "home"),
    ]
    df = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "intent", "location"])
    df["timestamp"] = pd.to_datetime(df["timestamp"]).astype("datetime64[ns]")
    return df


def test_vocabulary_fit_encode_decode_and_unknowns(caplog):
    vocab = Vocabulary.fit(["b", "a", "b", "c"], min_count=1, name="event")
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b", "c"] and len(vocab) == 5
    assert Vocabulary.PAD == 0 and Vocabulary.UNK == 1
    with caplog.at_level(logging.WARNING):
        ids = vocab.encode(["c", "zz", "a", "zz", "yy"])
    assert ids.dtype == np.int32 and ids.tolist() == [4, 1, 2, 1, 1]
    assert vocab.unknown_count == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "3 of 5 values unseen" in warnings[0].getMessage()
    vocab.encode(["q"])
    assert vocab.unknown_count == 4
    assert vocab.decode([0, 1, 3]) == ["<pad>", "<unk>", "b"]
    assert Vocabulary.fit(["b", "a", "b"], min_count=2).tokens == ["<pad>", "<unk>", "b"]


def test_vocabularies_json_round_trip(tmp_path):
    vocabs = Vocabularies.fit(two_user_log(), slot_minutes=30)
    path = vocabs.save(tmp_path)
    assert path == tmp_path / "vocab.json"
    loaded = Vocabularies.load(tmp_path)
    assert loaded == vocabs
    assert loaded.event.tokens == ["<pad>", "<unk>", "x", "y", "z"]
    assert loaded.sizes == {"event": 5, "intent": 4, "location": 4, "weekday": 8, "slot": 49}
    assert loaded.n_intents == 4
    with pytest.raises(UserInputError, match="not found"):
        Vocabularies.load(tmp_path / "nowhere")


def test_weekday_and_slot_ids():
    seconds = (
        pd.to_datetime(
            [
                "2024-01-01 00:00:00",
                "2024-01-01 00:59:59",
                "2024-01-03 13:30:00",
                "2024-01-07 23:59:59",
            ]
        )
        .astype("datetime64[s]")
        .astype(np.int64)
    )
    assert weekday_ids(seconds).tolist() == [1, 1, 3, 7]  # Mon, Mon, Wed, Sun
    assert slot_ids(seconds, 60).tolist() == [1, 1, 14, 24]
    assert slot_ids(seconds, 30).tolist() == [1, 2, 28, 48]
    assert weekday_ids(np.array([-1])).tolist() == [3]  # 1969-12-31 was a Wednesday
    assert n_slot_ids(60) == 25 and n_slot_ids(45) == 33
    with pytest.raises(UserInputError):
        n_slot_ids(0)


def test_encode_events_sorts_and_computes_context():
    vocabs = Vocabularies.fit(two_user_log())
    enc = encode_events(two_user_log(), vocabs)
    assert enc.user.tolist() == ["a", "a", "a", "a", "b", "b"]
    assert enc.event.tolist() == [2, 3, 2, 4, 3, 2]
    assert enc.intent.tolist() == [2, 3, 2, 3, 3, 2]
    assert enc.location.tolist() == [2, 3, 2, 3, 2, 2]
    assert enc.weekday.tolist() == [1, 1, 2, 6, 7, 7]
    assert enc.slot.tolist() == [9, 10, 11, 24, 1, 13]
    assert enc.timestamp[0] == 1704096000  # 2024-01-01 08:00 as naive seconds
    with pytest.raises(UserInputError, match="slot_minutes"):
        encode_events(two_user_log(), vocabs, slot_minutes=30)


def test_windows_left_padded_exact_ids():
    vocabs = Vocabularies.fit(two_user_log())
    w = make_windows(encode_events(two_user_log(), vocabs), history=3, min_history=1)
    assert len(w) == 4 and w.history == 3
    assert w.user.tolist() == ["a", "a", "a", "b"]
    assert w.event.tolist() == [[0, 0, 2], [0, 2, 3], [2, 3, 2], [0, 0, 3]]
    assert w.location.tolist() == [[0, 0, 2], [0, 2, 3], [2, 3, 2], [0, 0, 2]]
    assert w.weekday.tolist() == [[0, 0, 1], [0, 1, 1], [1, 1, 2], [0, 0, 7]]
    assert w.slot.tolist() == [[0, 0, 9], [0, 9, 10], [9, 10, 11], [0, 0, 1]]
    assert w.mask.tolist() == [[0, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]]
    assert w.label.tolist() == [3, 2, 3, 2]  # intents of y, x, z (user a) and x (user b)
    assert w.timestamp[-1] - w.timestamp[-2] > 0
    assert w.event.dtype == np.int32 and w.mask.dtype == np.float32 and w.label.dtype == np.int32
    assert list(w.features()) == ["location", "weekday", "slot", "event", "mask"]


def test_subsample_is_seeded_ordered_and_bounded():
    w = make_windows(encode_events(two_user_log(), Vocabularies.fit(two_user_log())), history=3)
    assert w.subsample(0) is w and w.subsample(10) is w  # 0 = all; nothing to drop
    part = w.subsample(2, seed=1)
    expected = np.sort(np.random.default_rng(1).choice(4, 2, replace=False))
    assert part.label.tolist() == w.label[expected].tolist()
    assert w.subsample(2, seed=1).event.tolist() == part.event.tolist()


def test_windows_truncate_to_last_events_and_min_history():
    vocabs = Vocabularies.fit(two_user_log())
    enc = encode_events(two_user_log(), vocabs)
    w = make_windows(enc, history=2, min_history=2)
    assert w.user.tolist() == ["a", "a"]  # user b has only one earlier event
    assert w.event.tolist() == [[2, 3], [3, 2]]
    assert w.label.tolist() == [2, 3]
    with pytest.raises(UserInputError):
        make_windows(enc, history=2, min_history=3)
    chunks = list(iter_windows(enc, history=3, max_events=2))  # one user per chunk
    assert [len(c) for c in chunks] == [3, 1]
    joined = Windows.concatenate(chunks)
    assert joined.event.tolist() == make_windows(enc, history=3).event.tolist()


def daily_log(n_users=2, n_days=14):
    """One event per day at noon for each user, intents alternating."""
    rows = []
    for u in range(n_users):
        for d in range(n_days):
            rows.append(
                (
                    f"u{u}",
                    pd.Timestamp("2024-03-01 12:00") + pd.Timedelta(days=d + u),
                    f"e{d % 3}",
                    f"i{d % 2}",
                )
            )
    return pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "intent"])


def test_split_windows_by_fraction_is_chronological_per_user():
    df = daily_log(n_days=11)  # 10 windows per user
    vocabs = Vocabularies.fit(df)
    w = make_windows(encode_events(df, vocabs), history=4)
    train, val, test = split_windows(w.take(np.arange(len(w))[::-1]))  # order must not matter
    assert (len(train), len(val), len(test)) == (12, 2, 6)  # 6/1/3 per user
    for user in ("u0", "u1"):
        t, v, s = (part.timestamp[part.user == user] for part in (train, val, test))
        assert t.max() < v.min() and v.max() < s.min()
        assert np.all(np.diff(t) > 0)


def test_split_windows_by_days():
    df = daily_log(n_days=14)  # predicted events on days 1..13 -> offsets 0..12
    vocabs = Vocabularies.fit(df)
    w = make_windows(encode_events(df, vocabs), history=4)
    train, val, test = split_windows(w, days=(7, 1, 4))
    assert (len(train), len(val), len(test)) == (14, 2, 8)  # offset 12 dropped for each user
    first = w.timestamp[w.user == "u1"].min()
    day = 86400
    assert val.timestamp[val.user == "u1"].tolist() == [first + 7 * day]
    assert test.timestamp[test.user == "u1"].max() == first + 11 * day


def test_split_users_disjoint_and_seeded():
    users = [f"u{i}" for i in range(10)] * 3
    pop, ind = split_users(users, individual_fraction=0.2, seed=3)
    assert len(pop) == 8 and len(ind) == 2
    assert set(pop).isdisjoint(ind) and set(pop) | set(ind) == {f"u{i}" for i in range(10)}
    again = split_users(users, individual_fraction=0.2, seed=3)
    assert again[1].tolist() == ind.tolist()
    assert any(split_users(users, 0.2, seed=s)[1].tolist() != ind.tolist() for s in range(4, 10))


def test_to_dataset_batches():
    vocabs = Vocabularies.fit(two_user_log())
    w = make_windows(encode_events(two_user_log(), vocabs), history=3)
    batches = list(w.to_dataset(batch_size=3))
    features, label = batches[0]
    assert sorted(features) == ["event", "location", "mask", "slot", "weekday"]
    assert features["event"].shape == (3, 3) and features["event"].dtype.name == "int32"
    assert features["mask"].dtype.name == "float32" and label.shape == (3,)
    assert features["event"].numpy().tolist() == w.event[:3].tolist()
    assert batches[1][1].shape == (1,)
    dropped = w.to_dataset(batch_size=3, drop_remainder=True)
    assert dropped.element_spec[0]["event"].shape.as_list() == [3, 3]
    assert len(list(dropped)) == 1
    shuffled = w.to_dataset(batch_size=4, shuffle=True, seed=1)
    first = [next(iter(shuffled))[1].numpy().tolist() for _ in range(2)]
    assert sorted(first[0]) == sorted(w.label.tolist())
    again = next(iter(w.to_dataset(batch_size=4, shuffle=True, seed=1)))[1].numpy().tolist()
    assert again == first[0]
