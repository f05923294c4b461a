"""A canonical event log read chunk by chunk, each chunk whole users: the input of the
streamed windows (:class:`~pitune_tf.data.window_stream.WindowStream`).

The log is one Parquet file, a directory of Parquet shards (read in name order), or a
canonical DataFrame already in memory. A user's events must lie together (the files that
``write_events`` and ``python -m pitune_tf.data synth`` write are sorted by user then
time; within a user the rows may be in any order). A user met again after other users is
a :class:`DataError`: the log is not grouped by user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pitune_tf.common.errors import DataError, UserInputError, path_problem
from pitune_tf.data.cells import check_tokens
from pitune_tf.data.io import PARQUET_SUFFIXES, canonicalize, parquet_strings, read_mapping
from pitune_tf.data.vocabularies import value_counts

SCAN_BATCH_ROWS = 65_536  # Parquet rows decoded at a time while scanning


@dataclass(frozen=True)
class Chunk:
    """Rows ``start .. stop - 1`` (0-based data rows) of source ``source``: whole users."""

    source: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


class EventStream:
    """A canonical event log as chunks of whole users of about ``chunk_events`` events.

    Building one scans the log once: every row is checked as :func:`read_events` checks it
    (errors name the file, row and column), the chunks are planned and the values of the
    vocabularies counted (:attr:`counts`). :meth:`read` then gives a chunk's canonical table
    at any time, in any order (Parquet row groups are read on demand: files written with
    small row groups, as ``synth --users-per-shard`` writes them, read fastest).

    Args:
        source: str or Path of a Parquet file or a directory of Parquet shards, or a
            canonical DataFrame (sorted by user then time, e.g. ``read_events``'s).
        mapping: str or Path or None. Event-to-intent mapping for files without ``intent``.
        chunk_events: int. Events per chunk (a chunk ends at a user boundary; a user with
            more events is one chunk).

    Attributes:
        sources: list of Path (empty for a DataFrame).
        chunks: list of :class:`Chunk`, in log order.
        counts: dict of ``event``, ``intent``, ``location`` value counts
            (:func:`~pitune_tf.data.vocabularies.value_counts`).
        n_users: int.

    Example:
        >>> events = EventStream("data/scale/population", chunk_events=250_000)
        >>> vocabs = Vocabularies.from_counts(events.counts)
        >>> first = events.read(0)  # canonical DataFrame of the first users
    """

    def __init__(self, source, mapping=None, chunk_events: int = 250_000):
        if int(chunk_events) < 1:
            raise UserInputError(f"chunk_events must be >= 1, got {chunk_events}")
        self.chunk_events = int(chunk_events)
        self.mapping_path = mapping
        self._mapping = None
        self._frame = None
        self.sources = []
        if isinstance(source, pd.DataFrame):
            self._frame = source.reset_index(drop=True)
        else:
            self.sources = _parquet_files(Path(source))
            if mapping is not None:
                self._mapping = read_mapping(mapping)
        self.chunks: list[Chunk] = []
        self.counts = None
        self.n_users = 0
        self._scan()

    def __len__(self) -> int:
        """The number of events."""
        return sum(len(c) for c in self.chunks)

    @property
    def n_sources(self) -> int:
        return max(len(self.sources), 1)

    # ------------------------------------------------------------------ reading

    def read(self, index: int) -> pd.DataFrame:
        """The canonical event table of chunk ``index`` (whole users, sorted by user, time)."""
        chunk = self.chunks[index]
        if self._frame is not None:
            return self._frame.iloc[chunk.start:chunk.stop]
        return self._canonical(self._read_rows(chunk.source, chunk.start, chunk.stop),
                               chunk.source)

    def __iter__(self):
        """The chunks' canonical tables in log order."""
        return (self.read(k) for k in range(len(self.chunks)))

    def _read_rows(self, source, start, stop) -> pd.DataFrame:
        handle = pq.ParquetFile(self.sources[source])
        sizes = [handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)]
        ends = np.cumsum(sizes)
        first = int(np.searchsorted(ends, start, side="right"))
        last = int(np.searchsorted(ends, stop - 1, side="right"))
        offset = int(ends[first] - sizes[first])
        table = handle.read_row_groups(list(range(first, last + 1)), columns=self._columns(handle))
        table = table.slice(start - offset, stop - start)
        frame = parquet_strings(table.to_pandas())
        frame.index = pd.RangeIndex(start, stop)  # data row - 1, for errors
        return frame

    def _columns(self, handle):
        names = handle.schema_arrow.names
        wanted = ("user_id", "timestamp", "event", "intent", "location")
        return [c for c in wanted if c in names]

    def _canonical(self, frame, source) -> pd.DataFrame:
        path = self.sources[source]
        mapping = self._mapping if "intent" not in frame.columns else None
        return canonicalize(frame, path, mapping, self.mapping_path)

    # ------------------------------------------------------------------ the scan

    def _scan(self):
        seen = set()
        counts = None
        for source, start, stop, frame in self._raw_chunks():
            users = frame["user_id"]
            codes, uniques = pd.factorize(users, sort=False)
            runs = 1 + int(np.count_nonzero(codes[1:] != codes[:-1])) if len(codes) else 0
            again = seen.intersection(uniques) if runs == len(uniques) else {"?"}
            if runs != len(uniques) or again:
                path = self.sources[source] if self.sources else None
                raise DataError("not grouped by user: a user's events must lie together "
                                "(sort the log by user_id, timestamp)", path, column="user_id")
            seen.update(uniques)
            table = frame if self._frame is not None else self._canonical(frame, source)
            counts = value_counts(table, counts)
            self.chunks.append(Chunk(source, start, stop))
        if not self.chunks:
            raise DataError("no events", self.sources[0] if self.sources else None)
        self.counts = counts
        self.n_users = len(seen)

    def _raw_chunks(self):
        """``(source, start, stop, raw table)`` of each chunk: whole users, in order."""
        if self._frame is not None:
            yield from _cut(self._frame, 0, 0, self.chunk_events)
            return
        for source, path in enumerate(self.sources):
            pending, row = [], 0
            for batch in _batches(path):
                frame = parquet_strings(batch)
                frame.index = pd.RangeIndex(row, row + len(frame))
                frame["user_id"] = check_tokens(frame["user_id"], path, "user_id")
                row += len(frame)
                pending.append(frame)
                if sum(len(p) for p in pending) >= self.chunk_events:
                    whole, rest = _split_last_user(pd.concat(pending))
                    if len(whole):
                        yield from _cut(whole, source, int(whole.index[0]), self.chunk_events)
                        pending = [rest]
            if pending and sum(len(p) for p in pending):
                tail = pd.concat(pending)
                yield from _cut(tail, source, int(tail.index[0]), self.chunk_events)


