"""Synthetic smartphone event logs: intents driven by context, recent intents and long-tailed tastes.

The embedded default data of the demo and the tests, and the benchmarks' load. It imitates what
the PITuning paper describes of its Honor dataset (Section 4.1.1: events grouped into intents,
context of time and place) and of its users (Figure 1: individual intent distributions depart
from the population's, some users favour intents that are rare in the population).

The generative story (symbols of `SyntheticConfig`):

* A world: N_I intents, each owning several events (apps); a population preference
  log p_pop(i) = -s log(rank_i) (Zipf, intent 0 the most popular); intent log-weights for each
  period of the day (7 periods), weekday vs weekend and place type (home / work / other); for each
  intent a few successor intents (a sparse Markov transition component).
* Each user: log-preferences log p_pop + N(0, user_pref_sigma^2); a `longtail_fraction` of the
  users favour 1-2 intents from the rarer half of the population ranking (`longtail_boost` added to
  their log-preference, and a habit: with weight `longtail_habit` in 3 periods of the day of the
  user's own, a quarter of it otherwise, the next intent is a favoured one whatever else); a home,
  maybe a workplace (office hours around 9-18 on weekdays), two other places (weekday evenings,
  weekend afternoons); a mean number of events per day.
* Each event, in time order per user: with probability `repeat_prob` the previous intent repeats;
  otherwise (after the habit above) the intent is drawn from

      softmax_i( user_pref[i] + w_period[i] + w_weekend[i] + w_place[i] + offset[i]
                 + successor_strength * [i follows the previous intent] )

  where `offset` calibrates the world so that the population's intent shares stay Zipf-like.
  and the event is one of the intent's apps (user-specific app tastes; a repeated intent reuses the
  previous app with probability `same_event_prob`).

The user oracles: for each event, the exact distribution of its intent given the user's own
parameters, its context and the previous intent (the mixture above, normalized):

    P(i | c) = rho * [i = previous] + (1 - rho) * (h_c * habit(i) + (1 - h_c) * softmax_i(...))

with rho = `repeat_prob` (no repeat term on a user's first event) and h_c the user's habit
weight in the period of context c. This *context oracle* (`*_oracle_context`) knows the
predicted event's own time and place, which a model of PITuning Eq. 1 does not see (it reads
the history only): an upper bound no model here reaches. The *history oracle* (`*_oracle`,
the ceiling the individual stage measures against) does not know it:

    P(i) = sum_c P(c | previous event's hour, weekend, place type) * P(i | c)

with P(c | ...) the log's own shares of next-event contexts (consecutive events of a user,
smoothed toward the log's marginal next-context shares with one pseudo-event per key). `generate` returns both beside each log; the context
oracle's argmax gives `oracle_accuracy`.

The generator is vectorized: numpy over all events, and one step per position in the users'
sequences over all users at once for the Markov chain (about 10M events in well under a minute).

Example:
    >>> from pitune_tf.data.synthetic import generate
    >>> data = generate("tiny", seed=0)
    >>> list(data.population.columns)
    ['user_id', 'timestamp', 'event', 'intent', 'location']
    >>> list(data.individual_oracle.columns[:3])
    ['user_id', 'timestamp', 'social']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from pitune_tf.common.atomic import write_json
from pitune_tf.common.errors import UserInputError
from pitune_tf.data.intent_oracle import write_oracles
from pitune_tf.data.io import write_events
from pitune_tf.data.synthetic_config import PRESETS, SyntheticConfig

__all__ = ["PRESETS", "SyntheticConfig", "SyntheticData", "generate"]

# Intent names, most popular first (Section 4.1.1 lists news, study, work, entertainment, sports).
INTENT_NAMES = (
    "social",
    "short_video",
    "news",
    "music",
    "video",
    "shopping",
    "payment",
    "navigation",
    "game",
    "weather",
    "food_delivery",
    "reading",
    "taxi",
    "study",
    "sports",
    "audiobook",
    "photo",
    "travel",
    "health",
    "work",
)
# Relative activity of each hour of the day (phones are used little at night).
HOUR_WEIGHTS = np.array(
    [0.3, 0.15, 0.08, 0.05, 0.05, 0.15, 0.6, 1.2, 1.5, 1.3, 1.2, 1.3,
     1.6, 1.3, 1.1, 1.1, 1.2, 1.4, 1.7, 1.9, 2.0, 1.8, 1.3, 0.7]
)  # fmt: skip
# Period of the day of each hour: night, early, morning, noon, afternoon, evening, late.
PERIOD_OF_HOUR = np.array([0] * 6 + [1] * 3 + [2] * 3 + [3] * 2 + [4] * 4 + [5] * 3 + [6] * 3)
N_PERIODS = 7
HOME, WORK, OTHER = 0, 1, 2  # place types
PLACE_SHARE = np.array([0.6, 0.3, 0.1])  # rough share of events at home, work, other places
SECONDS_PER_DAY = 86400


@dataclass
class SyntheticData:
    """A generated population log and individual log of disjoint users.

    Attributes:
        population: DataFrame. Canonical event table (user_id, timestamp, event, intent,
            location), sorted by user then time.
        individual: DataFrame. Same, for the individual (on-device) users.
        mapping: dict. Every event of the world → its intent.
        config: SyntheticConfig. The parameters used.
        intents: list of str. The intents, in the order of the population preference (first is
            the most popular by design).
        longtail: dict. For each user with a long-tailed preference, the rare intents it favours.
        oracle_accuracy: dict. Accuracy of predicting the next intent with the generator's own
            probabilities ("population", "individual"): the ceiling a model can reach.
        population_oracle: DataFrame or None. The user oracle of each event of `population`,
            same rows in the same order: user_id, timestamp and one float32 column per intent
            (in `intents` order), the probability that the event's intent is that one given
            the user's parameters, the previous intent and the previous event's context,
            the event's own context unknown (the history oracle of the module docstring:
            the best a model of PITuning Eq. 1 can do; rows sum to 1). None when generated
            with ``with_oracle=False``.
        individual_oracle: DataFrame or None. Same, for `individual`.
        population_oracle_context, individual_oracle_context: DataFrame or None. The same
            with the event's own context known (the context oracle: an upper bound no model
            of the history reaches).
    """

    population: pd.DataFrame
    individual: pd.DataFrame
    mapping: dict[str, str]
    config: SyntheticConfig
    intents: list[str] = field(default_factory=list)
    longtail: dict[str, list[str]] = field(default_factory=dict)
    oracle_accuracy: dict[str, float] = field(default_factory=dict)
    population_oracle: pd.DataFrame | None = None
    individual_oracle: pd.DataFrame | None = None
    population_oracle_context: pd.DataFrame | None = None
    individual_oracle_context: pd.DataFrame | None = None


def generate(
    preset: str = "demo", seed: int = 0, progress: bool = False, with_oracle: bool = True,
    **overrides,
) -> SyntheticData:
    """Generates a population log and an individual log (see the module docstring).

    Args:
        preset: str. "tiny" (~10k events, tests), "demo" (~200k events), "large"
            (~590k events), "bench" and "scale" (~10M events): `SyntheticConfig` PRESETS.
        seed: int. Seed of `np.random.default_rng`; the same seed gives the same frames.
        progress: bool. Show a progress bar over the sequence steps.
        with_oracle: bool. Also return the user oracle of every event (float32, 4 * N_I bytes
            per event); the logs are the same either way.
        **overrides: fields of `SyntheticConfig`; an unknown name raises `UserInputError`.
    """
    config = SyntheticConfig.from_preset(preset, **overrides)
    rng = np.random.default_rng(seed)
    world = _World(config, rng)
    n_pop = config.n_population_users
    population, pop_longtail, pop_oracle, pop_probs, pop_history = _generate_log(
        world, config, rng, n_users=n_pop, first_user=0, progress=progress, desc="population",
        with_oracle=with_oracle,
    )
    individual, ind_longtail, ind_oracle, ind_probs, ind_history = _generate_log(
        world,
        config,
        rng,
        n_users=config.n_individual_users,
        first_user=n_pop,
        progress=progress,
        desc="individual",
        with_oracle=with_oracle,
    )
    mapping = dict(zip(world.event_names.tolist(), world.intent_names[world.event_intent].tolist()))
    return SyntheticData(
        population=population,
        individual=individual,
        mapping=mapping,
        config=config,
        intents=world.intent_names.tolist(),
        longtail={**pop_longtail, **ind_longtail},
        oracle_accuracy={"population": pop_oracle, "individual": ind_oracle},
        population_oracle=_oracle_frame(population, pop_history, world.intent_names),
        individual_oracle=_oracle_frame(individual, ind_history, world.intent_names),
        population_oracle_context=_oracle_frame(population, pop_probs, world.intent_names),
        individual_oracle_context=_oracle_frame(individual, ind_probs, world.intent_names),
    )


SHARD_ROW_GROUP = 65_536  # Parquet rows per row group of the shards (read back by chunks)


def generate_shards(
    out_dir, preset: str = "scale", seed: int = 0, users_per_shard: int = 500,
    progress: bool = False, **overrides,
) -> dict:
    """Writes a synthetic log as Parquet shards of whole users, one shard in memory at a time.

    The world (intents, apps, places, context weights) is drawn as :func:`generate` draws
    it; the users of population shard ``s`` from ``default_rng([seed, 1, s])`` and the
    individual users from ``default_rng([seed, 2])``, so the shards are deterministic, but
    not the rows :func:`generate` gives for the same preset and seed.

    Writes ``out_dir/population/part-NNNNN.parquet`` (users in name order across the
    shards, rows sorted by user then time, row groups of 65,536 rows),
    ``out_dir/individual.parquet`` with its user oracle and ``out_dir/mapping.json``.

    Args:
        out_dir: str or Path. Output directory.
        preset: str. A :data:`PRESETS` name ("scale": about 10M population events).
        seed: int.
        users_per_shard: int. Population users per shard.
        progress: bool. Print one line per shard.
        **overrides: fields of `SyntheticConfig`.

    Returns:
        dict: ``population_events``, ``individual_events``, ``shards`` (paths).
    """
    if users_per_shard < 1:
        raise UserInputError(f"users_per_shard must be >= 1, got {users_per_shard}")
    config = SyntheticConfig.from_preset(preset, **overrides)
    out_dir = Path(out_dir)
    world = _World(config, np.random.default_rng(seed))
    shards, n_population = [], 0
    n_shards = -(-config.n_population_users // users_per_shard)
    for shard in range(n_shards):
        first = shard * users_per_shard
        n_users = min(users_per_shard, config.n_population_users - first)
        frame, _, _, _, _ = _generate_log(
            world, config, np.random.default_rng([seed, 1, shard]), n_users=n_users,
            first_user=first, progress=False, desc="population")
        path = out_dir / "population" / f"part-{shard:05d}.parquet"
        write_events(frame, path, row_group_size=SHARD_ROW_GROUP)
        shards.append(path)
        n_population += len(frame)
        if progress:
            print(f"shard {shard + 1}/{n_shards}: {len(frame)} events", flush=True)
        del frame
    individual, _, _, probs, history = _generate_log(
        world, config, np.random.default_rng([seed, 2]), n_users=config.n_individual_users,
        first_user=config.n_population_users, progress=False, desc="individual",
        with_oracle=True)
    write_events(individual, out_dir / "individual.parquet")
    write_oracles({"": _oracle_frame(individual, history, world.intent_names),
                   "context": _oracle_frame(individual, probs, world.intent_names)},
                  out_dir / "individual.parquet")
    mapping = dict(zip(world.event_names.tolist(), world.intent_names[world.event_intent].tolist()))
    write_json(out_dir / "mapping.json", mapping)
    return {"population_events": n_population, "individual_events": len(individual),
            "shards": shards}


class _World:
    """What all users share: intents, events, places and the context and transition weights."""

    def __init__(self, config: SyntheticConfig, rng: np.random.Generator):
        n_intents = config.n_intents
        names = [
            INTENT_NAMES[i] if i < len(INTENT_NAMES) else f"intent_{i}" for i in range(n_intents)
        ]
        self.intent_names = np.array(names, dtype=object)
        lo, hi = config.events_per_intent
        self.events_per_intent = rng.integers(lo, hi + 1, size=n_intents)  # [N_I]
        self.event_start = np.concatenate([[0], np.cumsum(self.events_per_intent)[:-1]])  # [N_I]
        self.event_intent = np.repeat(np.arange(n_intents), self.events_per_intent)  # [N_E]
        rank_in_intent = np.arange(len(self.event_intent)) - self.event_start[self.event_intent]
        self.event_names = np.array(
            [f"{names[i]}_app{j + 1}" for i, j in zip(self.event_intent, rank_in_intent)],
            dtype=object,
        )
        self.event_popularity = 1.0 / (rank_in_intent + 1.0) ** 0.8  # [N_E]

        self.log_pop = -config.zipf_exponent * np.log(np.arange(1, n_intents + 1))  # [N_I]
        # context log-weights, normalized per intent so that, averaged over the contexts a user
        # lives through, they reshuffle intents in time and place without changing the
        # population's Zipf ranking
        period_share = np.bincount(PERIOD_OF_HOUR, weights=HOUR_WEIGHTS, minlength=N_PERIODS)
        w_period = _normalized(
            rng.normal(0.0, config.time_scale, size=(N_PERIODS, n_intents)), period_share
        )
        w_weekend = _normalized(
            rng.normal(0.0, config.weekend_scale, size=(2, n_intents)), np.array([5.0, 2.0])
        )
        w_place = _normalized(
            rng.normal(0.0, config.location_scale, size=(3, n_intents)), PLACE_SHARE
        )
        # context id = (period * 2 + weekend) * 3 + place type
        self.context_logits = (
            w_period[:, None, None, :] + w_weekend[None, :, None, :] + w_place[None, None, :, :]
        ).reshape(N_PERIODS * 2 * 3, n_intents)  # [n_contexts, N_I]
        context_share = (
            period_share[:, None, None] * np.array([5.0, 2.0])[None, :, None] * PLACE_SHARE
        ).reshape(-1)
        self.successor_logits = np.zeros((n_intents, n_intents))  # [previous, next]
        for i in range(n_intents):
            others = np.delete(np.arange(n_intents), i)
            nexts = rng.choice(others, size=config.n_successors, replace=False)
            self.successor_logits[i, nexts] = config.successor_strength
        self.context_logits += _calibration(
            self.log_pop, self.context_logits, context_share, self.successor_logits
        )

        self.location_names = np.array(
            [f"home_{k:04d}" for k in range(config.n_home_locations)]
            + [f"work_{k:04d}" for k in range(config.n_work_locations)]
            + [f"place_{k:04d}" for k in range(config.n_other_locations)],
            dtype=object,
        )


def _normalized(log_weights, share):
    """log_weights [n_values, N_I] minus log of their `share`-weighted mean of exp per intent."""
    share = share / share.sum()
    return log_weights - np.log(share @ np.exp(log_weights))[None, :]


def _calibration(log_pop, context_logits, context_share, successor_logits, n_iterations=100):
    """Per-intent offsets [N_I] such that, with the previous intent drawn from softmax(log_pop)
    and the context from `context_share`, the next intent is drawn from softmax(log_pop) too:
    the contexts and transitions then decide when an intent is used, the Zipf preference how
    often (the population's intent distribution stays Zipf-like)."""
    share = context_share / context_share.sum()
    target = np.exp(log_pop - log_pop.max())
    target /= target.sum()
    weight = share[:, None] * target[None, :]  # [n_contexts, N_I (previous)]
    offsets = np.zeros_like(log_pop)
    for _ in range(n_iterations):
        logits = (
            log_pop + context_logits[:, None, :] + successor_logits[None, :, :] + offsets
        )  # [n_contexts, previous, next]
        probs = np.exp(logits - logits.max(axis=2, keepdims=True))
        probs /= probs.sum(axis=2, keepdims=True)
        marginal = np.einsum("cp,cpn->n", weight, probs)
        offsets += np.log(target) - np.log(marginal)
    return offsets - offsets.mean()


def _generate_log(world, config, rng, n_users, first_user, progress, desc, with_oracle=False):
    """One log of `n_users` users: (DataFrame, longtail dict, oracle accuracy, oracle
    probabilities float32 [n_events, N_I] or None)."""
    n_intents, n_days = config.n_intents, config.n_days

    # --- users' preferences (Figure 1: long-tailed departures from the population)
    log_pref = world.log_pop + rng.normal(0.0, config.user_pref_sigma, size=(n_users, n_intents))
    rare = np.arange(n_intents // 2, n_intents)  # the rarer half of the population ranking
    n_longtail = int(round(config.longtail_fraction * n_users))
    longtail_users = np.sort(rng.choice(n_users, size=n_longtail, replace=False))
    width = max(5, len(str(config.n_population_users + config.n_individual_users - 1)))
    user_names = np.array(  # zero-padded: sorting the names sorts the users
        [f"u{first_user + u:0{width}d}" for u in range(n_users)], dtype=object
    )
    longtail = {}
    # the habit component: favoured intents drawn regardless of context, with weight
    # habit[u, period] (longtail_habit in the user's habit periods, a quarter of it elsewhere)
    habit = np.zeros((n_users, N_PERIODS))
    habit_intents = np.zeros((n_users, n_intents))  # [n_users, N_I] distribution of the habit
    lo, hi = config.longtail_intents
    for u in longtail_users:
        k = min(int(rng.integers(lo, hi + 1)), len(rare))
        favoured = rng.choice(rare, size=k, replace=False)
        log_pref[u, favoured] += config.longtail_boost
        habit_intents[u, favoured] = 2.0 ** -np.arange(k)  # the first favourite twice the next
        habit_intents[u] /= habit_intents[u].sum()
        periods = rng.choice(
            np.arange(1, N_PERIODS), size=config.longtail_habit_periods, replace=False
        )
        habit[u] = config.longtail_habit / 4.0
        habit[u, periods] = config.longtail_habit
        longtail[user_names[u]] = world.intent_names[favoured].tolist()

    # --- users' routines
    daily_rate = rng.uniform(*config.events_per_day, size=n_users)
    chronotype = rng.integers(-1, 2, size=n_users)  # shifts the hourly activity by -1, 0, +1 h
    home = rng.integers(config.n_home_locations, size=n_users)
    has_work = rng.random(n_users) >= config.no_work_fraction
    work = config.n_home_locations + rng.integers(config.n_work_locations, size=n_users)
    other = (
        config.n_home_locations
        + config.n_work_locations
        + rng.integers(config.n_other_locations, size=(n_users, 2))
    )
    work_start = rng.uniform(8.0, 10.0, size=n_users)  # hours
    work_length = rng.uniform(7.5, 9.5, size=n_users)

    # --- user-days (index = user * n_days + day)
    start = np.datetime64(config.start_date, "D")
    weekday = (start.astype("datetime64[D]").view("int64") + 3 + np.arange(n_days)) % 7  # Mon=0
    day_weekend = np.tile(weekday >= 5, n_users)  # [n_users * n_days]
    n_user_days = n_users * n_days
    day_user = np.repeat(np.arange(n_users), n_days)
    working = has_work[day_user] & ~day_weekend & (rng.random(n_user_days) >= 0.05)
    day_work_start = work_start[day_user] + rng.normal(0.0, 0.25, size=n_user_days)
    day_work_end = day_work_start + work_length[day_user] + rng.normal(0.0, 0.5, size=n_user_days)
    evening_out = working & (rng.random(n_user_days) < config.evening_out_prob)
    evening_end = day_work_end + rng.uniform(1.0, 3.0, size=n_user_days)
    weekend_out = ~working & (rng.random(n_user_days) < config.weekend_out_prob)
    out_start = rng.uniform(11.0, 16.0, size=n_user_days)
    out_end = out_start + rng.uniform(2.0, 5.0, size=n_user_days)
    day_other = other[day_user, rng.integers(2, size=n_user_days)]
    counts = np.maximum(rng.poisson(np.repeat(daily_rate, n_days)), 1)  # [n_user_days]

    # --- events' times: hour from the activity profile, then sorted with distinct seconds
    n_events = int(counts.sum())
    event_day = np.repeat(np.arange(n_user_days), counts)  # [n_events] user-day index
    hour_cdf = np.cumsum(HOUR_WEIGHTS) / HOUR_WEIGHTS.sum()
    hour = np.searchsorted(hour_cdf, rng.random(n_events), side="right")
    hour = np.clip(hour + chronotype[day_user[event_day]], 0, 23)
    second = hour * 3600 + rng.integers(0, 3600, size=n_events)
    key = np.sort(event_day.astype(np.int64) * 100_000 + second)  # days stay apart
    key = np.maximum.accumulate(key - np.arange(n_events)) + np.arange(n_events)  # distinct
    second = key % 100_000
    hours = second / 3600.0

    # --- places and contexts
    at_work = (
        working[event_day]
        & (hours >= day_work_start[event_day])
        & (hours < day_work_end[event_day])
    )
    at_other = (
        evening_out[event_day]
        & (hours >= day_work_end[event_day])
        & (hours < evening_end[event_day])
    ) | (weekend_out[event_day] & (hours >= out_start[event_day]) & (hours < out_end[event_day]))
    place = np.where(at_work, WORK, np.where(at_other, OTHER, HOME))
    event_user = day_user[event_day]
    location = np.where(
        place == WORK,
        work[event_user],
        np.where(place == OTHER, day_other[event_day], home[event_user]),
    )
    period = PERIOD_OF_HOUR[np.minimum(second // 3600, 23)]
    context = (period * 2 + day_weekend[event_day]) * 3 + place

    # --- the Markov chain of intents: one step per sequence position, over all users at once
    lengths = counts.reshape(n_users, n_days).sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    by_length = np.argsort(-lengths, kind="stable")
    n_active = np.searchsorted(-lengths[by_length], -np.arange(lengths.max()), side="left")
    # n_active[k] = number of users with more than k events (users sorted by length)
    # the three branches of the mixture are drawn up front for all events: repeat the previous
    # intent, else a habit intent (long-tail users), else the context-and-successor softmax
    repeat = rng.random(n_events) < config.repeat_prob
    event_habit = habit[event_user, period]  # [n_events] habit weight h
    use_habit = rng.random(n_events) < event_habit
    habit_cdf = np.cumsum(habit_intents, axis=1)  # [n_users, N_I]
    habit_draw = np.zeros(n_events, dtype=np.int64)  # [n_events], set where use_habit
    chosen = np.flatnonzero(use_habit)
    habit_draw[chosen] = np.minimum(
        (habit_cdf[event_user[chosen]] < rng.random(len(chosen))[:, None]).sum(axis=1),
        n_intents - 1,
    )
    draw = rng.random(n_events).astype(np.float32)
    # the softmax in exp space (float32): pref * context * successor weights
    pref = np.exp(log_pref - log_pref.max(axis=1, keepdims=True)).astype(np.float32)
    context_weight = np.exp(
        world.context_logits - world.context_logits.max(axis=1, keepdims=True)
    ).astype(np.float32)  # [n_contexts, N_I]
    successor_weight = np.exp(world.successor_logits).astype(np.float32)  # [N_I, N_I]
    # the oracle's mixture, (1 - rho) * ((1 - h) * softmax + h * habit) + rho * [prev], is
    # proportional to softmax_weights + a * total * habit + b * total * [prev] with
    # a = h / (1 - h) and b = rho / (1 - rho) * (1 + a), total = sum of softmax_weights
    habit_odds = (event_habit / np.maximum(1.0 - event_habit, 1e-6)).astype(np.float32)
    repeat_odds = config.repeat_prob / max(1.0 - config.repeat_prob, 1e-6)
    habit_intents = habit_intents.astype(np.float32)
    intent = np.zeros(n_events, dtype=np.int64)
    oracle = np.zeros(n_events, dtype=np.int64)
    previous = np.zeros(n_users, dtype=np.int64)
    probs = np.zeros((n_events, n_intents), dtype=np.float32) if with_oracle else None
    if with_oracle:  # the history oracle: the predicted event's own context is not known
        history_probs = np.zeros_like(probs)
        transition = _context_transitions(
            context, np.minimum(second // 3600, 23) * 6 + day_weekend[event_day] * 3 + place,
            offsets, len(world.context_logits))  # [n_keys, n_contexts]
        context_habit = habit[:, np.arange(len(world.context_logits)) // 6]  # [n_users, C]
    for k in tqdm(range(len(n_active)), desc=f"synthetic {desc}", disable=not progress):
        users = by_length[: n_active[k]]
        index = offsets[users] + k  # [m] events at step k
        weight = pref[users] * context_weight[context[index]]  # [m, N_I]
        if k > 0:
            weight *= successor_weight[previous[users]]
        cdf = np.cumsum(weight, axis=1)  # [m, N_I]
        total = cdf[:, -1]  # [m]
        sampled = np.minimum((cdf < (draw[index] * total)[:, None]).sum(axis=1), n_intents - 1)
        sampled = np.where(use_habit[index], habit_draw[index], sampled)
        weight += (habit_odds[index] * total)[:, None] * habit_intents[users]
        if k > 0:
            rows = np.arange(len(users))
            weight[rows, previous[users]] += repeat_odds * total * (1.0 + habit_odds[index])
            sampled = np.where(repeat[index], previous[users], sampled)
        intent[index] = sampled
        oracle[index] = weight.argmax(axis=1)
        if with_oracle:
            probs[index] = weight / weight.sum(axis=1, keepdims=True)
            history_probs[index] = probs[index] if k == 0 else _history_mixture(
                pref[users], context_weight, successor_weight[previous[users]],
                context_habit[users], habit_intents[users], previous[users],
                config.repeat_prob, transition[index - 1])
        previous[users] = sampled
    oracle_accuracy = float((oracle == intent).mean()) if n_events else 0.0

    # --- events (apps): the user's taste among the intent's apps, repeated apps on repeats
    taste = world.event_popularity * rng.gamma(0.7, size=(n_users, len(world.event_intent)))
    taste /= np.add.reduceat(taste, world.event_start, axis=1)[:, world.event_intent]
    cumulative = np.cumsum(taste, axis=1)
    before = np.where(world.event_start > 0, cumulative[:, world.event_start - 1], 0.0)
    cumulative -= before[:, world.event_intent]  # cumulative share within each intent
    r = rng.random(n_events)
    first, n_apps = world.event_start[intent], world.events_per_intent[intent]
    choice = np.zeros(n_events, dtype=np.int64)
    for j in range(int(world.events_per_intent.max()) - 1):
        valid = j < n_apps - 1
        column = first + np.minimum(j, n_apps - 1)
        choice += valid & (cumulative[event_user, column] <= r)
    event = first + choice
    same_user = np.concatenate([[False], event_user[1:] == event_user[:-1]])
    reuse = (
        same_user
        & np.concatenate([[False], intent[1:] == intent[:-1]])
        & (rng.random(n_events) < config.same_event_prob)
    )
    source = np.maximum.accumulate(np.where(reuse, 0, np.arange(n_events)))
    event = event[source]

    # --- the canonical table
    day_of_event = event_day % n_days
    seconds = day_of_event.astype(np.int64) * SECONDS_PER_DAY + second
    timestamp = start.astype("datetime64[ns]") + seconds.astype("timedelta64[s]")
    frame = pd.DataFrame(
        {
            "user_id": _string_column(user_names, event_user),
            "timestamp": timestamp.astype("datetime64[ns]"),
            "event": _string_column(world.event_names, event),
            "intent": _string_column(world.intent_names, intent),
            "location": _string_column(world.location_names, location),
        }
    )
    return frame, longtail, oracle_accuracy, probs, history_probs if with_oracle else None


def _context_transitions(context, key, offsets, n_contexts, smoothing=1.0):
    """P(context of the next event | key of the previous event) [n_events, n_contexts]: the
    log's own shares over consecutive events of a user, the key being the previous event's
    (hour, weekend, place type), each row smoothed toward the log's marginal next-context
    shares with ``smoothing`` pseudo-events in all (a uniform prior over the 42 contexts
    would swamp the few events per key of a small log); row ``j`` belongs to the key of
    event ``j``."""
    n_keys = 24 * 2 * 3
    follows = np.ones(len(context), dtype=bool)
    follows[offsets[offsets < len(context)]] = False  # a user's first event follows nothing
    after = np.flatnonzero(follows)
    marginal = np.bincount(context[after], minlength=n_contexts) + 1.0 / n_contexts
    counts = np.zeros((n_keys, n_contexts))
    np.add.at(counts, (key[after - 1], context[after]), 1.0)
    counts += smoothing * marginal / marginal.sum()
    return (counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)[key]


def _history_mixture(pref, context_weight, successor, context_habit, habit_intents, previous,
                     repeat_prob, next_context):
    """The user oracle without the predicted event's own context (what a model of PITuning
    Eq. 1 sees: the history only): the oracle's mixture under every context, averaged with
    the next-context probabilities ``next_context`` [m, C]. Shapes: pref [m, N_I],
    context_weight [C, N_I], successor [m, N_I], context_habit [m, C], habit_intents
    [m, N_I], previous [m] ints; returns [m, N_I]."""
    soft = pref[:, None, :] * context_weight[None, :, :] * successor[:, None, :]  # [m, C, N_I]
    soft /= soft.sum(axis=2, keepdims=True)
    h = context_habit[:, :, None]  # [m, C, 1]
    mix = (1.0 - repeat_prob) * ((1.0 - h) * soft + h * habit_intents[:, None, :])
    mix[np.arange(len(previous)), :, previous] += repeat_prob
    return np.einsum("mc,mcn->mn", next_context, mix).astype(np.float32)


def _oracle_frame(log, probs, intent_names):
    """The oracle table of `log`: its user_id and timestamp, one column per intent."""
    if probs is None:
        return None
    columns = pd.DataFrame(probs, columns=list(intent_names), copy=False)
    return pd.concat([log[["user_id", "timestamp"]], columns], axis=1)


def _string_column(names, codes) -> pd.Series:
    """names[codes] as a pandas string column, gathered by Arrow (10x faster than from objects)."""
    taken = pa.array(list(names), type=pa.large_string()).take(pa.array(codes))
    return pd.Series(taken, dtype="str")
