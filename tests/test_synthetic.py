"""Synthetic event logs: deterministic, canonical, long-tailed, context-dependent, fast; the
user oracle beside each log."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.errors import UserInputError
from pitune_tf.data.synthetic import SyntheticConfig, generate

COLUMNS = ["user_id", "timestamp", "event", "intent", "location"]


@pytest.fixture(scope="module")
def tiny():
    return generate("tiny", seed=0)


def _total_variation(a, b):
    a, b = a.align(b, fill_value=0.0)
    return 0.5 * float((a - b).abs().sum())


def test_deterministic_for_a_seed(tiny):
    again = generate("tiny", seed=0)
    pd.testing.assert_frame_equal(tiny.population, again.population)
    pd.testing.assert_frame_equal(tiny.individual, again.individual)
    assert tiny.mapping == again.mapping and tiny.longtail == again.longtail
    other = generate("tiny", seed=1)
    assert not other.population.equals(tiny.population)


def test_canonical_frames(tiny):
    for frame in (tiny.population, tiny.individual):
        assert list(frame.columns) == COLUMNS
        assert frame["timestamp"].dtype == np.dtype("datetime64[ns]")
        for column in ("user_id", "event", "intent", "location"):
            assert pd.api.types.is_string_dtype(frame[column]), column
            assert frame[column].notna().all()
        ordered = frame.sort_values(["user_id", "timestamp"], kind="stable")
        assert ordered.index.equals(frame.index)
        assert not frame.duplicated(["user_id", "timestamp"]).any()
        # the intent column agrees with the event -> intent mapping
        assert (frame["event"].map(tiny.mapping) == frame["intent"]).all()
    assert not set(tiny.population.user_id) & set(tiny.individual.user_id)
    config = tiny.config
    assert tiny.population.user_id.nunique() == config.n_population_users
    assert tiny.individual.user_id.nunique() == config.n_individual_users
    days = tiny.population.timestamp.dt.normalize().nunique()
    assert days == config.n_days >= 12  # enough for the 7/1/4-day split
    assert len(set(tiny.mapping.values())) == config.n_intents
    assert len(tiny.mapping) > config.n_intents  # several events per intent


def test_tiny_is_small():
    data = generate("tiny", seed=2)  # about 0.1 s on an idle core (no timing assertion: shared CI)
    n_events = len(data.population) + len(data.individual)
    assert 5_000 < n_events < 20_000
    per_user_day = data.population.groupby(
        [data.population.user_id, data.population.timestamp.dt.date]
    ).size()
    assert 15 < per_user_day.mean() < 65


def test_long_tail_individual_preferences(tiny):
    """Figure 1: some individual users' favourite intent is rare in the population."""
    n_intents = tiny.config.n_intents
    population_share = tiny.population.intent.value_counts(normalize=True)
    # the population's intent distribution is long-tailed
    assert population_share.iloc[0] > 2.0 / n_intents
    assert population_share.iloc[-1] < 0.5 / n_intents
    favourite = tiny.individual.groupby("user_id").intent.agg(lambda s: s.value_counts().idxmax())
    rare_favourites = [
        u for u, intent in favourite.items() if population_share[intent] < 1 / n_intents
    ]
    assert rare_favourites
    assert set(rare_favourites) <= set(tiny.longtail)


def test_next_intent_depends_on_context_and_history(tiny):
    frame = pd.concat([tiny.population, tiny.individual])
    hour = frame.timestamp.dt.hour
    morning = frame.intent[(hour >= 6) & (hour < 12)].value_counts(normalize=True)
    evening = frame.intent[(hour >= 18)].value_counts(normalize=True)
    assert _total_variation(morning, evening) > 0.1
    weekend = frame.timestamp.dt.dayofweek >= 5
    assert (
        _total_variation(
            frame.intent[weekend].value_counts(normalize=True),
            frame.intent[~weekend].value_counts(normalize=True),
        )
        > 0.05
    )
    home = frame.location.str.startswith("home")
    assert (
        _total_variation(
            frame.intent[home].value_counts(normalize=True),
            frame.intent[~home].value_counts(normalize=True),
        )
        > 0.1
    )
    # Markov component: after the most common intent, the next intent is distributed differently
    previous = frame.groupby("user_id").intent.shift(1)
    top = frame.intent.value_counts().index[0]
    after_top = frame.intent[previous == top].value_counts(normalize=True)
    assert _total_variation(after_top, frame.intent.value_counts(normalize=True)) > 0.1
    assert 0.0 < tiny.oracle_accuracy["population"] <= 1.0


