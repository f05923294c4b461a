"""Vectorized construction of history windows (PITuning Eq. 1)."""

from __future__ import annotations

import numpy as np

from pitune_tf.data.encoded_events import EncodedEvents
from pitune_tf.data.windows import Windows
from pitune_tf.errors import UserInputError

_STREAM_FIELDS = ("location", "weekday", "slot", "event")


def make_windows(encoded: EncodedEvents, history: int = 30, min_history: int = 1) -> Windows:
    """Builds one window per event that has at least ``min_history`` earlier events.

    The window of event ``t`` of a user holds that user's previous ``history`` (``L``)
    events' location, weekday, slot and event ids, left-padded with 0 (PITuning Eq. 1:
    ``x_t = [(l, w, s, e)_{t-L}, ..., (l, w, s, e)_{t-1}]``), and its label is the intent of
    event ``t``. History uses all earlier events of the user, across days.

    No Python loop per user or window: each feature is laid out in one padded stream in
    which every user's events are preceded by ``L`` zeros, so a window is the ``L``
    stream positions before its event; all windows are gathered at once as ``L * 4``-byte
    blocks of a strided view of that stream.

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
    # Padded stream: user u's events at positions i + L * (u + 1), after L zeros.
    position = np.arange(n, dtype=np.int64) + history * (user_index + 1)  # [n]
    first = position[kept] - history  # [m], stream index of each window's oldest slot
    size = n + history * n_users
    block = np.dtype((np.void, history * 4))
    arrays = {}
    for name in _STREAM_FIELDS:
        stream = np.zeros(size, dtype=np.int32)  # [n + L * n_users]
        stream[position] = getattr(encoded, name)
        blocks = np.ndarray(
            shape=(max(size - history + 1, 0),), dtype=block, buffer=stream, strides=(4,)
        )  # window starting at each stream position, as one L * 4-byte value
        arrays[name] = blocks[first].view(np.int32).reshape(len(kept), history)  # [m, L]
    mask = np.empty((len(kept), history), dtype=np.float32)  # [m, L]
    np.not_equal(arrays["event"], 0, out=mask, casting="unsafe")  # real event ids are >= 1
    return Windows(
        location=arrays["location"],
        weekday=arrays["weekday"],
        slot=arrays["slot"],
        event=arrays["event"],
        mask=mask,
        label=np.asarray(encoded.intent[kept], dtype=np.int32),
        user=encoded.user[kept],
        timestamp=np.asarray(encoded.timestamp[kept], dtype=np.int64),
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
