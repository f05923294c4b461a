"""Forward+backward throughput of the PITuning teacher and student, demo and paper size.

Prints one JSON line: for each model, samples per second of a gradient step (forward,
backward; no optimizer update) on a batch of 64 windows x 30 events, the step's FLOPs (from
TensorFlow's graph profiler) and the achieved FLOP rate as a fraction of this machine's
float32 matmul peak, measured in the same run.

With ``--precision mixed_bfloat16|mixed_float16`` the teacher is built under that Keras
dtype policy (the student stays float32, as in ``trainers.population``) (float32 logits and losses) and ``peak_fraction`` is also given against the
16-bit matmul peak (``peak_fraction_compute_dtype``); ``--jit`` XLA-compiles the step.

Commands::

    python bench/teacher_step.py                 # demo and paper sizes
    python bench/teacher_step.py --sizes demo --steps 5
    python bench/teacher_step.py --sizes demo --precision mixed_bfloat16 --jit

The paper teacher is GPT2-small's shape (``random:12x768``: the weights do not matter for
speed, and nothing is downloaded).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from pitune_tf.benchmarking import matmul_peak_flops
from pitune_tf.common.cli import run_main
from pitune_tf.common.keras import keras, tf
from pitune_tf.common.precision import dtype_policy
from pitune_tf.common.training_options import PRECISIONS
from pitune_tf.data.windows import STREAM_KEYS
from pitune_tf.population import preset

SIZES = {"location": 91, "slot": 25, "event": 91, "intent": 18}  # the demo data's vocabularies


def graph_flops(concrete):
    """FLOPs of a concrete function's graph (TensorFlow's profiler, float operations)."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    info = model_analyzer.profile(concrete.graph, options=options)
    return float(info.total_float_ops)


def _batch(batch_size, length):
    rng = np.random.default_rng(0)
    features = {k: tf.constant(rng.integers(2, 8, (batch_size, length)), tf.int32)
                for k in STREAM_KEYS}
    features["mask"] = tf.ones([batch_size, length], tf.float32)
    labels = tf.constant(rng.integers(2, SIZES["intent"], batch_size), tf.int32)
    return features, labels


def measure(model, reconstruction, batch_size, length, steps, peak, jit=False,
            compute_peak=None):
    """One gradient step of L_pop (PITuning Eq. 5; intent term only without reconstruction),
    through the population stage's own loss code."""
    from pitune_tf.population import PopulationTrainer

    features, labels = _batch(batch_size, length)
    task = PopulationTrainer(model, reconstruction=reconstruction)
    variables = task.train_variables()

    @tf.function(jit_compile=jit)
    def step(features, labels):
        with tf.GradientTape() as tape:
            loss = task.compute_losses((features, labels), training=True)["loss"]
        grads = tape.gradient(loss, variables)
        return loss, tf.add_n([tf.reduce_sum(g) for g in grads if g is not None])

    flops = graph_flops(tf.function(step.python_function).get_concrete_function(
        features, labels))  # the graph before XLA
    step(features, labels)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step(features, labels)[0].numpy()
    seconds = (time.perf_counter() - start) / steps
    result = {
        "params": int(model.count_params()),
        "step_s": round(seconds, 4),
        "samples_per_s": round(batch_size / seconds, 1),
        "gflop_per_step": round(flops / 1e9, 3),
        "gflops": round(flops / seconds / 1e9, 2),
        "peak_fraction": round(flops / seconds / 1e9 / peak, 4),
    }
    if compute_peak:
        result["peak_fraction_compute_dtype"] = round(flops / seconds / 1e9 / compute_peak, 4)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["demo", "paper"], choices=["demo", "paper"])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per model (2)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--history", type=int, default=30)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="Keras dtype policy of the models (float32)")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the step")
    args = parser.parse_args(argv)
    from pitune_tf.models import build_student, build_teacher

    peak = matmul_peak_flops(n=1024) / 1e9  # GFLOP/s
    compute_dtype = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(
        args.precision)
    compute_peak = matmul_peak_flops(n=1024, dtype=compute_dtype) / 1e9 if compute_dtype else None
    result = {"batch": args.batch_size, "length": args.history,
              "precision": args.precision, "jit": args.jit,
              "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
              "matmul_peak_gflops": round(peak, 1)}
    if compute_peak:
        result[f"matmul_peak_gflops_{compute_dtype}"] = round(compute_peak, 1)
    for size in args.sizes:
        config = preset(size).replace(history=args.history, batch_size=args.batch_size)
        if size == "paper":
            config = config.replace(backbone="random:12x768")
        keras.utils.set_random_seed(0)
        with dtype_policy(args.precision):  # the teacher only, as trainers.population
            teacher = build_teacher(config, SIZES)
        student = build_student(config, SIZES)  # float32: it ships to phones
        result[f"teacher_{size}"] = measure(teacher, config.reconstruction, args.batch_size,
                                            args.history, args.steps, peak, args.jit,
                                            compute_peak)
        del teacher
        result[f"student_{size}"] = measure(student, False, args.batch_size, args.history,
                                            args.steps, peak, args.jit, compute_peak)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