def test_overrides_and_errors():
    data = generate("tiny", seed=0, n_days=13, n_individual_users=2)
    assert data.individual.user_id.nunique() == 2
    assert data.population.timestamp.dt.normalize().nunique() == 13
    with pytest.raises(UserInputError, match="unknown option"):
        generate("tiny", n_dayz=3)
    with pytest.raises(UserInputError, match="unknown preset"):
        generate("huge")
    with pytest.raises(UserInputError, match="longtail_fraction"):
        generate("tiny", longtail_fraction=1.5)
    assert SyntheticConfig.from_preset("demo") == SyntheticConfig()


# sha256 of the tiny logs (seed 0) as CSV, recorded before the user oracle was added: the oracle
# only keeps what the Markov-chain loop computes and draws no random number.
TINY_LOG_SHA256 = {
    "population": "611869abbc0447945d2e407e326e497a692273b86e6ab1925d429eba8250de74",
    "individual": "db1f5968ecd498630deea7ce4c1ebfadad238800fb724f833a1335c8ac14d84b",
}


def test_logs_do_not_depend_on_the_oracle(tiny):
    without = generate("tiny", seed=0, with_oracle=False)
    assert without.population_oracle is None and without.individual_oracle is None
    for name, digest in TINY_LOG_SHA256.items():
        frame = getattr(tiny, name)
        pd.testing.assert_frame_equal(frame, getattr(without, name))
        assert hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest() == digest, name
    assert tiny.oracle_accuracy == without.oracle_accuracy


@pytest.mark.parametrize("name", ["population", "individual"])
def test_oracle_is_each_events_next_intent_distribution(tiny, name):
    log, history = getattr(tiny, name), getattr(tiny, f"{name}_oracle")
    oracle = getattr(tiny, f"{name}_oracle_context")
    assert list(history.columns) == ["user_id", "timestamp", *tiny.intents]
    history_probs = history[tiny.intents].to_numpy()
    np.testing.assert_allclose(history_probs.sum(axis=1), 1.0, atol=1e-5)
    assert list(oracle.columns) == ["user_id", "timestamp", *tiny.intents]
    pd.testing.assert_frame_equal(oracle[["user_id", "timestamp"]], log[["user_id", "timestamp"]])
    probs = oracle[tiny.intents].to_numpy()
    assert probs.dtype == np.float32 and (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    intent = pd.Categorical(log["intent"], categories=tiny.intents).codes
    assert np.mean(probs.argmax(axis=1) == intent) == tiny.oracle_accuracy[name]
    # the repeat term: after a user's first event, the previous intent has P >= repeat_prob
    previous = pd.Series(intent).groupby(log["user_id"].to_numpy()).shift(1).to_numpy()
    later = ~np.isnan(previous)
    p_previous = probs[np.flatnonzero(later), previous[later].astype(int)]
    assert (p_previous >= tiny.config.repeat_prob - 1e-6).all()
    # the oracle knows more than the population's intent frequencies
    frequency = tiny.population["intent"].value_counts(normalize=True)[tiny.intents].to_numpy()
    rows = np.arange(len(intent))
    assert np.log(probs[rows, intent]).mean() > np.log(frequency[intent]).mean() + 0.5
    # the history oracle knows less than the context oracle, more than the frequencies
    history_ll = np.log(history_probs[rows, intent]).mean()
    assert np.log(frequency[intent]).mean() < history_ll < np.log(probs[rows, intent]).mean()


def test_synth_command_offers_every_preset():
    """``synth --preset`` reads its choices from PRESETS; ``large`` is the demo's world with
    more population users."""
    from pitune_tf.data.__main__ import build_parser
    from pitune_tf.data.synthetic_config import PRESETS

    synth = next(a for a in build_parser()._subparsers._group_actions[0].choices["synth"]._actions
                 if a.dest == "preset")
    assert list(synth.choices) == sorted(PRESETS) and "large" in synth.choices
    large, demo = SyntheticConfig.from_preset("large"), SyntheticConfig()
    assert large.n_population_users >= 3 * demo.n_population_users
    assert large.to_dict() == {**demo.to_dict(), "n_population_users": large.n_population_users}
