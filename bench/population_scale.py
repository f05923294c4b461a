"""The population stage's streamed data at scale: windows/s and peak RSS for 1M and 10M events.

Prints one JSON line. For each size, a synthetic population of that many events (the
``scale`` preset with fewer users for smaller sizes) is written as Parquet shards of 500
users (``generate_shards``, in its own process: ``generate_peak_rss_mb``), then a fresh
process measures, as ``trainers.population --streaming`` runs them:

- ``scan``: reading and checking every row, planning the chunks, counting the vocabularies;
- ``prepare``: one windowing pass counting every split's rows, then the validation and
  test windows collected (at most ``--eval-windows`` each, in memory);
- ``data_epoch``: one training epoch of the streamed ``tf.data`` pipeline alone (chunks read,
  encoded, windowed, split and shuffled, batches of 128): windows/s;
- ``teacher``: ``--max-steps`` training steps of the demo-size teacher (PITuning Eq. 5, the
  population stage's trainer) fed by that pipeline, timed after a 3-step warm-up, and the
  epoch time it extrapolates to (train windows / samples per second);
- ``peak_rss_mb``: the process's peak resident memory (``ru_maxrss``) after all of it.

Commands::

    python bench/population_scale.py                                  # 1M and 10M events
    python bench/population_scale.py --events 1000000 --max-steps 20 --work /tmp/scale
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

EVENTS_PER_USER = 28 * 40  # the scale preset: 28 days, 20-60 events a day
TARGET_RSS_MB = 4096


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux


def generate(n_events, directory: Path, seed=0) -> dict:
    from pitune_tf.data.synthetic import generate_shards

    users = max(1, round(n_events / EVENTS_PER_USER))
    start = time.perf_counter()
    info = generate_shards(directory, "scale", seed, users_per_shard=500,
                           n_population_users=users, n_individual_users=max(1, users // 9))
    return {"population_events": info["population_events"], "shards": len(info["shards"]),
            "generate_s": round(time.perf_counter() - start, 1),
            "generate_peak_rss_mb": peak_rss_mb()}


def measure(directory: Path, max_steps, eval_windows, batch_size=128) -> dict:
    from pitune_tf.common import environment  # noqa: F401
    from pitune_tf.common.keras import keras, tf
    from pitune_tf.data import Vocabularies
    from pitune_tf.data.event_stream import EventStream
    from pitune_tf.data.window_stream import WindowPlan, stream_splits
    from pitune_tf.models import build_teacher
    from pitune_tf.population import PopulationTrainer, preset
    from pitune_tf.population.training_loop import make_optimizer

    config = preset("demo")
    result = {}
    start = time.perf_counter()
    events = EventStream(directory / "population", chunk_events=config.stream_chunk_events)
    result["scan"] = {"events": len(events), "chunks": len(events.chunks),
                      "s": round(time.perf_counter() - start, 1)}
    start = time.perf_counter()
    vocabs = Vocabularies.from_counts(events.counts)
    plan = WindowPlan(vocabs, config.history, config.min_history, tuple(config.split))
    train, val, test, _ = stream_splits(events, plan, max_eval=eval_windows, seed=0)
    result["prepare"] = {"train": len(train), "val": len(val), "test": len(test),
                         "s": round(time.perf_counter() - start, 1)}
    result["peak_rss_mb_after_prepare"] = peak_rss_mb()

    start, n = time.perf_counter(), 0
    for _, labels in train.epoch_dataset(batch_size, seed=0):
        n += int(labels.shape[0])
    seconds = time.perf_counter() - start
    result["data_epoch"] = {"windows": n, "s": round(seconds, 1),
                            "windows_per_s": round(n / seconds)}
    result["peak_rss_mb_after_data_epoch"] = peak_rss_mb()

    keras.utils.set_random_seed(0)
    teacher = build_teacher(config, vocabs.sizes)
    trainer = PopulationTrainer(teacher, reconstruction=config.reconstruction,
                                passes=config.reconstruction_passes)
    trainer.compile(optimizer=make_optimizer(config.teacher_learning_rate, config.clipnorm))
    times = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    warmup = 3
    trainer.fit(train.epoch_dataset(batch_size, seed=0).take(max_steps + warmup),
                steps_per_epoch=max_steps + warmup, epochs=1, verbose=0, callbacks=[Clock()])
    step_s = (times[-1] - times[warmup - 1]) / max_steps
    samples_per_s = batch_size / step_s
    result["teacher"] = {
        "backbone": config.backbone, "params": int(teacher.count_params()),
        "steps": max_steps, "batch": batch_size, "step_s": round(step_s, 4),
        "samples_per_s": round(samples_per_s, 1),
        "epoch_s_extrapolated": round(len(train) / samples_per_s),
        "threads": tf.config.threading.get_intra_op_parallelism_threads() or None,
    }
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--max-steps", type=int, default=30, help="timed teacher steps (30)")
    parser.add_argument("--eval-windows", type=int, default=250_000,
                        help="most validation / test windows kept in memory (250000)")
    parser.add_argument("--work", default="/tmp/pitune_scale",
                        help="shard directories (kept: a second run reuses them)")
    parser.add_argument("--single", choices=["generate", "measure"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:
        directory = Path(args.work)
        if args.single == "generate":
            out = generate(args.events[0], directory)
        else:
            out = measure(directory, args.max_steps, args.eval_windows)
        print(json.dumps(out))
        return 0
    results = []
    for n in args.events:  # fresh processes: ru_maxrss is a lifetime peak
        directory = Path(args.work) / f"events_{n}"
        row = {"events_requested": n}
        done = directory / "done.json"
        if not done.is_file():
            row.update(_child("generate", n, directory, args))
            done.write_text(json.dumps(row))
        else:
            row.update(json.loads(done.read_text()))
        row.update(_child("measure", n, directory, args))
        results.append(row)
    print(json.dumps({
        "bench": "population_scale", "results": results, "target_peak_rss_mb": TARGET_RSS_MB,
        "meets_target": all(r["peak_rss_mb"] < TARGET_RSS_MB and
                            r["generate_peak_rss_mb"] < TARGET_RSS_MB for r in results),
    }))
    return 0


def _child(mode, n, directory, args) -> dict:
    cmd = [sys.executable, __file__, "--single", mode, "--events", str(n), "--work",
           str(directory), "--max-steps", str(args.max_steps), "--eval-windows",
           str(args.eval_windows)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
