"""One individual user's data, ready for per-user tuning: chronological train / val / test
windows (PITuning Eq. 1) and the user's event times and intents (for Appendix E's T0/T1);
the users of an individual log read with a population run's schema (:func:`load_users`)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from pitune_tf.common.console import progress_bars
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.vocabulary import UNK_ID
from pitune_tf.data import encode_events, make_windows, read_events, split_windows
from pitune_tf.data.features import day_index
from pitune_tf.data.schema import ReadStats

logger = logging.getLogger(__name__)

SKIP_REASONS = ("too_few_events", "no_train_windows", "no_test_windows")


@dataclasses.dataclass
class UserData:
    """One user's windows and events (numpy only, so it pickles cheaply to workers).

    ``*_event_index`` gives, for each window, the index in ``event_timestamp`` /
    ``event_intent`` of the event it predicts.
    """

    user: str
    train: object  # pitune_tf.data.Windows
    val: object
    test: object
    event_timestamp: np.ndarray  # int64 [n_events], seconds
    event_intent: np.ndarray  # int32 [n_events]
    train_event_index: np.ndarray  # int [n_train]
    val_event_index: np.ndarray
    test_event_index: np.ndarray


def prepare_users(df, vocabs, history, slot_minutes, fractions=(0.6, 0.1, 0.3), days=None,
                  min_history=1, progress=False, train_days=None):
    """Encodes an individual event table with the population's vocabularies and cuts it into
    per-user chronological splits.

    Args:
        df: canonical event DataFrame (``pitune_tf.data.read_events``).
        vocabs: the run's ``Vocabularies`` (unseen events / intents / locations -> UNK).
        history: int. L, the window length of the run.
        slot_minutes: int. The run's time-slot width.
        fractions: (train, val, test) shares of each user's windows, in time order.
        days: (train, val, test) days per user instead (the paper's Honor split), or None.
        train_days: int or None. With ``days``: keep only the training windows of the last
            ``train_days`` training days (Fig. 9's data-size study: fewer training days, the
            same validation and test days).
        min_history: int. A window needs this many history events; users with fewer
            events are skipped.

    Returns:
        (users, stats): list of :class:`UserData` (users with at least one train and one test
        window, sorted by id) and a dict with the number of users skipped for each of
        ``SKIP_REASONS``, ``skipped_users`` (id -> reason), the ``unknown`` counts of
        values mapped to UNK per field, and ``unknown_label_windows`` (windows whose next
        intent is unknown to the population: dropped, as no model can predict them).
    """
    before = {name: getattr(vocabs, name).unknown_count for name in ("event", "intent", "location")}
    encoded = encode_events(df, vocabs, slot_minutes=slot_minutes)
    unknown = {
        name: int(getattr(vocabs, name).unknown_count - before[name])
        for name in ("event", "intent", "location")
    }
    windows = make_windows(encoded, history=history, min_history=min_history)
    event_users = np.asarray(encoded.user).astype(str)
    window_users = np.asarray(windows.user).astype(str)
    ids, starts = np.unique(event_users, return_index=True)
    order = np.argsort(starts)
    ids, starts = ids[order], starts[order]
    ends = np.append(starts[1:], len(event_users))
    stats = {reason: 0 for reason in SKIP_REASONS}
    stats["unknown_label_windows"] = 0
    skipped = {}
    users = []
    window_sort = np.argsort(window_users, kind="stable")
    sorted_window_users = window_users[window_sort]
    for user, start, end in tqdm(zip(ids, starts, ends), total=len(ids), desc="users",
                                 disable=not progress_bars(not progress)):
        n_events = end - start
        lo = np.searchsorted(sorted_window_users, user, side="left")
        hi = np.searchsorted(sorted_window_users, user, side="right")
        index = np.sort(window_sort[lo:hi])
        if n_events <= min_history or index.size == 0:
            stats["too_few_events"] += 1
            skipped[str(user)] = "too_few_events"
            continue
        user_windows = windows.take(index)
        unknown_label = np.asarray(user_windows.label) == UNK_ID
        timestamps = np.asarray(encoded.timestamp[start:end], dtype=np.int64)
        intents = np.asarray(encoded.intent[start:end], dtype=np.int32)
        first = _first_predicted_event(user, timestamps, user_windows)
        # Split with each row's position in place of its label, to know where rows went.
        marked = dataclasses.replace(user_windows, label=np.arange(len(user_windows), dtype=np.int32))
        parts = split_windows(marked, fractions=tuple(fractions)) if days is None else \
            split_windows(marked, days=tuple(days))
        positions = [np.asarray(p.label, np.int64) for p in parts]
        if train_days is not None and days is not None:
            day = day_index(np.asarray(user_windows.timestamp, np.int64))
            since = day - day.min()  # the days of split_windows: from the first window's day
            positions[0] = positions[0][since[positions[0]] >= int(days[0]) - int(train_days)]
        # Windows whose next intent is outside the population's intents cannot be scored
        # (the models have no logit for them): they are dropped and counted.
        positions = [p[~unknown_label[p]] for p in positions]
        stats["unknown_label_windows"] += int(unknown_label.sum())
        train, val, test = (user_windows.take(p) for p in positions)
        reason = "no_train_windows" if len(train) == 0 else "no_test_windows" if len(test) == 0 else None
        if reason:
            stats[reason] += 1
            skipped[str(user)] = reason
            continue
        event_index = [first + p for p in positions]
        users.append(UserData(
            user=str(user), train=train, val=val, test=test,
            event_timestamp=timestamps, event_intent=intents,
            train_event_index=event_index[0],
            val_event_index=event_index[1],
            test_event_index=event_index[2],
        ))
    users.sort(key=lambda u: u.user)
    stats["skipped_users"] = skipped
    stats["unknown"] = unknown
    if any(unknown.values()):
        logger.warning("values outside the population's vocabularies mapped to <unk>: %s", unknown)
    return users, stats


def validation_holdout(user: UserData) -> UserData | None:
    """``user`` with the test windows left out, for choosing settings without test rows
    (``IndividualConfig.holdout="validation"``): the validation windows become the test set,
    the newest training windows (as many as there were validation windows, at most all but
    one) the validation set, the older ones the training set. None when the user has no
    validation window or a single training window."""
    n, m = len(user.train), min(len(user.val), len(user.train) - 1)
    if m < 1:
        return None
    first, last = np.arange(n - m), np.arange(n - m, n)
    return UserData(user=user.user, train=user.train.take(first), val=user.train.take(last),
                    test=user.val, event_timestamp=user.event_timestamp,
                    event_intent=user.event_intent,
                    train_event_index=user.train_event_index[first],
                    val_event_index=user.train_event_index[last],
                    test_event_index=user.val_event_index)


def _first_predicted_event(user, event_timestamps, user_windows):
    """Window j of a user predicts event ``first + j``, where ``first = n_events -
    n_windows`` (make_windows keeps every event after the first ``min_history``)."""
    first = len(event_timestamps) - len(user_windows)
    if first < 0 or not np.array_equal(
        np.asarray(user_windows.timestamp, np.int64), event_timestamps[first:]
    ):
        raise RuntimeError(
            f"user {user}: windows are not the user's last {len(user_windows)} events in time "
            "order; the data layer's make_windows contract changed"
        )
    return first


def load_users(run, data=None, mapping=None, config=None, n_users=0, schema=None):
    """The individual users' :class:`UserData` and the skip statistics.

    ``data`` (a log) is read with the run's schema and mapping file (``config.json``,
    ``data_schema`` and ``mapping``): ``schema`` overrides fields of the former (a dict, as
    :meth:`~pitune_tf.population.run_directory.Run.log_schema` takes it, or a whole
    :class:`pitune_tf.data.schema.Schema`), ``mapping`` replaces the latter. Without
    ``data``, the run's own ``data/individual.parquet`` (canonical already) is read."""
    data_path = Path(data) if data else run.individual_data_path
    if data_path is None:
        raise UserInputError(f"run directory {run.run_dir} is missing data/individual.parquet; "
                             "pass --data")
    stats = ReadStats()
    if data:
        df = read_events(data_path, mapping=mapping or run.mapping,
                         schema=run.log_schema(schema), stats=stats)
    else:
        df = read_events(data_path, mapping=mapping, stats=stats)
    stats.warn(data_path)
    users, stats = prepare_users(df, run.vocabs, history=run.config.history,
                                 slot_minutes=run.config.slot_minutes, fractions=config.fractions,
                                 days=config.split_days, train_days=config.train_days,
                                 min_history=config.min_history)
    if config.holdout == "validation":  # the test windows are never read
        users = [u for u in map(validation_holdout, users) if u is not None]
    if n_users:
        users = users[:n_users]
    if not users:
        raise UserInputError(f"no user of {data_path} has both training and test windows ({stats})")
    return users, stats, data_path
