"""A tiny population run directory for the individual-stage tests, built without training
(random tiny teacher and student), so the tests do not wait for trainers.population."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np


def make_tiny_run(directory, n_users=4, seed=0, with_teacher=True) -> Path:
    """Writes config.json, vocab.json, student.keras, teacher/, p_out.json,
    data/individual.parquet and its user oracle data/individual_oracle.parquet for a tiny
    synthetic world; returns the directory."""
    from pitune_tf.common.atomic import write_json
    from pitune_tf.common.keras import keras
    from pitune_tf.data import Vocabularies, write_events
    from pitune_tf.data.intent_oracle import oracle_path, write_oracle
    from pitune_tf.data.synthetic import generate
    from pitune_tf.models import build_student, build_teacher
    from pitune_tf.models.teacher_io import save_teacher
    from pitune_tf.population import PopulationConfig

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    data = generate("tiny", seed=seed, n_individual_users=n_users, n_days=8,
                    events_per_day=(8, 12))
    vocabs = Vocabularies.fit(data.population)
    config = PopulationConfig(
        backbone="random:1x16", history=6, student_layers=1, student_width=16, student_heads=2,
        attention_units=[8], head_units=8, reconstruction=False, seed=seed,
    )
    write_json(directory / "config.json", dataclasses.asdict(config))
    vocabs.save(directory)
    build_student(config, vocabs.sizes).save(directory / "student.keras")
    if with_teacher:
        save_teacher(build_teacher(config, vocabs.sizes), directory / "teacher")
    n = vocabs.n_intents
    labels = vocabs.intent.encode(data.population["intent"])
    p_pop = np.bincount(labels, minlength=n)[:n] / len(labels)
    p_out = p_pop.copy()
    p_out[int(np.argmin(np.where(p_pop > 0, p_pop, 1.0)))] = 1e-4  # one statically forgotten intent
    (directory / "p_out.json").write_text(json.dumps(
        {"intents": vocabs.intent.tokens, "p_out": p_out.tolist(), "p_pop": p_pop.tolist()}))
    (directory / "data").mkdir(exist_ok=True)
    write_events(data.individual, directory / "data" / "individual.parquet")
    write_oracle(data.individual_oracle, oracle_path(directory / "data" / "individual.parquet"))
    write_oracle(data.individual_oracle_context,
                 oracle_path(directory / "data" / "individual.parquet", kind="context"))
    return directory
