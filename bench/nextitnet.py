"""Benchmark of NextItNet pretraining at the UAF paper's configuration.

Prints one JSON line: pretraining samples (sequences) per second at embedding 128, 16
dilated layers (8 residual blocks, dilations 1,2,4,8 repeated 4 times), sequence length 50,
batch 256, and the achieved FLOP rate as a fraction of the same machine's float32 matmul
peak measured in the same run (a 4096 x 4096 matmul, best of ``--peak-reps``).

Model FLOPs per training step are counted analytically as 3 x the forward FLOPs of the
convolutions (2 per multiply-add, ``2 * B * L * kernel * d * d`` per conv) and of the
softmax layer (``2 * B * L * d * V``); LayerNorm, ReLU, embedding and the loss are left
out, so the fraction is a slight underestimate. The paper does not give the source
vocabulary used for pretraining throughput, so ``--n-items`` (default 10000) is
reported with the result. Wall times on a shared CPU are noisy: read them as a rough
figure.

    python bench/nextitnet.py                       # paper configuration, 3 timed steps
    python bench/nextitnet.py --steps 10 --n-items 50000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

# Run as ``python bench/nextitnet.py``, this file's folder comes first on sys.path and its
# name would hide the ``nextitnet`` package: put the repository root there instead.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from nextitnet.nextitnet_backbone import PAPER_BLOCK_DILATIONS, NextItNet  # noqa: E402
from nextitnet.pretrainer import NextItNetPretrainer  # noqa: E402
from pitune_tf.benchmarking import matmul_peak_flops  # noqa: E402
from pitune_tf.common.keras import keras, tf  # noqa: E402


def step_flops(batch, length, dim, kernel, n_blocks, n_items) -> float:
    """Analytic FLOPs of one training step (3 x forward: forward + two backward matmuls)."""
    conv = 2.0 * batch * length * kernel * dim * dim * 2 * n_blocks
    softmax = 2.0 * batch * length * dim * n_items
    return 3.0 * (conv + softmax)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--n-items", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--peak-reps", type=int, default=5)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    net = NextItNet(args.n_items, args.dim, PAPER_BLOCK_DILATIONS, kernel_size=3)
    trainer = NextItNetPretrainer(net)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-4))
    rng = np.random.default_rng(0)
    batch = rng.integers(1, args.n_items, size=(args.batch, args.length + 1)).astype(np.int32)
    batch = tf.constant(batch)
    train_step = tf.function(trainer.train_batch)
    for _ in range(max(1, args.warmup)):  # the first call traces and creates the slots
        float(train_step(batch)["loss"])
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        float(train_step(batch)["loss"])
        times.append(time.perf_counter() - start)
    step = float(np.median(times))
    flops = step_flops(args.batch, args.length, args.dim, 3, len(PAPER_BLOCK_DILATIONS), args.n_items)
    peak = matmul_peak_flops(n=4096, repeats=args.peak_reps)
    gpus = tf.config.list_physical_devices("GPU")
    print(json.dumps({
        "benchmark": "nextitnet_pretraining",
        "config": {"embedding": args.dim, "layers": 2 * len(PAPER_BLOCK_DILATIONS), "seq_len": args.length,
                   "batch": args.batch, "n_items": args.n_items, "kernel": 3},
        "device": f"GPU {gpus[0].name}" if gpus else f"CPU ({os.cpu_count()} cores visible, {platform.machine()})",
        "steps_timed": args.steps,
        "step_time_s": round(step, 4),
        "samples_per_s": round(args.batch / step, 1),
        "model_flops_per_step": flops,
        "achieved_gflops": round(flops / step / 1e9, 2),
        "matmul_peak_gflops": round(peak / 1e9, 2),
        "fraction_of_peak": round(flops / step / peak, 4),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
