"""The population stage's data: event tables in (:func:`load_data`), vocabularies and windows
out (:func:`prepare_windows`); a finished run's windows rebuilt the same way
(:func:`run_windows`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pitune_tf.common.errors import UserInputError
from pitune_tf.data.event_stream import EventStream
from pitune_tf.data.features import encode_events
from pitune_tf.data.io import PARQUET_SUFFIXES, read_events, sort_events
from pitune_tf.data.schema import ReadStats, Schema
from pitune_tf.data.splits import split_users, split_windows
from pitune_tf.data.synthetic import generate
from pitune_tf.data.vocabularies import Vocabularies
from pitune_tf.data.window_stream import WindowPlan, stream_splits
from pitune_tf.data.windows import make_windows
from pitune_tf.population.population_config import PopulationConfig

logger = logging.getLogger(__name__)


def read_user_events(path, config: PopulationConfig):
    """The canonical events of ``path`` read with the run's mapping and schema
    (``config.data_schema``); rows dropped or mapped to ``other`` and hints are logged."""
    stats = ReadStats()
    df = read_events(path, config.mapping, Schema.from_dict(config.data_schema), stats)
    stats.warn(path)
    return df


def load_data(config: PopulationConfig, with_oracle=False):
    """``(population_df, individual_df or None)`` canonical event tables; with
    ``with_oracle``, a third item: the individual users' oracle tables by kind (``""``, the
    history oracle, and ``"context"``; ``pitune_tf.data.intent_oracle``) of the embedded
    synthetic data, None for files.

    With ``config.streaming`` the population is an :class:`EventStream` (scanned and
    checked here, read chunk by chunk later; the schema options do not apply). A population
    given as a directory of Parquet shards is read whole when not streaming."""
    oracle = None
    if not config.data:
        synthetic = generate(config.synthetic_preset, seed=config.seed, with_oracle=with_oracle,
                             **config.synthetic)
        population, individual = synthetic.population, synthetic.individual
        oracle = {"": synthetic.individual_oracle, "context": synthetic.individual_oracle_context}
        if config.streaming:
            population = EventStream(population, chunk_events=config.stream_chunk_events)
    elif len(config.data) == 2:
        if config.streaming:
            population = EventStream(config.data[0], config.mapping, config.stream_chunk_events)
        else:
            population = _read_events_or_shards(config.data[0], config)
        individual = read_user_events(config.data[1], config)
    else:
        df = read_user_events(config.data[0], config)
        population_users, individual_users = split_user_ids(df["user_id"], config)
        population = df[df["user_id"].isin(set(population_users))].reset_index(drop=True)
        individual = df[df["user_id"].isin(set(individual_users))].reset_index(drop=True)
        individual = individual if len(individual) else None
    return (population, individual, oracle) if with_oracle else (population, individual)


def split_user_ids(user_ids, config: PopulationConfig):
    """``(population users, individual users)`` of one events file's ``user_ids``:
    ``config.individual_users`` users, else the share ``config.individual_fraction``,
    drawn with ``config.seed``. A split without population users is a UserInputError; one
    leaving fewer than 2 users on a side is logged as a warning."""
    population, individual = split_users(user_ids, config.individual_fraction, config.seed,
                                         n_individual=config.individual_users)
    n = len(population) + len(individual)
    asked = (f"individual_users {config.individual_users}" if config.individual_users is not None
             else f"individual_fraction {config.individual_fraction:g}")
    if not len(population):
        raise UserInputError(f"{asked} leaves no population user to train on ({n} users in the "
                             "data): lower --individual-users / --individual-fraction")
    if len(population) < 2 or len(individual) < 2:
        logger.warning(
            "%s splits the data's %d users into %d population and %d individual user(s): "
            "fewer than 2 on a side (set --individual-users N or --individual-fraction F, or "
            "give the two groups as --data POPULATION INDIVIDUAL)", asked, n, len(population),
            len(individual))
    return population, individual


def _read_events_or_shards(path, config: PopulationConfig):
    """A canonical table from an events file or a directory of Parquet shards (each read by
    :func:`read_user_events`)."""
    path = Path(path)
    if not path.is_dir():
        return read_user_events(path, config)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in PARQUET_SUFFIXES)
    if not files:
        raise UserInputError(f"{path}: directory holds no Parquet shards (*.parquet)")
    return sort_events(pd.concat([read_user_events(f, config) for f in files], ignore_index=True))


def prepare_windows(config: PopulationConfig, population):
    """Vocabularies, population (train, val, test) windows, event->intent id map.

    ``population`` is a canonical DataFrame, or an :class:`EventStream` (streaming): then
    ``train`` is a :class:`~pitune_tf.data.window_stream.WindowStream` (the same rows,
    built chunk by chunk in every epoch) and validation and test are in memory, each a
    seeded subset of at most ``config.stream_eval_windows`` rows."""
    if isinstance(population, EventStream):
        vocabs = Vocabularies.from_counts(population.counts, slot_minutes=config.slot_minutes)
        plan = WindowPlan(vocabs, config.history, config.min_history, tuple(config.split))
        train, val, test, counts = stream_splits(
            population, plan, max_train=config.train_window_cap(),
            max_eval=config.stream_eval_windows, seed=config.seed)
    else:
        vocabs = Vocabularies.fit(population, slot_minutes=config.slot_minutes)
        encoded = encode_events(population, vocabs)
        train, val, test = _split_windows(encoded, config)
        train = train.subsample(config.train_window_cap(), config.seed)
        counts = np.zeros((len(vocabs.event), vocabs.n_intents), np.int64)
        np.add.at(counts, (encoded.event, encoded.intent), 1)
    if len(train) == 0 or len(test) == 0:
        raise UserInputError(
            f"the population data gives {len(train)} training and {len(test)} test windows; "
            "more events per user are needed"
        )
    # The event catalog's intent of each event id (its most frequent intent): the
    # "intent of the last event" baseline.
    event_intent = counts.argmax(axis=1).astype(np.int32)
    return vocabs, (train, val, test), event_intent


def _split_windows(encoded, config: PopulationConfig):
    """The (train, val, test) windows of encoded events, as the population stage cuts them
    (``config.history``, ``config.min_history``, ``config.split``)."""
    windows = make_windows(encoded, history=config.history, min_history=config.min_history)
    return split_windows(windows, fractions=tuple(config.split))


def run_windows(run, population=None, cap_train=True):
    """The (train, val, test) population windows of a finished run, rebuilt as in training.

    Args:
        run: :class:`pitune_tf.population.run_directory.Run` (``load_run``).
        population: canonical event table or None. None: the run's population loaded
            again (:func:`load_data` of its config; regenerated for the embedded synthetic
            data).
        cap_train: bool. Subsample the training windows as training did
            (``config.train_window_cap()``, ``config.seed``); False keeps them all.

    Returns:
        ``(train, val, test)`` :class:`~pitune_tf.data.windows.Windows`, encoded with the
        run's own vocabularies.
    """
    config = run.config
    if population is None:
        population, _ = load_data(config)
    train, val, test = _split_windows(encode_events(population, run.vocabs), config)
    if cap_train:
        train = train.subsample(config.train_window_cap(), config.seed)
    return train, val, test
