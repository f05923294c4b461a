"""Benchmark of the student on TFLite: inference latency, training step, personalization time.

Prints one JSON line with:
- ``infer``: single-window ``infer`` latency (ms, p50 and p99 over ``--repeats`` calls, one
  thread) of ``student.tflite`` (fp32), ``student_int8.tflite`` and ``student_fp16.tflite``,
  each file's size, and the Keras student's own single-window latency;
- ``train_step``: one ``train`` step (the model's fixed batch) through the interpreter beside
  the Keras tuner's train step (``TuningLossModel``, Adam) on the same batch, both on one
  thread, and their ratio (TFLite / Keras; below 1 = TFLite faster);
- ``personalize_user_week``: seconds to personalize one user's first week of data on the
  device (forgotten set, ``unlearn`` steps, ``train`` epochs with early stopping, ``infer``
  on the test windows), with the window counts;
- ``quantized_metrics``: the shipped model's metrics on the individual users' test windows
  (pooled) for Keras, fp32, int8 and fp16, and the int8 / fp16 deltas against fp32.

Commands (the models come from ``python -m tflite.convert --run RUN``):

    python bench/tflite.py --run runs/demo
    python bench/tflite.py --run runs/demo --repeats 1000 --backend tf
"""

from __future__ import annotations

import os
import sys

# run as a script, this file's folder would shadow the ``tflite`` package: use the repo root
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from pitune_tf.data.windows import STREAM_KEYS  # noqa: E402


def percentiles_ms(fn, repeats, warmup=10):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times = np.asarray(times) * 1e3
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def one_window(history):
    ones = np.ones((1, history), np.int32)
    return {**{k: ones for k in STREAM_KEYS}, "mask": np.ones((1, history), np.float32)}


def bench_infer(run_dir, run, backend, repeats):
    from pitune_tf.common.keras import tf
    from tflite.export import MODEL_FILES
    from tflite.runtime import Runtime

    out = {}
    for kind, name in MODEL_FILES.items():
        path = run_dir / name
        if not path.is_file():
            out[kind] = {"missing": str(path)}
            continue
        rt = Runtime(path, backend=backend, num_threads=1, required=("infer",))
        x = one_window(rt.history)
        runner = rt.interpreter.get_signature_runner("infer")
        out[kind] = {"bytes": path.stat().st_size, **percentiles_ms(lambda r=runner, x=x: r(**x), repeats)}
    fp32 = out.get("fp32", {}).get("p50_ms")
    for kind in ("int8", "fp16"):
        if fp32 and "p50_ms" in out.get(kind, {}):
            out[kind]["speedup_vs_fp32"] = fp32 / out[kind]["p50_ms"]
    student = run.student
    x = {k: tf.constant(v) for k, v in one_window(run.config.history).items()}
    infer = tf.function(lambda inputs: student(inputs, training=False))
    out["keras"] = percentiles_ms(lambda: infer(x).numpy(), repeats)
    return out


def bench_train(run_dir, run, backend, steps):
    from pitune_tf.common.keras import keras
    from pitune_tf.individual.tuning_loss_model import TuningLossModel
    from tflite.runtime import Runtime

    rt = Runtime(run_dir / "student.tflite", backend=backend, num_threads=1)
    rng = np.random.default_rng(0)
    b, length = rt.batch_size, rt.history
    sizes = run.vocabs.sizes
    x = {k: rng.integers(2, sizes[k], (b, length)).astype(np.int32)
         for k in STREAM_KEYS}
    x["mask"] = np.ones((b, length), np.float32)
    y = rng.integers(2, run.vocabs.n_intents, b).astype(np.int32)
    tflite_ms = percentiles_ms(lambda: rt.train(x, y, learning_rate=1e-4), steps, warmup=3)
    shipped = run.student.get_weights()
    tuner = TuningLossModel(run.student, run.vocabs.n_intents, mode="finetune")
    tuner.compile(optimizer=keras.optimizers.Adam(1e-4))
    keras_ms = percentiles_ms(lambda: tuner.train_on_batch(x, y), steps, warmup=3)
    run.student.set_weights(shipped)
    return {"batch_size": b, "tflite": tflite_ms, "keras": keras_ms,
            "ratio_tflite_over_keras": tflite_ms["p50_ms"] / keras_ms["p50_ms"]}


