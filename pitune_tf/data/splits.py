"""Population/individual user splits and chronological train/validation/test splits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pitune_tf.common.errors import UserInputError
from pitune_tf.data.features import day_index
from pitune_tf.data.windows import Windows


def split_users(user_ids, individual_fraction: float = 0.2, seed: int = 0,
                n_individual: int | None = None):
    """Splits users into disjoint population and individual sets, deterministically.

    Args:
        user_ids: iterable of user ids (duplicates allowed, e.g. a ``user_id`` column).
        individual_fraction: float in [0, 1]. Share of users that become individual users
            (rounded; at least one of each set when there are two or more users and the
            fraction is strictly between 0 and 1).
        seed: int. Seed of the permutation.
        n_individual: int or None. That many individual users instead of a share (at most
            the number of users).

    Returns:
        ``(population_users, individual_users)``: sorted np.ndarrays of str, disjoint.
    """
    if not 0.0 <= individual_fraction <= 1.0:
        raise UserInputError(f"individual_fraction must be in [0, 1], got {individual_fraction}")
    users = np.asarray(
        sorted(pd.unique(pd.Series(np.asarray(user_ids, dtype=object)).astype(str))), dtype=str
    )
    n = len(users)
    if n_individual is not None:
        if not 0 <= n_individual <= n:
            raise UserInputError(f"individual_users must be in [0, {n}] (the data has {n} "
                                 f"users), got {n_individual}")
    else:
        n_individual = int(np.floor(n * individual_fraction + 0.5))
        if n >= 2 and 0.0 < individual_fraction < 1.0:
            n_individual = min(max(n_individual, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    individual = np.sort(users[order[:n_individual]])
    population = np.sort(users[order[n_individual:]])
    return population, individual


def _user_order(windows: Windows):
    """Row order grouped by user (first appearance) then time, and the group boundaries."""
    codes, _ = pd.factorize(pd.Series(windows.user, copy=False), sort=False)
    order = np.lexsort((windows.timestamp, codes))
    sorted_codes = codes[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(sorted_codes)) + 1, [len(order)]])
    return order, starts


def split_windows(windows: Windows, fractions=(0.6, 0.1, 0.3), days=None):
    """Chronological per-user train/validation/test split of windows.

    By fractions (PITuning's Mobile setting, 60/10/30): each user's windows, in time
    order of the predicted event, go first to train, then validation, then test; the
    boundaries are ``round(n_user * cumulative_fraction)``.

    By days (its Honor setting, ``days=(7, 1, 4)``): days are counted from the calendar
    day of each user's first predicted event (day 0); days ``[0, 7)`` train, ``[7, 8)``
    validation, ``[8, 12)`` test; later days are dropped.

    Args:
        windows: :class:`Windows`.
        fractions: three non-negative floats summing to at most 1 (used when ``days`` is
            None; windows past the sum are dropped).
        days: three non-negative ints, or None.

    Returns:
        ``(train, val, test)`` :class:`Windows`, each ordered by user then time.
    """
    order, starts = _user_order(windows)
    n = len(order)
    lengths = np.diff(starts)
    group = np.repeat(np.arange(len(lengths)), lengths)  # [n], user group of each sorted row
    rank = np.arange(n) - starts[:-1][group]  # [n], position within the user
    if days is not None:
        days = [int(d) for d in days]
        if len(days) != 3 or min(days) < 0:
            raise UserInputError(f"days must be three non-negative integers, got {days}")
        day = day_index(windows.timestamp[order])
        offset = day - day[starts[:-1]][group]  # days since the user's first day
        bounds = np.cumsum(days)
        part = np.searchsorted(bounds, offset, side="right")  # 0, 1, 2, or 3 = dropped
    else:
        fractions = [float(f) for f in fractions]
        if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) > 1 + 1e-9:
            raise UserInputError(
                f"fractions must be three non-negative numbers summing to at most 1, got {fractions}"
            )
        cumulative = np.minimum(np.cumsum(fractions), 1.0)
        bounds = np.floor(lengths[:, None] * cumulative[None, :] + 0.5).astype(
            np.int64
        )  # [users, 3]
        part = (rank[:, None] >= bounds[group]).sum(axis=1)  # 0, 1, 2, or 3 = dropped
    return tuple(windows.take(order[part == k]) for k in range(3))
