"""Windows of a streamed log (PITuning Eq. 1) as a ``tf.data`` pipeline, never all in memory.

Each chunk of whole users of an :class:`~pitune_tf.data.event_stream.EventStream` is
encoded, windowed and split with the in-memory code (``encode_events``,
:func:`~pitune_tf.data.windows.make_windows`, :func:`~pitune_tf.data.splits.split_windows`):
windows and splits are per user, so a chunk's windows are exactly the rows the whole log
would give for its users, and the chunks' rows one after the other are the in-memory rows
in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import tf
from pitune_tf.data.features import encode_events
from pitune_tf.data.splits import split_windows
from pitune_tf.data.windows import FEATURE_KEYS, Windows, make_windows

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class WindowPlan:
    """How to build a log's windows chunk by chunk: ``make_windows`` and ``split_windows``
    options."""

    vocabs: object
    history: int = 30
    min_history: int = 1
    fractions: tuple = (0.6, 0.1, 0.3)

    def chunk_splits(self, table) -> tuple:
        """``(train, val, test)`` :class:`Windows` of one chunk's canonical table, and its
        encoded events."""
        encoded = encode_events(table, self.vocabs)
        windows = make_windows(encoded, self.history, self.min_history)
        return split_windows(windows, fractions=self.fractions), encoded


class WindowStream:
    """One split's windows of an :class:`EventStream`, built chunk by chunk on demand.

    Rows are in log order (the order of the in-memory split). With ``max_windows``, a
    seeded subset of that many rows is kept: the rows ``Windows.subsample(max_windows,
    seed)`` would keep of the in-memory split. Only the labels stay in memory
    (:attr:`label`, 4 bytes a row); a chunk's windows are built when they are read.

    Made by :func:`stream_splits`, which counts every split's rows in one pass.

    Args:
        events: EventStream.
        plan: WindowPlan.
        part: int. 0 = train, 1 = validation, 2 = test.
        counts: int array [n_chunks]. The split's rows in each chunk.
        label: np.int32 [n]. The split's labels in log order (all rows).
        max_windows: int. Keep at most this many rows (0 = all).
        seed: int. Seed of the subset.
        group_chunks: int. Chunks whose rows are shuffled together in an epoch.

    Example:
        >>> train, val, test, _ = stream_splits(events, WindowPlan(vocabs, history=30))
        >>> for features, labels in train.epoch_dataset(batch_size=128, seed=0):
        ...     features["event"].shape  # [128, 30]
    """

    def __init__(self, events, plan, part, counts, label, max_windows=0, seed=0,
                 group_chunks=2):
        if group_chunks < 1:
            raise UserInputError(f"group_chunks must be >= 1, got {group_chunks}")
        self.events = events
        self.plan = plan
        self.part = int(part)
        self.group_chunks = int(group_chunks)
        counts = np.asarray(counts, np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])  # [n_chunks + 1]
        n = int(offsets[-1])
        self._rows = None  # chunk -> selected local rows (None: every row)
        if max_windows and n > max_windows:
            chosen = np.sort(np.random.default_rng(seed).choice(n, int(max_windows),
                                                                 replace=False))
            cuts = np.searchsorted(chosen, offsets)
            self._rows = [chosen[cuts[k]:cuts[k + 1]] - offsets[k] for k in range(len(counts))]
            counts = np.diff(cuts)
            label = np.asarray(label)[chosen]
        self.counts = counts  # [n_chunks] rows kept per chunk
        self.label = np.asarray(label, np.int32)

    def __len__(self) -> int:
        return len(self.label)

    @property
    def history(self) -> int:
        return self.plan.history

    def chunk_windows(self, index: int) -> Windows:
        """The kept rows of chunk ``index`` (built now)."""
        windows = self.plan.chunk_splits(self.events.read(index))[0][self.part]
        return windows if self._rows is None else windows.take(self._rows[index])

    def take_rows(self, index: int, windows: Windows) -> Windows:
        """The kept rows of chunk ``index``'s split windows ``windows``."""
        return windows if self._rows is None else windows.take(self._rows[index])

    def materialize(self) -> Windows:
        """Every kept row in memory, in order (for small splits: validation, test)."""
        return collect([self])[0]

    # ------------------------------------------------------------------ sharding

    def shard_chunks(self, shard_index: int = 0, shard_count: int = 1) -> np.ndarray:
        """The chunks worker ``shard_index`` of ``shard_count`` reads: by file when the log
        has at least as many files as workers (each worker opens its own files only),
        else every ``shard_count``-th chunk. Chunks without rows are left out."""
        if not 0 <= shard_index < shard_count:
            raise UserInputError(f"shard {shard_index} of {shard_count}: need 0 <= I < N")
        ids = np.arange(len(self.counts))
        if shard_count > 1:
            sources = np.array([c.source for c in self.events.chunks])
            key = sources if self.events.n_sources >= shard_count else ids
            ids = ids[key % shard_count == shard_index]
        return ids[self.counts[ids] > 0]

    def shard_len(self, shard_index: int = 0, shard_count: int = 1) -> int:
        """Rows of one worker's shard (its steps per epoch: ``ceil(shard_len / batch)``)."""
        return int(self.counts[self.shard_chunks(shard_index, shard_count)].sum())

    def epoch_groups(self, seed, epoch, shard_index=0, shard_count=1) -> list:
        """Epoch ``epoch``'s chunk groups: the shard's chunks in the order of
        ``default_rng([seed, epoch])``, ``group_chunks`` at a time."""
        ids = self.shard_chunks(shard_index, shard_count)
        ids = ids[np.random.default_rng([seed, epoch]).permutation(len(ids))]
        return [ids[i:i + self.group_chunks] for i in range(0, len(ids), self.group_chunks)]

    # ------------------------------------------------------------------ tf.data

    def group_arrays(self, chunks, shuffle_seed=None) -> list:
        """The model inputs and labels of ``chunks``' rows, one after the other, permuted by
        ``default_rng(shuffle_seed)`` when given: ``[location, weekday, slot, event, mask,
        label]`` arrays ``[m, L]`` (label ``[m]``)."""
        n = int(self.counts[np.asarray(chunks, np.int64)].sum())
        # each chunk's rows are written straight to their permuted places: one copy
        place = (np.random.default_rng(shuffle_seed).permutation(n) if shuffle_seed is not None
                 else np.arange(n))
        out = {key: np.empty((n, self.history), np.float32 if key == "mask" else np.int32)
               for key in FEATURE_KEYS}
        out["label"] = np.empty(n, np.int32)
        begin = 0
        for k in chunks:
            windows = self.chunk_windows(int(k))
            rows = place[begin:begin + len(windows)]
            for key, array in out.items():
                array[rows] = getattr(windows, key)
            begin += len(windows)
            del windows
        return [out[key] for key in FEATURE_KEYS] + [out["label"]]

    def _dataset(self, n_groups, load, batch_size, epoch=None):
        """Batches of ``batch_size`` rows over ``n_groups`` groups, one group in flight:
        group ``g``'s arrays (:meth:`group_arrays`) are ``load(g)``, or ``load(epoch, g)``
        with ``epoch`` (an int64 scalar of the input pipeline)."""
        dtypes = [tf.int32] * 4 + [tf.float32, tf.int32]
        length = self.history

        def to_features(g):
            inputs = [g] if epoch is None else [epoch, g]
            arrays = tf.numpy_function(load, inputs, dtypes, stateful=False)
            for array in arrays[:-1]:
                array.set_shape([None, length])
            arrays[-1].set_shape([None])
            return dict(zip(FEATURE_KEYS, arrays[:-1], strict=True)), arrays[-1]

        ds = tf.data.Dataset.range(n_groups)
        # one group at a time: a group is built ~100x faster than a demo teacher trains on
        # it (bench/population_scale.py), and each group in flight holds its windows
        ds = ds.map(to_features)
        return ds.rebatch(batch_size)

    def epoch_dataset(self, batch_size, seed, first_epoch=0, epochs=1, shard_index=0,
                      shard_count=1, steps_per_epoch=None):
        """Training batches of epochs ``first_epoch .. epochs - 1`` back to back.

        Epoch e reads the shard's chunk groups in :meth:`epoch_groups` order and permutes
        each group's rows by ``default_rng([seed, e, group])``: deterministic for a seed,
        and a resumed run sees the batches an uninterrupted run would have seen. Each
        epoch's order is made when the epoch starts (nothing is built ahead for the later
        epochs: ``--epochs 1000000`` starts at once). Batches run across groups; only an
        epoch's last batch is short (``ceil(shard_len / batch_size)`` batches an epoch).
        Elements: ``(features dict, labels)``.

        The pipeline shards itself (``shard_index`` of ``shard_count``, e.g. a
        ``tf.distribute.InputContext``'s ``input_pipeline_id`` of
        ``num_input_pipelines``); tf.distribute's auto-sharding is turned off. With
        ``steps_per_epoch``, each epoch keeps its first that many batches (workers whose
        shards differ in size then run the same steps: the rows after them in the epoch's
        order are not seen that epoch).
        """
        if batch_size < 1:
            raise UserInputError(f"batch_size must be >= 1, got {batch_size}")
        if first_epoch >= epochs:
            raise UserInputError(f"no epochs to run ({first_epoch} .. {epochs - 1})")
        n_groups = len(self.epoch_groups(seed, first_epoch, shard_index, shard_count))

        def load(epoch, g):  # group g of epoch `epoch`, its rows permuted
            groups = self.epoch_groups(seed, int(epoch), shard_index, shard_count)
            return self.group_arrays(groups[int(g)], [seed, int(epoch), int(g)])

        def epoch_part(epoch):
            part = self._dataset(n_groups, load, batch_size, epoch)
            return part if steps_per_epoch is None else part.take(steps_per_epoch)

        ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_part)
        return _unsharded(ds.prefetch(tf.data.AUTOTUNE))

    def to_dataset(self, batch_size, shuffle=False, seed=0, drop_remainder=False):
        """The rows in order (``shuffle``: epoch 0 of :meth:`epoch_dataset`), in batches of
        ``batch_size``: :meth:`Windows.to_dataset`'s interface (prediction)."""
        if shuffle:
            return self.epoch_dataset(batch_size, seed)
        chunks = self.shard_chunks()
        ds = self._dataset(len(chunks), lambda g: self.group_arrays([chunks[int(g)]]),
                           batch_size)
        if drop_remainder:
            ds = ds.rebatch(batch_size, drop_remainder=True)
        return _unsharded(ds.prefetch(tf.data.AUTOTUNE))


