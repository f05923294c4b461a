"""Model inputs: one history window per predicted event (PITuning Eq. 1)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

FEATURE_KEYS = ("location", "weekday", "slot", "event", "mask")


@dataclass
class Windows:
    """History windows and next-intent labels, one row per predicted event (Eq. 1).

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
        from pitune_tf.keras import tf

        if batch_size < 1:
            from pitune_tf.errors import UserInputError

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
