"""Benchmark of PITuning's individual stage: time to personalize one user on the CPU.

Prints one JSON line with:
- ``seconds_per_user``: adaptive unlearning (``--unlearn-steps`` PITuning Eq. 11 steps) plus
  fine-tuning (``--epochs`` epochs, no early stop) of one user, at the demo student size
  (2 x 64) and the paper's (4 x 768, Table 4; random weights), on ``--train-windows``
  training windows per user (L = 30, batch 32), mean over ``--users`` (demo) or
  ``--paper-users`` users after a small warm-up user (the tracing), with the separate
  unlearning and fine-tuning times;
- ``seconds_per_method``: seconds per user of each method of the personalization loop
  (none, prior, finetune, pituning, focal, oversample) on the same users;
- ``users_per_minute``: the same per-user work through ``pitune_tf.individual.user_pool.run_users``
  at the demo size with 1 and with 2 worker processes (process start-up included).

Data: the synthetic "demo" world. Wall times on a shared CPU are noisy: read them as a rough
figure.

    python bench/individual.py
    python bench/individual.py --users 4 --train-windows 200 --sizes demo
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

# Run as ``python bench/individual.py``, this folder comes first on sys.path: put the
# repository root there instead.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np

from pitune_tf.common.keras import keras, tf
from pitune_tf.individual.methods import TEACHER_METHODS

SIZES = {"demo": (2, 64, 2), "paper": (4, 768, 12)}  # layers, width, heads


def write_random_run(directory, data, layers, width, heads, seed=0):
    """A population run directory with a random student of the given size (no teacher)."""
    from pitune_tf.common.atomic import write_json
    from pitune_tf.data import Vocabularies, write_events
    from pitune_tf.models import build_student
    from pitune_tf.population import PopulationConfig

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    vocabs = Vocabularies.fit(data.population)
    config = PopulationConfig(student_layers=layers, student_width=width, student_heads=heads)
    write_json(directory / "config.json", dataclasses.asdict(config))
    vocabs.save(directory)
    build_student(config, vocabs.sizes).save(directory / "student.keras")
    labels = vocabs.intent.encode(data.population["intent"])
    p_pop = np.bincount(labels, minlength=vocabs.n_intents) / len(labels)
    write_json(directory / "p_out.json", {"intents": vocabs.intent.tokens,
                                          "p_out": p_pop.tolist(), "p_pop": p_pop.tolist()})
    write_events(data.individual, directory / "data" / "individual.parquet")
    return directory


def load_users(run_dir, n_users, train_windows):
    from pitune_tf.data import read_events
    from pitune_tf.individual.user_data import prepare_users
    from pitune_tf.population import load_run

    run = load_run(run_dir)
    df = read_events(run.individual_data_path)
    users, _ = prepare_users(df, run.vocabs, history=run.config.history,
                             slot_minutes=run.config.slot_minutes)
    users = users[:n_users]
    for user in users:  # a fixed workload per user: the most recent train_windows windows
        keep = np.arange(max(len(user.train) - train_windows, 0), len(user.train))
        user.train = user.train.take(keep)
        user.train_event_index = user.train_event_index[keep]
    return users


def time_users(run_dir, config, users):
    import random

    from pitune_tf.individual.backends import build_engine
    from pitune_tf.individual.engine import start_user_result, user_seed
    from pitune_tf.population import load_run

    engine = build_engine(load_run(run_dir), config)
    warm = users[0]  # warm-up on a small copy of the first user: traces the steps
    warm.train = warm.train.take(np.arange(min(len(warm.train), config.batch_size)))
    warm.val = warm.val.take(np.arange(min(len(warm.val), 8)))
    engine.run_user(warm, ["pituning"])
    totals, unlearn, finetune = [], [], []
    for user in users[1:]:
        engine.backend.reset()
        random.seed(user_seed(config.seed, user.user))
        sets_start = time.perf_counter()
        sets, _ = start_user_result(user, engine.run, engine.n_intents, config.static_threshold)
        start = time.perf_counter()
        engine.unlearn(user, sets)
        middle = time.perf_counter()
        engine.fit(user.train, user.val, 0)
        end = time.perf_counter()
        unlearn.append(middle - start)
        finetune.append(end - middle)
        totals.append(end - sets_start)
    by_method = {}  # every method of the loop on each timed user (the runner's own clock)
    methods = [m for m in engine.methods if m not in TEACHER_METHODS]
    for user in users[1:]:
        for method, entry in engine.run_user(user, methods)["methods"].items():
            by_method.setdefault(method, []).append(entry["info"]["seconds"])
    return {"seconds": float(np.mean(totals)), "unlearn_seconds": float(np.mean(unlearn)),
            "finetune_seconds": float(np.mean(finetune)),
            "seconds_per_method": {m: float(np.mean(v)) for m, v in by_method.items()},
            "parameters": int(engine.backend.network.count_params())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=3, help="timed users at the demo size")
    p.add_argument("--paper-users", type=int, default=1, help="timed users at the paper size")
    p.add_argument("--train-windows", type=int, default=128, help="training windows per user")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--unlearn-steps", type=int, default=10)
    p.add_argument("--sizes", default="demo,paper", help="comma-separated: demo, paper")
    p.add_argument("--throughput-users", type=int, default=16, help="users for users/minute")
    args = p.parse_args(argv)

    from pitune_tf.data.synthetic import generate
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.user_pool import run_users

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    data = generate("demo", seed=0)
    config = IndividualConfig(methods=("pituning",), max_epochs=args.epochs,
                              patience=args.epochs, unlearn_steps=args.unlearn_steps)
    result = {"bench": "individual", "machine": platform.machine(), "cpus": os.cpu_count(),
              "threads_per_process": 1, "train_windows": args.train_windows, "epochs": args.epochs,
              "unlearn_steps": args.unlearn_steps, "history": 30, "batch_size": config.batch_size,
              "seconds_per_user": {}, "users_per_minute": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
            layers, width, heads = SIZES[size]
            run_dir = write_random_run(Path(tmp) / size, data, layers, width, heads)
            n_users = args.paper_users if size == "paper" else args.users
            users = load_users(run_dir, n_users + 1, args.train_windows)
            result["seconds_per_user"][f"{size} ({layers}x{width})"] = time_users(run_dir, config, users)
        run_dir = Path(tmp) / "demo"
        if not run_dir.exists():
            run_dir = write_random_run(run_dir, data, *SIZES["demo"])
        users = load_users(run_dir, args.throughput_users, args.train_windows)
        for workers in (1, 2):
            start = time.perf_counter()
            run_users(run_dir, config, users, workers=workers, progress=False)
            result["users_per_minute"][str(workers)] = len(users) / (time.perf_counter() - start) * 60
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
