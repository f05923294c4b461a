"""Streamed population data: Parquet shards -> chunks of whole users -> tf.data windows equal
to the in-memory windows; seeded, resumable epoch order; worker shards; a streamed run."""

import math

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.errors import DataError, UserInputError
from pitune_tf.data import (
    Vocabularies,
    encode_events,
    make_windows,
    split_windows,
    write_events,
)
from pitune_tf.data.event_stream import EventStream
from pitune_tf.data.synthetic import generate
from pitune_tf.data.window_stream import WindowPlan, stream_splits

HISTORY = 6


@pytest.fixture(scope="module")
def log():
    return generate("tiny", seed=0, with_oracle=False).population  # 16 users, ~9k events


@pytest.fixture
def shards(log, tmp_path):
    """The log as 3 Parquet shards of whole users, small row groups (chunks straddle them)."""
    users = sorted(log.user_id.unique())
    directory = tmp_path / "population"
    for i, part in enumerate(np.array_split(np.array(users), 3)):
        write_events(log[log.user_id.isin(set(part))], directory / f"part-{i:05d}.parquet",
                     row_group_size=300)
    return directory


def _in_memory(log, vocabs):
    windows = make_windows(encode_events(log, vocabs), history=HISTORY)
    return split_windows(windows)


def _rows(batches):
    """The rows of ``(features, labels)`` batches as one int array, sorted (a multiset)."""
    keys = ("location", "weekday", "slot", "event", "mask")
    rows = np.concatenate([np.column_stack([f[k].numpy().astype(np.int64) for k in keys]
                                           + [y.numpy()[:, None]]) for f, y in batches])
    return rows[np.lexsort(rows.T[::-1])]


def _windows_rows(windows):
    keys = ("location", "weekday", "slot", "event", "mask")
    rows = np.column_stack([getattr(windows, k).astype(np.int64) for k in keys]
                           + [windows.label[:, None]])
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("source", ["shards", "frame"])
def test_streamed_windows_equal_the_in_memory_windows(log, shards, source):
    events = EventStream(shards if source == "shards" else log, chunk_events=1000)
    assert len(events) == len(log) and events.n_users == 16 and len(events.chunks) >= 8
    vocabs = Vocabularies.from_counts(events.counts)
    assert vocabs == Vocabularies.fit(log)
    train, val, test, pair_counts = stream_splits(events, WindowPlan(vocabs, HISTORY))
    mem_train, mem_val, mem_test = _in_memory(log, vocabs)
    for streamed, memory in ((val, mem_val), (test, mem_test)):  # in memory, same order
        for key in ("location", "weekday", "slot", "event", "mask", "label", "timestamp"):
            np.testing.assert_array_equal(getattr(streamed, key), getattr(memory, key))
    np.testing.assert_array_equal(train.label, mem_train.label)
    # one shuffled epoch holds exactly the training windows, in full batches but the last
    batches = list(train.epoch_dataset(batch_size=64, seed=3))
    assert len(batches) == math.ceil(len(mem_train) / 64)
    assert [len(y) for _, y in batches[:-1]] == [64] * (len(batches) - 1)
    np.testing.assert_array_equal(_rows(batches), _windows_rows(mem_train))
    # unshuffled: the in-memory order
    ordered = list(train.to_dataset(batch_size=100))
    np.testing.assert_array_equal(
        np.concatenate([f["event"].numpy() for f, _ in ordered]), mem_train.event)
    encoded = encode_events(log, vocabs)
    expected = np.zeros_like(pair_counts)
    np.add.at(expected, (encoded.event, encoded.intent), 1)
    np.testing.assert_array_equal(pair_counts, expected)


