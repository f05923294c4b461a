"""Benchmark of the window builder: windows per second and peak memory.

Prints one JSON line with, for 1M and 10M synthetic events (each size measured in its own
process, so peak RSS is per size): the time to fit the vocabularies, to encode the events
and to build the windows (L = 30), windows per second of the window builder alone and
end to end (encode + windows), and peak RSS.

The events are generated directly with numpy (users of ~1000 events each, 5000 events,
50 intents, 500 locations, one event every ~10 minutes), as a canonical table with
categorical string columns. Windows are built with ``iter_windows`` over groups of whole
users of ``--chunk-events`` events ("chunked": the windows of 10M events at L = 30 take 6 GB
as int32/float32 arrays, above the 4 GB target, so a 10M-event pipeline streams them), and,
up to ``--at-once-max`` events, also with one ``make_windows`` call ("at_once"). Wall times
and CPU times (user + system) are both given: on a shared machine the wall time is noisy.

    python bench/windows.py                      # 1M and 10M events
    python bench/windows.py --events 1000000     # one size
    python bench/windows.py --events 10000000 --at-once-max 10000000   # 10M at once (~7 GB)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from pitune_tf.data import Vocabularies, encode_events, make_windows
from pitune_tf.data.windows import iter_windows

HISTORY = 30


def synthetic_events(n_events: int, seed: int = 0, events_per_user: int = 1000) -> pd.DataFrame:
    """A canonical event table of ``n_events`` random events, built with numpy only."""
    rng = np.random.default_rng(seed)
    n_users = max(1, n_events // events_per_user)
    user = np.sort(rng.integers(0, n_users, n_events))
    gaps = rng.exponential(600.0, n_events).astype(np.int64) + 1
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    seconds = np.cumsum(gaps)
    seconds -= np.repeat(seconds[starts] - gaps[starts], np.diff(np.r_[starts, n_events]))
    seconds += 1_700_000_000
    event = rng.integers(0, 5000, n_events)
    users = [f"u{i:07d}" for i in range(n_users)]
    return pd.DataFrame(
        {
            "user_id": pd.Categorical.from_codes(user, categories=users),
            "timestamp": (seconds * 10**9).view("datetime64[ns]"),
            "event": pd.Categorical.from_codes(event, categories=[f"e{i}" for i in range(5000)]),
            "intent": pd.Categorical.from_codes(
                event % 50, categories=[f"i{i}" for i in range(50)]
            ),
            "location": pd.Categorical.from_codes(
                rng.integers(0, 500, n_events), categories=[f"l{i}" for i in range(500)]
            ),
        }
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn):
    wall, cpu = time.perf_counter(), cpu_s()
    result = fn()
    return result, time.perf_counter() - wall, cpu_s() - cpu


def count_windows(encoded, chunk_events: int) -> int:
    if len(encoded) <= chunk_events:
        return len(make_windows(encoded, history=HISTORY))
    total = 0
    for windows in iter_windows(encoded, history=HISTORY, max_events=chunk_events):
        total += len(windows)
        del windows
    return total


def measure(n_events: int, chunk_events: int, at_once_max: int) -> dict:
    df = synthetic_events(n_events)
    rss_data = peak_rss_mb()
    vocabs, fit_s, _ = timed(lambda: Vocabularies.fit(df))
    encoded, encode_s, encode_cpu = timed(lambda: encode_events(df, vocabs))
    result = {
        "events": n_events,
        "history": HISTORY,
        "fit_vocab_s": round(fit_s, 3),
        "encode_s": round(encode_s, 3),
        "encode_cpu_s": round(encode_cpu, 3),
    }
    modes = {"chunked": chunk_events}
    if n_events <= at_once_max:
        modes = {"at_once": n_events, **modes}
    for mode, chunk in modes.items():
        n_windows, wall, cpu = timed(lambda chunk=chunk: count_windows(encoded, chunk))
        result[mode] = {
            "chunk_events": chunk,
            "windows": n_windows,
            "window_s": round(wall, 3),
            "window_cpu_s": round(cpu, 3),
            "windows_per_s": round(n_windows / wall),
            "windows_per_cpu_s": round(n_windows / cpu),
            "windows_per_s_encode_and_window": round(n_windows / (wall + encode_s)),
        }
    result["peak_rss_mb_after_data"] = round(rss_data)
    result["peak_rss_mb"] = round(peak_rss_mb())
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--chunk-events", type=int, default=250_000, help="events per iter_windows group"
    )
    parser.add_argument(
        "--at-once-max",
        type=int,
        default=2_000_000,
        help="also time make_windows on all events up to this size",
    )
    parser.add_argument(
        "--no-hugepages",
        action="store_true",
        help="stop numpy from asking for transparent huge pages (costly page faults on some hosts)",
    )
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:
        if args.no_hugepages:
            np._core.multiarray._set_madvise_hugepage(False)
        print(json.dumps(measure(args.events[0], args.chunk_events, args.at_once_max)))
        return 0
    results = []
    for n in args.events:  # a fresh process per size: ru_maxrss is a lifetime peak
        cmd = [sys.executable, __file__, "--single", "--events", str(n)]
        cmd += ["--chunk-events", str(args.chunk_events), "--at-once-max", str(args.at_once_max)]
        cmd += ["--no-hugepages"] if args.no_hugepages else []
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    targets = {"windows_per_s": 2_000_000, "peak_rss_mb": 4096}
    big = results[-1]["chunked"]
    print(
        json.dumps(
            {
                "bench": "windows",
                "results": results,
                "target": targets,
                "hugepages": not args.no_hugepages,
                "meets_target": big["windows_per_s"] >= targets["windows_per_s"]
                and results[-1]["peak_rss_mb"] < targets["peak_rss_mb"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
