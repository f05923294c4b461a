"""Model inputs: one history window per predicted event (PITuning Eq. 1), the one schema of
feature names, and their vectorized construction (at once or streamed by groups of users)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.windowing import gather_windows
from pitune_tf.data.encoded_events import EncodedEvents

# the id features of one event (PITuning Eq. 1)
STREAM_KEYS = ("location", "weekday", "slot", "event")
FEATURE_KEYS = STREAM_KEYS + ("mask",)  # the model inputs of one window, in this order


@dataclass
class Windows:
    """History windows and next-intent labels, one row per predicted event (PITuning Eq. 1).

    Row ``i`` holds the ``L`` events of a user before the predicted event, oldest first and
    LEFT-padded: position ``L - 1`` is always the most recent history event, and padding
    (id 0, mask 0) fills the start of short histories. Rows are ordered by user, then time.

    Args:
        location: np.int32 [n, L]. Location ids ``l`` of the history events.
        weekday: np.int32 [n, L]. Weekday ids (Mon = 1 ... Sun = 7).
        slot: np.int32 [n, L]. Time-slot ids.
        event: np.int32 [n, L]. Event ids ``e``.
        mask: np.float32 [n, L]. 1 for a real event, 0 for padding.
        label: np.int32 [n]. Intent id of the predicted (next) event.
        user: np.ndarray of str [n]. User of the row.
        timestamp: np.int64 [n]. Unix seconds (naive local time) of the predicted event.

    Example:
        >>> windows = make_windows(encode_events(df, vocabs), history=30)
        >>> features, label = next(iter(windows.to_dataset(batch_size=2)))
        >>> features["event"].shape
        TensorShape([2, 30])
    """

    location: np.ndarray
    weekday: np.ndarray
    slot: np.ndarray
    event: np.ndarray
    mask: np.ndarray
    label: np.ndarray
    user: np.ndarray
    timestamp: np.ndarray

    def __len__(self) -> int:
        return len(self.label)

    @property
    def history(self) -> int:
        """The window length ``L``."""
        return self.event.shape[1]

    def features(self) -> dict[str, np.ndarray]:
        """The model inputs: ``location, weekday, slot, event, mask`` arrays [n, L]."""
        return {key: getattr(self, key) for key in FEATURE_KEYS}

    def take(self, index) -> Windows:
        """The rows at ``index`` (index array, boolean mask or slice)."""
        return Windows(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def subsample(self, max_windows, seed=0) -> Windows:
        """At most ``max_windows`` rows: a seeded random subset kept in order (0 = all)."""
        if not max_windows or len(self) <= max_windows:
            return self
        rng = np.random.default_rng(seed)
        return self.take(np.sort(rng.choice(len(self), int(max_windows), replace=False)))

    @classmethod
    def concatenate(cls, parts) -> Windows:
        """Rows of several :class:`Windows` one after the other."""
        parts = list(parts)
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )

    def to_dataset(
        self, batch_size: int, shuffle: bool = False, seed: int = 0, drop_remainder: bool = False
    ):
        """A ``tf.data.Dataset`` of ``(features_dict, label)`` batches.

        Shuffling permutes row indices (reshuffled each epoch, deterministic for ``seed``)
        and gathers whole batches, so it holds no second copy of the windows.

        Args:
            batch_size: int. Rows per batch.
            shuffle: bool. Shuffle the rows each epoch.
            seed: int. Shuffle seed.
            drop_remainder: bool. Drop the last, smaller batch (static batch size).
        """
        from pitune_tf.common.keras import tf  # deferred: TensorFlow loads here (fast --help)

        if batch_size < 1:
            raise UserInputError(f"batch_size must be >= 1, got {batch_size}")
        features = self.features()
        if not shuffle:
            ds = tf.data.Dataset.from_tensor_slices((features, self.label))
            return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
        tensors = {k: tf.convert_to_tensor(v) for k, v in features.items()}
        labels = tf.convert_to_tensor(self.label)

        def gather(index):
            return {k: tf.gather(v, index) for k, v in tensors.items()}, tf.gather(labels, index)

        ds = tf.data.Dataset.from_tensor_slices(np.arange(len(self), dtype=np.int64))
        ds = ds.shuffle(max(len(self), 1), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def make_windows(encoded: EncodedEvents, history: int = 30, min_history: int = 1) -> Windows:
    """Builds one window per event that has at least ``min_history`` earlier events.

    The window of event ``t`` of a user holds that user's previous ``history`` (``L``)
    events' location, weekday, slot and event ids, left-padded with 0 (PITuning Eq. 1:
    ``x_t = [(l, w, s, e)_{t-L}, ..., (l, w, s, e)_{t-1}]``), and its label is the intent of
    event ``t``. History uses all earlier events of the user, across days.

    No Python loop per user or window (:func:`pitune_tf.common.windowing.gather_windows`).

    Args:
        encoded: :class:`EncodedEvents`, sorted by user then time.
        history: int. Window length ``L`` (default 30).
        min_history: int. Keep a window only when its user has at least this many earlier
            events (1 <= min_history <= history).
    """
    history, min_history = int(history), int(min_history)
    if history < 1:
        raise UserInputError(f"history must be >= 1, got {history}")
    if not 1 <= min_history <= history:
        raise UserInputError(f"min_history must be in [1, history={history}], got {min_history}")
    n = len(encoded)
    starts = encoded.user_starts()  # [n_users + 1]
    n_users = len(starts) - 1
    lengths = np.diff(starts)
    user_index = np.repeat(np.arange(n_users, dtype=np.int64), lengths)  # [n]
    rank = np.arange(n, dtype=np.int64) - starts[:-1][user_index]  # events before, same user
    kept = np.flatnonzero(rank >= min_history)  # [m]
    return _gather(encoded, starts, kept, user_index[kept], history,
                   label=np.asarray(encoded.intent[kept], dtype=np.int32),
                   user=encoded.user[kept],
                   timestamp=np.asarray(encoded.timestamp[kept], dtype=np.int64))


def make_next_windows(encoded: EncodedEvents, history: int = 30) -> Windows:
    """Builds one window per user: the history for predicting the user's NEXT, not yet seen
    event (what a phone asks at inference).

    The window holds the user's last ``history`` (``L``) events, left-padded, so position
    ``L - 1`` is the newest event; it equals the window :func:`make_windows` would build for
    an event appended after the user's newest one (PITuning Eq. 1 with ``t`` = the next
    event). Rows follow the users' order in ``encoded``.

    Args:
        encoded: :class:`EncodedEvents`, sorted by user then time.
        history: int. Window length ``L`` (default 30).

    Returns:
        :class:`Windows` with one row per user; ``label`` is 0 (the padding id: the next
        intent is unknown) and ``timestamp`` the user's newest event's unix seconds.
    """
    history = int(history)
    if history < 1:
        raise UserInputError(f"history must be >= 1, got {history}")
    starts = encoded.user_starts()  # [n_users + 1]
    n_users = len(starts) - 1
    ends = starts[1:]  # [n_users]: one past each user's newest event
    return _gather(encoded, starts, ends, np.arange(n_users, dtype=np.int64), history,
                   label=np.zeros(n_users, dtype=np.int32),
                   user=encoded.user[ends - 1],
                   timestamp=np.asarray(encoded.timestamp[ends - 1], dtype=np.int64))


def make_running_windows(encoded: EncodedEvents, history: int = 30) -> Windows:
    """The window after each event: row ``i`` holds the user's last ``history`` events up to
    and including event ``i`` (left-padded), the window a phone reads to predict the event
    after it. A user's last row equals :func:`make_next_windows`'s row.

    Returns:
        :class:`Windows` with one row per event, in ``encoded``'s order; ``label`` 0 and
        ``timestamp`` the event's unix seconds.
    """
    starts = encoded.user_starts()
    n = len(encoded)
    sequence = np.repeat(np.arange(len(starts) - 1, dtype=np.int64), np.diff(starts))
    return _gather(encoded, starts, np.arange(1, n + 1, dtype=np.int64), sequence, int(history),
                   label=np.zeros(n, dtype=np.int32), user=encoded.user,
                   timestamp=np.asarray(encoded.timestamp, dtype=np.int64))


def _gather(encoded, starts, ends, sequence, history, label, user, timestamp) -> Windows:
    """The windows ending before rows ``ends`` of users ``sequence`` (``gather_windows``),
    with their mask (1 where the event id is real) and the given row fields."""
    arrays = gather_windows({name: getattr(encoded, name) for name in STREAM_KEYS}, starts,
                            ends, history, sequence=sequence)  # each [m, L]
    mask = np.empty((len(ends), history), dtype=np.float32)  # [m, L]
    np.not_equal(arrays["event"], 0, out=mask, casting="unsafe")  # real event ids are >= 1
    return Windows(
        location=arrays["location"],
        weekday=arrays["weekday"],
        slot=arrays["slot"],
        event=arrays["event"],
        mask=mask,
        label=label,
        user=user,
        timestamp=timestamp,
    )


def iter_windows(
    encoded: EncodedEvents, history: int = 30, min_history: int = 1, max_events: int = 250_000
):
    """Yields :class:`Windows` for consecutive groups of whole users of about ``max_events``.

    The same rows as :func:`make_windows`, in the same order, with bounded memory: the
    windows of 10M events take ``n * L * 20`` bytes (6 GB for ``L = 30``) when built at once.
    The default keeps each array of a group under 32 MiB (250k * 30 * 4 bytes), glibc's
    largest mmap threshold, so freed groups' memory is reused instead of page-faulted in
    again, which is most of the cost of building windows.
    """
    if max_events < 1:
        raise UserInputError(f"max_events must be >= 1, got {max_events}")
    starts = encoded.user_starts()
    begin = 0
    while begin < len(encoded):
        # the last user start at or below begin + max_events, but at least one user
        cut = int(starts[np.searchsorted(starts, begin + max_events, side="right") - 1])
        if cut <= begin:
            cut = int(starts[np.searchsorted(starts, begin, side="right")])
        yield make_windows(encoded.take(slice(begin, cut)), history, min_history)
        begin = cut