def _unsharded(ds):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


def collect(streams) -> list:
    """Each stream's kept rows in memory (:class:`Windows`), in one pass over the chunks."""
    parts = [[] for _ in streams]
    n_chunks = len(streams[0].counts)
    for k in range(n_chunks):
        if not any(s.counts[k] for s in streams):
            continue
        splits, _ = streams[0].plan.chunk_splits(streams[0].events.read(k))
        for i, stream in enumerate(streams):
            if stream.counts[k]:
                parts[i].append(stream.take_rows(k, splits[stream.part]))
    empty = make_windows_empty(streams[0].history)
    return [Windows.concatenate(p) if p else empty for p in parts]


def make_windows_empty(history: int) -> Windows:
    """A :class:`Windows` of no rows."""
    ids = np.zeros((0, history), np.int32)
    return Windows(location=ids, weekday=ids, slot=ids, event=ids,
                   mask=np.zeros((0, history), np.float32), label=np.zeros(0, np.int32),
                   user=np.zeros(0, str), timestamp=np.zeros(0, np.int64))


def stream_splits(events, plan: WindowPlan, max_train=0, max_eval=0, seed=0, group_chunks=2):
    """The train / validation / test windows of a streamed log, in one counting pass.

    Returns ``(train, val, test, pair_counts)``: ``train`` a :class:`WindowStream` (at
    most ``max_train`` rows, 0 = all), ``val`` and ``test`` in memory as :class:`Windows`
    (each at most ``max_eval`` rows, 0 = all: a second pass over the chunks), and
    ``pair_counts`` int64 ``[n_event_ids, n_intent_ids]``, how often each event id has each
    intent id in the log.
    """
    vocabs = plan.vocabs
    counts = np.zeros((len(events.chunks), 3), np.int64)
    labels = [[], [], []]
    pair_counts = np.zeros((len(vocabs.event), vocabs.n_intents), np.int64)
    for k in range(len(events.chunks)):
        splits, encoded = plan.chunk_splits(events.read(k))
        for i, windows in enumerate(splits):
            counts[k, i] = len(windows)
            labels[i].append(windows.label)
        np.add.at(pair_counts, (encoded.event, encoded.intent), 1)
    streams = [
        WindowStream(events, plan, i, counts[:, i], np.concatenate(labels[i]),
                     max_windows=max_train if i == 0 else max_eval, seed=seed,
                     group_chunks=group_chunks)
        for i in range(3)
    ]
    val, test = collect(streams[1:])
    return streams[0], val, test, pair_counts
