"""Configuration of the synthetic event-log generator (`pitune_tf.data.synthetic`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pitune_tf.common.errors import UserInputError


@dataclass
class SyntheticConfig:
    """Parameters of the synthetic world and its users; the defaults are the "demo" preset.

    The symbols are those of the generator's docstring (`pitune_tf.data.synthetic`).
    """

    # --- sizes
    n_population_users: int = 150  # users of the population (cloud) log
    n_individual_users: int = 30  # users of the individual (device) log, disjoint from the above
    n_days: int = 28  # days of logs per user (>= 12 for the 7/1/4-day split)
    start_date: str = "2023-06-01"  # first day (the Honor dataset's first day, a Thursday)
    n_intents: int = 16  # N_I; intent 0 is the most popular in the population
    events_per_intent: tuple[int, int] = (3, 8)  # events (apps) per intent, drawn in [lo, hi]
    events_per_day: tuple[int, int] = (20, 60)  # a user's mean daily events, drawn in [lo, hi]

    # --- population preferences (long-tailed)
    zipf_exponent: float = 1.1  # s: population preference of intent of rank r is ~ r^-s
    user_pref_sigma: float = 0.6  # std of each user's log-preference departure from the population
    longtail_fraction: float = 0.3  # share of users (in each log) with a long-tailed preference
    longtail_intents: tuple[int, int] = (1, 2)  # how many rare intents such a user prefers
    longtail_boost: float = 2.0  # log-preference added to those rare intents
    longtail_habit: float = 0.6  # weight of the favoured intents, whatever the context, in the
    # user's habit periods (a quarter of it in the other periods)
    longtail_habit_periods: int = 3  # habit periods of the day (out of 7), drawn per user

    # --- context and sequence dependence of the next intent
    time_scale: float = 2.3  # std of the intent log-weight of each period of the day
    weekend_scale: float = 1.0  # std of the intent log-weight of weekend vs weekday
    location_scale: float = 2.3  # std of the intent log-weight of home / work / other places
    n_successors: int = 2  # intents that typically follow each intent (Markov transitions)
    successor_strength: float = 4.5  # log-weight added to the successors of the previous intent
    repeat_prob: float = 0.05  # probability that the previous intent simply repeats
    same_event_prob: float = 0.5  # probability that a repeated intent reuses the previous event

    # --- places
    n_home_locations: int = 40  # shared pool of residential places
    n_work_locations: int = 20  # shared pool of workplaces
    n_other_locations: int = 30  # shared pool of other places (shops, gyms, stations, ...)
    no_work_fraction: float = 0.15  # share of users without a workplace
    evening_out_prob: float = 0.3  # probability of a weekday evening at another place
    weekend_out_prob: float = 0.6  # probability of a weekend afternoon at another place

    def validate(self) -> SyntheticConfig:
        """Raises `UserInputError` on an impossible value; returns self."""
        for name in ("n_population_users", "n_individual_users", "n_days", "n_intents"):
            if int(getattr(self, name)) < 1:
                raise UserInputError(f"synthetic: {name} must be >= 1, got {getattr(self, name)}")
        if self.n_intents < 2:
            raise UserInputError(f"synthetic: n_intents must be >= 2, got {self.n_intents}")
        for name in ("events_per_intent", "events_per_day", "longtail_intents"):
            lo_hi = tuple(getattr(self, name))
            if len(lo_hi) != 2 or lo_hi[0] < 1 or lo_hi[1] < lo_hi[0]:
                raise UserInputError(
                    f"synthetic: {name} must be (lo, hi) with 1 <= lo <= hi, got {lo_hi}"
                )
            setattr(self, name, (int(lo_hi[0]), int(lo_hi[1])))
        for name in (
            "longtail_fraction",
            "longtail_habit",
            "repeat_prob",
            "same_event_prob",
            "no_work_fraction",
            "evening_out_prob",
            "weekend_out_prob",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserInputError(f"synthetic: {name} must be in [0, 1], got {value}")
        for name in ("n_home_locations", "n_work_locations", "n_other_locations"):
            if int(getattr(self, name)) < 1:
                raise UserInputError(f"synthetic: {name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.longtail_habit_periods <= 6:
            raise UserInputError(
                f"synthetic: longtail_habit_periods must be in [1, 6], got {self.longtail_habit_periods}"
            )
        if not 0 <= self.n_successors < self.n_intents:
            raise UserInputError(
                f"synthetic: n_successors must be in [0, n_intents), got {self.n_successors}"
            )
        return self

    @classmethod
    def from_preset(cls, preset: str = "demo", **overrides) -> SyntheticConfig:
        """The preset's config with `overrides` applied; unknown preset or key → UserInputError."""
        if preset not in PRESETS:
            raise UserInputError(
                f"synthetic: unknown preset {preset!r}; choose from {sorted(PRESETS)}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UserInputError(
                f"synthetic: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**{**PRESETS[preset], **overrides}).validate()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Each preset overrides the dataclass defaults (= "demo", about 200k events).
# the individual users and places of the paper-scale presets ("scale", "bench")
_CITY = dict(n_individual_users=1000, n_home_locations=2000, n_work_locations=800,
             n_other_locations=1200)

PRESETS: dict[str, dict] = {
    # about 10k events, generated in well under a second: for the tests
    "tiny": dict(
        n_population_users=16,
        n_individual_users=6,
        n_days=12,
        n_intents=8,
        events_per_intent=(2, 4),
        n_home_locations=10,
        n_work_locations=5,
        n_other_locations=8,
    ),
    # about 200k events: the demo (a few minutes of population training on 2 cores)
    "demo": dict(),
    # about 35k events: the demo's world with 60 population users and 10 individual ones of
    # 14 days, and half its places (so that the population visits nearly all of them): the
    # quickstart's journey in about 5 minutes on 2 cores
    "quickstart": dict(n_population_users=60, n_individual_users=10, n_days=14,
                       n_home_locations=20, n_work_locations=10, n_other_locations=15),
    # about 590k events (558k of the population): the demo's world with 3.3x its
    # population users (500; the same 30 individual users, places and intents)
    "large": dict(n_population_users=500),
    # about 10M population events (9,000 users of 28 days) + 1.1M individual ones: the
    # population stage at the paper's scale (10,376,148 logs), written as shards by
    # `generate_shards` (python -m pitune_tf.data synth --preset scale --users-per-shard 500)
    "scale": dict(n_population_users=9000, **_CITY),
    # about 10M events: the benchmarks
    "bench": dict(n_population_users=8000, **_CITY),
}
