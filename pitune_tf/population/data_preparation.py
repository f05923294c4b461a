"""The population stage's data: event tables in, vocabularies and windows out."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.errors import UserInputError
from pitune_tf.population.population_config import PopulationConfig


def read_user_events(path, config: PopulationConfig):
    """The canonical events of ``path`` read with the run's mapping and schema
    (``config.data_schema``); rows dropped or mapped to ``other`` and hints are logged."""
    from pitune_tf.data import read_events
    from pitune_tf.data.schema import ReadStats, Schema

    stats = ReadStats()
    df = read_events(path, config.mapping, Schema.from_dict(config.data_schema), stats)
    stats.warn(path)
    return df


def load_data(config: PopulationConfig, with_oracle=False):
    """``(population_df, individual_df or None)`` canonical event tables; with
    ``with_oracle``, a third item: the individual users' oracle table
    (``pitune_tf.data.intent_oracle``) of the embedded synthetic data, None for files."""
    from pitune_tf.data import split_users

    oracle = None
    if not config.data:
        from pitune_tf.data.synthetic import generate

        synthetic = generate(config.synthetic_preset, seed=config.seed, with_oracle=with_oracle)
        population, individual = synthetic.population, synthetic.individual
        oracle = synthetic.individual_oracle
    elif len(config.data) == 2:
        population = read_user_events(config.data[0], config)
        individual = read_user_events(config.data[1], config)
    else:
        df = read_user_events(config.data[0], config)
        population_users, individual_users = split_users(
            df["user_id"], config.individual_fraction, config.seed
        )
        population = df[df["user_id"].isin(set(population_users))].reset_index(drop=True)
        individual = df[df["user_id"].isin(set(individual_users))].reset_index(drop=True)
        individual = individual if len(individual) else None
    return (population, individual, oracle) if with_oracle else (population, individual)


def prepare_windows(config: PopulationConfig, population):
    """Vocabularies, population (train, val, test) windows, event->intent id map."""
    from pitune_tf.data import Vocabularies, encode_events, make_windows, split_windows

    vocabs = Vocabularies.fit(population, slot_minutes=config.slot_minutes)
    encoded = encode_events(population, vocabs)
    windows = make_windows(encoded, history=config.history, min_history=config.min_history)
    train, val, test = split_windows(windows, fractions=tuple(config.split))
    if len(train) == 0 or len(test) == 0:
        raise UserInputError(
            f"the population data gives {len(train)} training and {len(test)} test windows; "
            "more events per user are needed"
        )
    train = train.subsample(config.train_window_cap(), config.seed)
    # The event catalog's intent of each event id (its most frequent intent): the
    # "intent of the last event" baseline.
    counts = np.zeros((len(vocabs.event), vocabs.n_intents), np.int64)
    np.add.at(counts, (encoded.event, encoded.intent), 1)
    event_intent = counts.argmax(axis=1).astype(np.int32)
    return vocabs, (train, val, test), event_intent


def run_windows(run):
    """The (train, val, test) population windows of a finished run (``load_run``): its data
    loaded again (regenerated for the embedded synthetic data) and encoded with the run's
    own vocabularies, split and subsampled as in training."""
    from pitune_tf.data import encode_events, make_windows, split_windows

    config = run.config
    population, _ = load_data(config)
    encoded = encode_events(population, run.vocabs)
    windows = make_windows(encoded, history=config.history, min_history=config.min_history)
    train, val, test = split_windows(windows, fractions=tuple(config.split))
    return train.subsample(config.train_window_cap(), config.seed), val, test
