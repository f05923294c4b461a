"""Benchmark of the quickstart's first command: wall time and peak memory of the whole
journey (``python -m trainers.pipeline``: population stage, phone bundle, on-device
personalization through LiteRT, predictions, report), against its budget of 5 minutes and
1.5 GB on a 2-core machine.

Prints one JSON line with:
- ``wall_s``: the pipeline's wall time (the install excluded) and ``stages_s``, each stage's;
- ``install_s`` (with ``--install``): ``python3.11 -m venv V && V/bin/pip install -e .`` in a
  fresh clone of this checkout's HEAD, timed apart (the pipeline then runs in that venv);
- ``peak_rss_mb``: the largest sum of the resident memory of the pipeline's process tree,
  sampled every 0.2 s from /proc, ``peak_process_rss_mb``, the largest single process's, and
  ``peak_rss_by_process_mb``, each process's peak by the module it runs (each stage);
- ``bundle_train_step``: the bundle loaded in LiteRT, its signatures, and one step of its
  ``train`` signature on the example user's window (loss, weights changed);
- ``within_budget``; ``load_start`` / ``load_end``: the 1-minute load average (the machine's
  other work; 2 cores), and ``matmul_gflops``, the machine's float32 matmul peak measured
  right after (how fast this machine is, to compare runs across machines).

    python bench/quickstart.py                 # this checkout and its venv
    python bench/quickstart.py --install       # a fresh clone and venv, install timed apart
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 300.0
BUDGET_RSS_MB = 1536.0


# The phone bundle of the run, loaded in LiteRT: one step of its ``train`` signature on the
# example user's newest window (the label: the intent predicted first), the loss and whether
# the weights moved.
TRAIN_ONCE = """
import json, sys
import numpy as np
import pandas as pd
from pitune_tf.prediction import NextIntentPredictor
from tflite.runtime import Runtime
run = sys.argv[1]
runtime = Runtime(run + "/student.tflite", backend="litert")
predictor = NextIntentPredictor.from_run(run, model=run + "/student.tflite", backend="litert")
windows = predictor.next_windows(run + "/data/example_user.csv")
label = predictor.intents.index(pd.read_csv(run + "/predictions.csv")["intent"][0])
before = runtime.get_weights()
loss = runtime.train(windows.features(), np.array([label], np.int32), learning_rate=1e-3)
print(json.dumps({"signatures": sorted(runtime.signatures), "loss": float(loss),
                  "weights_changed": bool(not np.allclose(before, runtime.get_weights()))}))
"""


def tree_rss_kb(pid) -> tuple[int, dict[int, int]]:
    """The resident set size in KiB of ``pid`` and its descendants (Linux /proc): the sum and
    {pid: rss}."""
    children = {}
    rss = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/statm") as f:
                pages = int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(children.get(p, []))
    each = {p: rss.get(p, 0) for p in seen}
    return sum(each.values()), each


def process_name(pid) -> str:
    """The module a ``python -m module`` process runs (else its first argument)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    return argv[argv.index("-m") + 1] if "-m" in argv[:-1] else Path(argv[0]).name


def run_sampled(cmd, cwd, env=None) -> dict:
    """Runs ``cmd``, sampling its process tree's memory; its output goes to a log file."""
    log = Path(tempfile.mkstemp(prefix="quickstart-", suffix=".log")[1])
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak_sum, by_process = 0, {}
        while proc.poll() is None:
            total, each = tree_rss_kb(proc.pid)
            peak_sum = max(peak_sum, total)
            for pid, kb in each.items():
                name = process_name(pid)
                by_process[name] = max(by_process.get(name, 0), kb)
            time.sleep(0.2)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"error: {' '.join(map(str, cmd))} exited {proc.returncode}; see {log}")
    return {"wall_s": wall, "peak_rss_mb": peak_sum / 1024,
            "peak_process_rss_mb": max(by_process.values(), default=0) / 1024,
            "by_process": {k: round(v / 1024) for k, v in by_process.items()}, "log": str(log)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install", action="store_true",
                        help="fresh clone of HEAD and a fresh venv, the install timed apart")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="quickstart-") as tmp:
        result = {"bench": "quickstart", "cpus": os.cpu_count(), "load_start": os.getloadavg()[0]}
        cwd, python = ROOT, sys.executable
        if args.install:
            cwd = Path(tmp) / "clone"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(cwd)], check=True)
            start = time.perf_counter()
            subprocess.run("python3.11 -m venv .venv && .venv/bin/pip install -q -e .",
                           shell=True, cwd=cwd, check=True)
            result["install_s"] = round(time.perf_counter() - start, 1)
            python = str(cwd / ".venv" / "bin" / "python")
        out = Path(tmp) / "demo"
        measured = run_sampled([python, "-m", "trainers.pipeline", "--out", str(out)], cwd)
        result["load_end"] = os.getloadavg()[0]
        stages = json.loads((out / "pipeline_timings.json").read_text())
        bundle = subprocess.run([python, "-c", TRAIN_ONCE, str(out)], cwd=cwd,
                                capture_output=True, text=True)
        peak = subprocess.run(
            [python, "-c", "from pitune_tf.benchmarking import matmul_peak_flops as m; "
                           "print(m() / 1e9)"], cwd=cwd, capture_output=True, text=True)
        result.update(
            wall_s=round(measured["wall_s"], 1),
            stages_s={k: round(v, 1) for k, v in stages.items()},
            peak_rss_mb=round(measured["peak_rss_mb"]),
            peak_process_rss_mb=round(measured["peak_process_rss_mb"]),
            peak_rss_by_process_mb=measured["by_process"],
            budget_s=BUDGET_S, budget_rss_mb=BUDGET_RSS_MB,
            within_budget=measured["wall_s"] <= BUDGET_S
            and measured["peak_rss_mb"] <= BUDGET_RSS_MB,
            matmul_gflops=round(float(peak.stdout.strip().splitlines()[-1]), 1)
            if peak.returncode == 0 else None,
            bundle_train_step=json.loads(bundle.stdout.strip().splitlines()[-1])
            if bundle.returncode == 0 else bundle.stderr[-500:],
            log=measured["log"],
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
