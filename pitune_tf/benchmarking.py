"""Helpers shared by the scripts in ``bench/``."""

from __future__ import annotations

import time

from pitune_tf.common.keras import tf


def matmul_peak_flops(n=1024, repeats=5, dtype="float32") -> float:
    """Best FLOP/s of an n x n x n matmul of ``dtype`` over ``repeats`` runs: the machine's
    practical peak, measured in the same run as the figure it scales."""
    a = tf.cast(tf.random.normal([n, n]), dtype)
    b = tf.cast(tf.random.normal([n, n]), dtype)
    run = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    run(a, b).numpy()  # warm-up and tracing
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best
