"""Benchmark of NextItNet pretraining at the UAF paper's configuration.

Prints one JSON line: pretraining samples (sequences) per second at embedding 128, 16
dilated layers (8 residual blocks, dilations 1,2,4,8 repeated 4 times), sequence length 50,
batch 256, ``--n-items`` items (default 20000), the peak resident memory of the process,
and the achieved FLOP rate as a fraction of the same machine's float32 matmul peak
measured in the same run (a 4096 x 4096 matmul, best of ``--peak-reps``; 0 skips it).

``--loss`` is the pretraining softmax (``NextItNetPretrainer``): ``full`` (exact CE at
every position, fused and chunked: the default training path), ``reference`` (the
``[B, L, V]`` logits and one-hot CE, the straightforward form), ``sampled`` (sampled
softmax with ``--n-sampled`` negatives shared by the batch), ``auto`` (sampled above 100k
items). ``--jit`` (default) runs the pretrainer's XLA path (``NextItNetPretrainer(jit=True)``:
the network and the softmax's element-wise part compiled, the softmax matmuls on TF's own
kernels); ``--no-jit`` the plain graph; ``--jit-step`` compiles the whole train step with XLA.

``--peer`` runs RecBole 1.2.1's NextItNet (``../shared/peers/recbole_nextitnet.py
--all-positions``, the same configuration and objective, torch on the CPU with the same
thread count) as a subprocess right after each of ``--rounds`` own measurements, and
reports both rates and their ratio (median of the per-round ratios: a shared machine
slows both alike within a round). Without the peer venv (``recbole_setup.sh``) the JSON
says why it was skipped.

Model FLOPs per training step are counted analytically as 3 x the forward FLOPs of the
convolutions (2 per multiply-add, ``2 * B * L * kernel * d * d`` per conv) and of the
softmax layer (``2 * B * L * d * V``, or ``2 * B * L * d * (1 + n_sampled)`` sampled);
LayerNorm, ReLU, embedding and the loss are left out, so the fraction is a slight
underestimate. Wall times on a shared CPU are noisy: compare within one run.

    python bench/nextitnet.py                                # paper configuration, full CE
    python bench/nextitnet.py --peer --rounds 3              # side by side with RecBole
    python bench/nextitnet.py --n-items 650000 --length 100 --loss sampled   # ColdRec-2 size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

# Run as ``python bench/nextitnet.py``, this file's folder comes first on sys.path and its
# name would hide the ``nextitnet`` package: put the repository root there instead.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np

from nextitnet.nextitnet_backbone import PAPER_BLOCK_DILATIONS, NextItNet
from nextitnet.pretraining_loss import PRETRAIN_LOSSES, NextItNetPretrainer
from pitune_tf.benchmarking import matmul_peak_flops
from pitune_tf.common.keras import keras, tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_SCRIPT = next(  # ../shared beside the main checkout; ../../shared from a worktree
    (path for up in (1, 2) for path in [os.path.join(ROOT, *[".."] * up, "shared", "peers", "recbole_nextitnet.py")]
     if os.path.isfile(path)), "../shared/peers/recbole_nextitnet.py")
PEER_PYTHON = os.path.join(os.path.expanduser("~"), ".cache", "peer-recbole-venv", "bin", "python")


def step_flops(batch, length, dim, kernel, n_blocks, n_scored) -> float:
    """Analytic FLOPs of one training step (3 x forward: forward + two backward matmuls);
    ``n_scored`` items are scored at every position."""
    conv = 2.0 * batch * length * kernel * dim * dim * 2 * n_blocks
    softmax = 2.0 * batch * length * dim * n_scored
    return 3.0 * (conv + softmax)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_steps(train_step, batch, warmup, steps) -> float:
    """Median seconds of ``steps`` calls after ``warmup`` ones (the first traces)."""
    for _ in range(max(1, warmup)):
        float(train_step(batch)["loss"])
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(train_step(batch)["loss"])
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_peer(args) -> dict:
    """RecBole's NextItNet in the same configuration (one JSON line), or why not."""
    script = os.path.normpath(args.peer_script)
    if not os.path.isfile(args.peer_python):
        return {"skipped": f"no peer venv at {args.peer_python} (run ../shared/peers/recbole_setup.sh)"}
    if not os.path.isfile(script):
        return {"skipped": f"no peer script at {script}"}
    command = [args.peer_python, "-W", "ignore", script, "--all-positions", "--no-flop-count",
               "--n-items", str(args.n_items), "--batch", str(args.batch), "--seq-len", str(args.length),
               "--embedding-size", str(args.dim), "--threads", str(args.threads),
               "--steps", str(args.peer_steps), "--warmup", "2"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"skipped": f"peer failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--n-items", "--num-items", type=int, default=20000)
    parser.add_argument("--loss", choices=PRETRAIN_LOSSES, default="full")
    parser.add_argument("--n-sampled", type=int, default=1024, help="negatives per batch (sampled)")
    parser.add_argument("--sampler", default="log_uniform", choices=("log_uniform", "uniform"))
    parser.add_argument("--chunk-rows", type=int, default=1024, help="logit rows at once (full)")
    parser.add_argument("--jit", action=argparse.BooleanOptionalAction, default=True,
                        help="the pretrainer's XLA path (jit=True)")
    parser.add_argument("--jit-step", action="store_true", help="XLA-compile the whole train step")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (0: TF default)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--peak-reps", type=int, default=5)
    parser.add_argument("--peer", action="store_true", help="RecBole side by side (see the docstring)")
    parser.add_argument("--rounds", type=int, default=1, help="own + peer measurements, alternated")
    parser.add_argument("--peer-steps", type=int, default=5)
    parser.add_argument("--peer-python", default=PEER_PYTHON)
    parser.add_argument("--peer-script", default=PEER_SCRIPT)
    args = parser.parse_args(argv)

    if args.threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    net = NextItNet(args.n_items, args.dim, PAPER_BLOCK_DILATIONS, kernel_size=3)
    trainer = NextItNetPretrainer(net, loss=args.loss, n_sampled=args.n_sampled, sampler=args.sampler,
                                  chunk_rows=args.chunk_rows, jit=args.jit)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-4))
    rng = np.random.default_rng(0)
    batch = rng.integers(1, args.n_items, size=(args.batch, args.length + 1)).astype(np.int32)
    batch = tf.constant(batch)
    train_step = tf.function(trainer.train_batch, jit_compile=args.jit_step or None)
    own, peers = [], []
    for round_index in range(max(1, args.rounds)):
        own.append(time_steps(train_step, batch, args.warmup if round_index == 0 else 1, args.steps))
        print(f"round {round_index + 1}: ours {args.batch / own[-1]:.1f} samples/s", file=sys.stderr, flush=True)
        if args.peer:
            peers.append(run_peer(args))
            print(f"round {round_index + 1}: peer {peers[-1].get('samples_per_s', peers[-1])}",
                  file=sys.stderr, flush=True)
            if "skipped" in peers[-1]:
                break
    step = float(np.median(own))
    n_scored = args.n_items if trainer.pretrain_loss in ("full", "reference") else 1 + args.n_sampled
    flops = step_flops(args.batch, args.length, args.dim, 3, len(PAPER_BLOCK_DILATIONS), n_scored)
    peak = matmul_peak_flops(n=4096, repeats=args.peak_reps) if args.peak_reps > 0 else None
    gpus = tf.config.list_physical_devices("GPU")
    result = {
        "benchmark": "nextitnet_pretraining",
        "config": {"embedding": args.dim, "layers": 2 * len(PAPER_BLOCK_DILATIONS), "seq_len": args.length,
                   "batch": args.batch, "n_items": args.n_items, "kernel": 3, "threads": args.threads,
                   "loss": trainer.pretrain_loss, "jit": args.jit, "jit_step": args.jit_step,
                   **({"n_sampled": args.n_sampled, "sampler": args.sampler}
                      if trainer.pretrain_loss == "sampled" else {})},
        "device": f"GPU {gpus[0].name}" if gpus else f"CPU ({os.cpu_count()} cores visible, {platform.machine()})",
        "steps_timed": args.steps,
        "step_time_s": round(step, 4),
        "samples_per_s": round(args.batch / step, 1),
        "samples_per_s_rounds": [round(args.batch / s, 1) for s in own],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "model_flops_per_step": flops,
        "achieved_gflops": round(flops / step / 1e9, 2),
        "matmul_peak_gflops": round(peak / 1e9, 2) if peak else None,
        "fraction_of_peak": round(flops / step / peak, 4) if peak else None,
    }
    if args.peer:
        measured = [p for p in peers if "samples_per_s" in p]
        if measured:
            ratios = [args.batch / s / p["samples_per_s"] for s, p in zip(own, measured)]
            result["peer"] = {
                "impl": f"recbole {measured[0]['recbole']} NextItNet, torch {measured[0]['torch']}",
                "mode": measured[0]["mode"], "threads": measured[0]["threads"],
                "samples_per_s": round(float(np.median([p["samples_per_s"] for p in measured])), 1),
                "samples_per_s_rounds": [p["samples_per_s"] for p in measured],
            }
            result["ratio_to_peer"] = round(float(np.median(ratios)), 3)
            result["ratio_to_peer_rounds"] = [round(r, 3) for r in ratios]
        else:
            result["peer"] = peers[-1]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