def test_streamed_epochs_are_seeded_and_resume_with_the_same_batches(log):
    events = EventStream(log, chunk_events=800)
    vocabs = Vocabularies.from_counts(events.counts)
    train = stream_splits(events, WindowPlan(vocabs, HISTORY), group_chunks=2)[0]

    def labels(ds):
        return [y.numpy().tolist() for _, y in ds]

    two = labels(train.epoch_dataset(64, seed=5, first_epoch=0, epochs=2))
    assert two == labels(train.epoch_dataset(64, seed=5, first_epoch=0, epochs=2))
    steps = math.ceil(len(train) / 64)
    assert len(two) == 2 * steps
    assert two[steps:] == labels(train.epoch_dataset(64, seed=5, first_epoch=1, epochs=2))
    assert two[:steps] != two[steps:]  # each epoch its own order
    assert two[:steps] != labels(train.epoch_dataset(64, seed=6))


def test_streamed_subsets_are_the_in_memory_subsamples(log):
    events = EventStream(log, chunk_events=1000)
    vocabs = Vocabularies.from_counts(events.counts)
    train, val, test, _ = stream_splits(events, WindowPlan(vocabs, HISTORY), max_train=500,
                                        max_eval=200, seed=7)
    mem_train, mem_val, mem_test = _in_memory(log, vocabs)
    assert (len(train), len(val), len(test)) == (500, 200, 200)
    np.testing.assert_array_equal(train.label, mem_train.subsample(500, 7).label)
    np.testing.assert_array_equal(
        _rows(list(train.epoch_dataset(128, seed=0))), _windows_rows(mem_train.subsample(500, 7)))
    for streamed, memory in ((val, mem_val), (test, mem_test)):
        np.testing.assert_array_equal(streamed.event, memory.subsample(200, 7).event)


def test_worker_shards_partition_the_chunks(log, shards):
    events = EventStream(shards, chunk_events=1000)
    train = stream_splits(events, WindowPlan(Vocabularies.from_counts(events.counts),
                                             HISTORY))[0]
    for count in (2, 3, 5):  # 3 files: by file for 2 and 3 workers, by chunk for 5
        parts = [set(train.shard_chunks(i, count).tolist()) for i in range(count)]
        assert set().union(*parts) == set(train.shard_chunks().tolist())
        assert sum(len(p) for p in parts) == len(train.shard_chunks())
        assert sum(train.shard_len(i, count) for i in range(count)) == len(train)
    by_file = [{events.chunks[k].source for k in train.shard_chunks(i, 3)} for i in range(3)]
    assert by_file == [{0}, {1}, {2}]
    n = train.shard_len(1, 2)
    assert sum(len(y) for _, y in train.epoch_dataset(50, 0, shard_index=1, shard_count=2)) == n


def test_two_workers_batches_partition_an_epoch(log, shards):
    """Each of 2 workers reads its own shard in batches of its share of the global batch
    (65 = 32 + 33 rows); untruncated, their epochs partition the training windows; with
    ``worker_steps`` both run the same steps, the larger shard's tail dropped."""
    from pitune_tf.common.distribution import worker_batch_size
    from pitune_tf.population.training_loop import training_input, worker_steps

    events = EventStream(shards, chunk_events=1000)
    train = stream_splits(events, WindowPlan(Vocabularies.from_counts(events.counts),
                                             HISTORY))[0]
    sizes = [worker_batch_size(65, w, 2) for w in range(2)]
    assert sizes == [32, 33]
    full = [list(train.epoch_dataset(sizes[w], 4, shard_index=w, shard_count=2))
            for w in range(2)]
    np.testing.assert_array_equal(_rows(full[0] + full[1]), _windows_rows(train.materialize()))
    lens = [train.shard_len(w, 2) for w in range(2)]
    assert [sum(len(y) for _, y in f) for f in full] == lens and lens[0] != lens[1]
    steps = worker_steps(train, 65, 2)
    assert steps == min(math.ceil(lens[w] / sizes[w]) for w in range(2))
    for w in range(2):
        cut = list(train.epoch_dataset(sizes[w], 4, shard_index=w, shard_count=2,
                                       steps_per_epoch=steps))
        assert len(cut) == steps  # the first `steps` batches of the worker's epoch
        assert [y.numpy().tolist() for _, y in cut] == [y.numpy().tolist()
                                                        for _, y in full[w][:steps]]
    with pytest.raises(UserInputError, match="shard of the streamed training windows is empty"):
        worker_steps(train, 65, len(train.shard_chunks()) + 1)
    # one worker: the global batches of the in-memory path's step count
    _, one_steps = training_input(train, 65, 4, 0, 1)
    assert one_steps == math.ceil(len(train) / 65)