def bench_personalize(run_dir, run, backend, data):
    import pandas as pd

    from pitune_tf.data import read_events
    from pitune_tf.individual.backends import build_engine
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.user_data import prepare_users

    df = read_events(data)
    user = sorted(df.user_id.unique())[0]
    events = df[df.user_id == user]
    events = events[events.timestamp < events.timestamp.min() + pd.Timedelta(days=7)]
    config = IndividualConfig(methods=("pituning",), min_history=int(run.config.min_history))
    users, _ = prepare_users(events, run.vocabs, history=run.config.history,
                             slot_minutes=run.config.slot_minutes, fractions=config.fractions,
                             min_history=config.min_history)
    if not users:
        return {"error": f"user {user}'s first week has no train and test windows"}
    engine = build_engine(run, config, backend="litert", model=run_dir / "student.tflite",
                          litert_backend=backend)
    start = time.perf_counter()
    result = engine.run_user(users[0], ("pituning",))
    seconds = time.perf_counter() - start
    info = result["methods"]["pituning"]["info"]
    return {"user": str(user), "events": int(len(events)), "train_windows": result["n_train"],
            "val_windows": result["n_val"], "test_windows": result["n_test"],
            "forget": len(result["forget"]), "unlearn_steps": info.get("unlearn_steps", 0),
            "epochs": info.get("epochs"), "seconds": seconds}


def bench_quantized(run_dir, run, backend, data, max_users):
    from pitune_tf.common.numeric import softmax
    from pitune_tf.data import read_events
    from pitune_tf.individual.user_data import prepare_users
    from pitune_tf.metrics import intent_metrics
    from tflite.export import MODEL_FILES
    from tflite.runtime import Runtime

    users, _ = prepare_users(read_events(data), run.vocabs, history=run.config.history,
                             slot_minutes=run.config.slot_minutes,
                             min_history=int(run.config.min_history))
    users = users[:max_users] if max_users else users
    y = np.concatenate([u.test.label for u in users])
    features = {k: np.concatenate([u.test.features()[k] for u in users])
                for k in users[0].test.features()}
    scores = {"keras": softmax(run.student.predict(features, batch_size=256, verbose=0))}
    for kind, name in MODEL_FILES.items():
        if (run_dir / name).is_file():
            rt = Runtime(run_dir / name, backend=backend, num_threads=1, required=("infer",))
            scores[kind] = softmax(rt.infer(features, batch_size=256)["logits"])
    metrics = {kind: {k: float(v) for k, v in intent_metrics(y, s).items()}
               for kind, s in scores.items()}
    out = {"users": len(users), "windows": int(len(y)), "metrics": metrics}
    for kind in ("int8", "fp16"):
        if kind in metrics and "fp32" in metrics:
            out[f"{kind}_minus_fp32"] = {k: metrics[kind][k] - metrics["fp32"][k]
                                         for k in metrics["fp32"]}
            out[f"{kind}_max_abs_prob_diff"] = float(np.abs(scores[kind] - scores["fp32"]).max())
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="run directory holding student*.tflite")
    parser.add_argument("--models", help="folder of the .tflite files (default: the run dir)")
    parser.add_argument("--data", help="individual events (default RUN/data/individual.parquet)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--repeats", type=int, default=300, help="infer calls per model")
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--metric-users", type=int, default=0, help="0 = every individual user")
    args = parser.parse_args(argv)

    from pitune_tf.common.keras import tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from pitune_tf.population import load_run
    from tflite.runtime import Runtime

    run_dir = Path(args.run)
    models = Path(args.models) if args.models else run_dir
    run = load_run(run_dir)
    data = Path(args.data) if args.data else run.individual_data_path
    result = {
        "backend": Runtime(models / "student.tflite", backend=args.backend).backend,
        "threads": 1,
        "infer": bench_infer(models, run, args.backend, args.repeats),
        "train_step": bench_train(models, run, args.backend, args.train_steps),
    }
    if data is not None:
        result["personalize_user_week"] = bench_personalize(models, run, args.backend, data)
        result["quantized_metrics"] = bench_quantized(models, run, args.backend, data,
                                                      args.metric_users)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
