"""What an app needs beside the ``.tflite`` files: ``labels.txt`` (the intent of each output
index), ``vocab.json`` (the run's vocabularies) and ``preprocessing.json`` (how to build a
window from raw events, and P_pop, P_out and the static threshold of PITuning Eq. 8-10, so the
app computes the forget / retain masks of ``unlearn`` itself), and, when converted with
``--train-part-rule``, ``train_part_rule.json`` (which part each user fine-tunes, and whether
unlearning runs, chosen on the phone before training: ``--train-part auto``). ``preprocessing.json`` also
carries how the run's own log was read (``source_log``: the run's ``data_schema``, its time
zone and the repeat merge gap among them). No bundle file names a path of the converting
machine.

The rules written in ``preprocessing.json`` are the library's own
(``pitune_tf.data.features``, ``pitune_tf.data.windows.make_next_windows``,
``pitune_tf.individual.manage_intents``); ``tests/test_phone_bundle.py`` rebuilds windows and
masks from the JSON alone and checks them against the library.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pitune_tf.common.atomic import write_text
from pitune_tf.common.vocabulary import PAD_ID, RESERVED_IDS
from pitune_tf.data.features import _DAY_SECONDS, _EPOCH_WEEKDAY, N_WEEKDAY_IDS, n_slot_ids
from pitune_tf.data.io import NO_LOCATION
from pitune_tf.data.windows import FEATURE_KEYS, STREAM_KEYS
from pitune_tf.individual.individual_config import IndividualConfig
from pitune_tf.individual.manage_intents import DEFAULT_STATIC_FRACTION
from pitune_tf.individual.train_part_rule import TrainPartRule
from pitune_tf.models.train_parts import train_parts

LABELS_FILE = "labels.txt"
PREPROCESSING_FILE = "preprocessing.json"
VOCAB_FILE = "vocab.json"
RULE_FILE = "train_part_rule.json"  # with tflite.convert --train-part-rule
BUNDLE_FILES = (LABELS_FILE, VOCAB_FILE, PREPROCESSING_FILE, RULE_FILE)
FORMAT_VERSION = 1


def preprocessing_spec(run, history, batch_size=None, static_threshold=None) -> dict:
    """The content of ``preprocessing.json`` for a population run.

    Args:
        run: :class:`pitune_tf.population.run_directory.Run`.
        history: int. The window length ``L`` of the converted model.
        batch_size: int or None. The fixed batch of the ``train`` / ``unlearn`` signatures.
        static_threshold: float or None. Eq. 8's epsilon; None: the individual stage's default
            ``DEFAULT_STATIC_FRACTION / N_I``.
    """
    vocabs = run.vocabs
    n_intents = vocabs.n_intents
    real = [i for i in range(n_intents) if i not in RESERVED_IDS]
    if static_threshold is None:
        static_threshold = DEFAULT_STATIC_FRACTION / len(real)
    slot_minutes = int(vocabs.slot_minutes)
    defaults = IndividualConfig()
    schema = run.log_schema()

    def vocabulary(name, vocab, extra=None):
        return {"key": name, "size": len(vocab),
                "reserved": {token: i for i, token in enumerate(vocab.reserved)},
                "unknown_id": vocab.unk_id, **(extra or {})}

    return {
        "format": "pitune-preprocessing",
        "version": FORMAT_VERSION,
        "history": int(history),
        "model_inputs": list(FEATURE_KEYS),
        "input_dtypes": {**{k: "int32" for k in STREAM_KEYS}, "mask": "float32"},
        "window": {
            "events": "the user's last `history` events before the predicted one (across "
                      "days), oldest first; to predict the next event: the newest `history`",
            "padding": "left",
            "pad_id": PAD_ID,
            "pad_mask": 0.0,
            "real_mask": 1.0,
            "newest_position": int(history) - 1,
        },
        "time": {
            "timestamp": "t = seconds since 1970-01-01T00:00 of the event's LOCAL wall-clock "
                         "time read as UTC (Kotlin: LocalDateTime.toEpochSecond(ZoneOffset.UTC))",
            "day_seconds": _DAY_SECONDS,
            "weekday": {
                "rule": "((floor(t / day_seconds) + epoch_weekday) mod 7) + 1",
                "epoch_weekday": _EPOCH_WEEKDAY,
                "ids": "1 = Monday ... 7 = Sunday",
                "n_ids": N_WEEKDAY_IDS,
            },
            "slot": {
                "rule": "floor((t mod day_seconds) / (60 * slot_minutes)) + 1",
                "slot_minutes": slot_minutes,
                "n_ids": n_slot_ids(slot_minutes),
            },
        },
        "source_log": {
            **dataclasses.asdict(schema),
            "note": "how the run's own log was read (pitune_tf.data.schema; the run's "
                    "config.json data_schema), and python -m pitune_tf.predict --events by "
                    "default: columns (canonical name -> the log's column), time_unit, "
                    "timezone (unix times became its wall-clock time: the local time above), "
                    "unmapped",
            "merge_gap": "merge_gap_s not null: a record repeating its user's previous event "
                         "and location at most merge_gap_s seconds later is dropped before "
                         "windows are built",
        },
        "vocabularies": {
            "file": VOCAB_FILE,
            "lookup": "id = index of the token in the file's list; a token not in the list (or "
                      "a reserved token as a value) -> unknown_id",
            "event": vocabulary("event", vocabs.event),
            "location": vocabulary("location", vocabs.location, {
                "no_location_token": NO_LOCATION,
                "no_location": "an event without a location looks up no_location_token"}),
        },
        "labels": {
            "file": LABELS_FILE,
            "n_intents": n_intents,
            "reserved_ids": list(RESERVED_IDS),
            "output": "probabilities[i] (and logits[i]) belong to line i (0-based) of the file; "
                      "reserved ids are never predicted or trained on",
        },
        "manage_intents": {
            "paper": "PITuning Eq. 8-10 (pitune_tf.individual.manage_intents)",
            "p_pop": [float(x) for x in run.p_pop],
            "p_out": [float(x) for x in run.p_out],
            "static_threshold": float(static_threshold),
            "real_intent_ids": real,
            "rules": {
                "normalize": "P_out, P_pop and P_in are each divided by their sum over the real "
                             "intents; reserved ids are 0",
                "p_in": "share of each intent among the user's training labels",
                "mean_share": "1 / len(real_intent_ids)",
                "static": "Eq. 8: P_out[i] < static_threshold",
                "dynamic": "Eq. 9: P_pop[i] < mean_share and P_in[i] > mean_share",
                "forget": "Eq. 10: static or dynamic -> forget_mask[i] = 1",
                "retain": "every other real intent -> retain_mask[i] = 1",
            },
        },
        "personalization": {
            "batch_size": None if batch_size is None else int(batch_size),
            "learning_rate": defaults.learning_rate,
            "max_epochs": defaults.max_epochs,
            "patience": defaults.patience,
            "lam": defaults.lam,
            "unlearn_steps": defaults.unlearn_steps,
            "unlearn_learning_rate": defaults.unlearn_learning_rate,
            "note": "defaults of trainers.individual (pitune_tf.individual.individual_config)",
        },
        "weights_file": {
            "header": "little-endian: 4-byte magic 'PTWT', uint32 version 1, uint64 count P, "
                      "uint32 CRC-32 of the data",
            "data": "P float32 little-endian: the get_weights vector (the student's trainable "
                    "variables, each flattened row-major, in order)",
        },
    }


def bundle_contents(run, history, batch_size=None, static_threshold=None,
                    train_part_rule=None) -> dict[str, str]:
    """{file name: text} of the bundle: labels, vocabularies, preprocessing, and with
    ``train_part_rule`` (a :class:`pitune_tf.individual.train_part_rule.TrainPartRule` file)
    that rule, which the app reads to choose each user's train part before training
    (``--train-part auto``); a rule naming a part the student lacks is a UserInputError."""
    spec = preprocessing_spec(run, history, batch_size, static_threshold)
    contents = {
        LABELS_FILE: "".join(f"{token}\n" for token in run.vocabs.intent.tokens),
        VOCAB_FILE: json.dumps(run.vocabs.to_json(), indent=2) + "\n",
        PREPROCESSING_FILE: json.dumps(spec, indent=2) + "\n",
    }
    if train_part_rule is not None:
        TrainPartRule.load(train_part_rule).check_parts(train_parts(run.student), train_part_rule)
        contents[RULE_FILE] = Path(train_part_rule).read_text(encoding="utf-8")
    return contents


def write_bundle(contents: dict, out_dir) -> dict:
    """Writes each file of :func:`bundle_contents` into ``out_dir`` atomically; returns
    {name: path}."""
    out_dir = Path(out_dir)
    paths = {}
    for name, text in contents.items():
        write_text(out_dir / name, text)
        paths[name] = out_dir / name
    return paths