def test_predicted_counts_piece_by_piece_equal_the_whole_logits(log):
    """P_out's counts, logits a few rows at a time, in memory and streamed, equal the argmax
    counts of the logits of every training window at once (the previous computation)."""
    from pitune_tf.models import build_student
    from pitune_tf.population import preset
    from pitune_tf.population.evaluation import predict_logits, predicted_counts

    events = EventStream(log, chunk_events=1000)
    vocabs = Vocabularies.from_counts(events.counts)
    train = stream_splits(events, WindowPlan(vocabs, HISTORY), max_train=700, seed=1)[0]
    memory = train.materialize()
    student = build_student(preset("tiny").replace(history=HISTORY, seed=3), vocabs.sizes)
    whole = predict_logits(student, memory, 64)  # [n_train, N_I]
    expected = np.bincount(whole.argmax(axis=1), minlength=vocabs.n_intents)
    assert (expected > 0).sum() >= 2  # more than one intent predicted: a real check
    for windows, rows in ((memory, 128), (memory, 10_000), (train, 128)):
        counts = predicted_counts(student, windows, 64, vocabs.n_intents, rows=rows)
        np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == len(train) == 700


def test_event_stream_rejects_ungrouped_and_non_parquet_logs(log, tmp_path):
    mixed = pd.concat([log.iloc[:100], log.iloc[5000:5100], log.iloc[100:200]])
    write_events(mixed, tmp_path / "mixed.parquet")
    with pytest.raises(DataError, match="not grouped by user"):
        EventStream(tmp_path / "mixed.parquet", chunk_events=50)
    write_events(log.iloc[:100], tmp_path / "events.csv")
    with pytest.raises(UserInputError, match="Parquet"):
        EventStream(tmp_path / "events.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no Parquet shards"):
        EventStream(tmp_path / "empty")


def test_generated_shards_hold_whole_users_in_order(tmp_path):
    from pitune_tf.data.synthetic import generate_shards

    info = generate_shards(tmp_path / "a", "tiny", seed=1, users_per_shard=5)
    again = generate_shards(tmp_path / "b", "tiny", seed=1, users_per_shard=5)
    assert len(info["shards"]) == 4  # 16 users
    frames = [pd.read_parquet(p) for p in info["shards"]]
    users = [f.user_id.unique().tolist() for f in frames]
    flat = [u for part in users for u in part]
    assert flat == sorted(flat) and len(flat) == len(set(flat)) == 16
    pd.testing.assert_frame_equal(frames[2], pd.read_parquet(again["shards"][2]))
    assert (tmp_path / "a" / "individual.parquet").is_file()
    assert (tmp_path / "a" / "individual_oracle.parquet").is_file()
    assert EventStream(tmp_path / "a" / "population").n_users == 16


@pytest.mark.slow
def test_streamed_population_run_matches_the_in_memory_windows(log, shards, tmp_path):
    from pitune_tf.population import preset, run_population

    individual = generate("tiny", seed=0, with_oracle=False).individual
    write_events(individual, tmp_path / "individual.parquet")
    config = preset("tiny").replace(
        data=[str(shards), str(tmp_path / "individual.parquet")], streaming=True,
        stream_chunk_events=1000, max_train_windows=600, batch_size=64)
    streamed = run_population(config, tmp_path / "streamed")
    in_memory = run_population(config.replace(streaming=False), tmp_path / "memory")
    assert streamed["windows"] == in_memory["windows"]
    assert np.isfinite(streamed["teacher"]["test"]["prec_w"])
    assert (tmp_path / "streamed" / "student.keras").is_file()