def _parquet_files(path: Path) -> list:
    problem = path_problem(path)
    if problem is not None:  # missing, a link loop, a name too long...
        raise DataError(problem, path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in PARQUET_SUFFIXES)
        if not files:
            raise DataError("directory holds no Parquet shards (*.parquet)", path)
        return files
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        raise UserInputError(
            f"{path}: streamed data is read from Parquet (convert it with "
            "python -m pitune_tf.data convert --format canonical FILE --out FILE.parquet)")
    return [path]


def _batches(path: Path):
    try:
        handle = pq.ParquetFile(path)
        names = handle.schema_arrow.names
        for column in ("user_id", "timestamp", "event"):
            if column not in names:
                raise DataError(f"missing column (found: {', '.join(names)})", path, row=0,
                                column=column)
        columns = [c for c in ("user_id", "timestamp", "event", "intent", "location")
                   if c in names]
        for batch in handle.iter_batches(batch_size=SCAN_BATCH_ROWS, columns=columns):
            yield batch.to_pandas()
    except DataError:
        raise
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise DataError(f"not a readable Parquet file ({err})", path) from None


def _split_last_user(frame):
    """``(rows before the last user's run, the last run)``: the last user may go on."""
    users = frame["user_id"].to_numpy()
    change = np.flatnonzero(users[1:] != users[:-1])
    cut = int(change[-1]) + 1 if len(change) else 0
    return frame.iloc[:cut], frame.iloc[cut:]


def _cut(frame, source, start, chunk_events):
    """Cuts a table of whole users into chunks of about ``chunk_events`` rows at user
    boundaries; yields ``(source, start, stop, rows)``."""
    users = frame["user_id"].to_numpy()
    bounds = np.concatenate([[0], np.flatnonzero(users[1:] != users[:-1]) + 1, [len(users)]])
    begin = 0
    while begin < len(users):
        # the last user boundary at or below begin + chunk_events, but at least one user
        at = int(np.searchsorted(bounds, begin + chunk_events, side="right")) - 1
        end = int(bounds[at])
        if end <= begin:
            end = int(bounds[np.searchsorted(bounds, begin, side="right")])
        yield source, start + begin, start + end, frame.iloc[begin:end]
        begin = end
