"""Left-padded windows gathered from grouped sequences, vectorized (no loop per window)."""

from __future__ import annotations

import numpy as np


def gather_windows(columns: dict, starts, ends, length: int, sequence=None) -> dict:
    """For each end position, the ``length`` values of its sequence just before it.

    The values of all sequences lie one after the other in each column; sequence ``s``
    holds rows ``starts[s] .. starts[s + 1] - 1``. Window ``j`` holds the rows
    ``max(starts[s], ends[j] - length) .. ends[j] - 1`` of the sequence ``s`` that
    ``ends[j]`` falls in (an end may equal its sequence's last row + 1), LEFT-padded with 0,
    so its last position is always the row just before ``ends[j]``. PITuning's history
    windows (Eq. 1) and UAF's pretraining windows are both built with it.

    Each column is laid out in one padded stream in which every sequence is preceded by
    ``length`` zeros, so a window is the ``length`` stream positions before its end; all
    windows are gathered at once as ``length * itemsize``-byte blocks of a strided view.

    Args:
        columns: dict of name -> array [n] (int32 or another fixed-size dtype).
        starts: int array [n_seq + 1]. First row of each sequence, then ``n``.
        ends: int array [m]. Exclusive end row of each window.
        length: int. Window length (>= 1).
        sequence: int array [m] or None. The sequence of each end; by default the sequence
            whose rows (or whose end) ``ends[j]`` reaches, so an end equal to a sequence's
            start closes the sequence before it.

    Returns:
        dict of name -> array [m, length], the columns' dtypes.

    Example:
        >>> gather_windows({"x": np.array([1, 2, 3, 4])}, [0, 3, 4], [2, 3, 4], 2)["x"].tolist()
        [[1, 2], [2, 3], [0, 4]]
    """
    starts = np.asarray(starts, np.int64)
    ends = np.asarray(ends, np.int64)
    n = int(starts[-1])
    n_seq = len(starts) - 1
    if sequence is None:
        sequence = np.clip(np.searchsorted(starts, ends, side="left") - 1, 0, max(n_seq - 1, 0))
    sequence = np.asarray(sequence, np.int64)  # [m]
    rows = np.arange(n, dtype=np.int64)
    row_sequence = np.repeat(np.arange(n_seq, dtype=np.int64), np.diff(starts))  # [n]
    position = rows + length * (row_sequence + 1)  # stream position of each row
    first = ends + length * sequence  # [m]: stream index of each window's oldest slot
    size = n + length * n_seq
    out = {}
    for name, values in columns.items():
        values = np.asarray(values)
        stream = np.zeros(size, dtype=values.dtype)
        stream[position] = values
        block = np.dtype((np.void, length * values.itemsize))
        blocks = np.ndarray(
            shape=(max(size - length + 1, 0),), dtype=block, buffer=stream,
            strides=(values.itemsize,),
        )  # the window starting at each stream position, as one block
        out[name] = blocks[first].view(values.dtype).reshape(len(ends), length)
    return out
