"""Device-side cost of the student: every ``student.tflite`` signature timed through LiteRT on
one thread, the files' sizes, the FLOPs, the memory, and one user-week of personalization at
each train part, for the demo-sized and the paper-sized student (random weights).

For each size (``--sizes``): ``demo`` is ``preset("demo")``'s student (2 x 64, 2 heads, the
copy term over ``event_intent``), ``paper`` is ``preset("paper")``'s (4 x 768, 12 heads, IAT
units 80 / 40, head 256, no copy term: the paper preset has none); both with L = 30 and the
demo world's vocabularies (location 93, weekday 8, slot 25, event 91, intent 18). No teacher
or GPT2 is built. Each student is converted by ``tflite.export.export_student`` (batch 32,
Adam, the int8 and fp16 inference models too); then, per file, a fresh process that loads
LiteRT and no TensorFlow measures it. Prints one JSON line with, per size:

- ``files``: the bytes of ``student.tflite`` (every signature), ``student_int8.tflite`` and
  ``student_fp16.tflite`` (``infer``, and a streaming student's ``infer_step``: their
  weights are constants); ``convert_s``, the conversion's wall time;
  ``build_convert_hwm_mb``, the peak memory of this (TensorFlow) process so far;
- ``signatures``: per signature of ``student.tflite`` (``infer`` at batch 1 and at batch 32,
  ``train``, ``train_head``, ``train_top1`` ... ``train_topK``, ``unlearn``, ``get_weights``,
  ``set_weights``, ``reset``, and a streaming student's ``infer_step`` on one event; ``infer``
  and ``infer_step`` of the int8 and fp16 files, ``<name>_int8`` / ``_fp16``) the median and
  fastest ms
  per call over ``--repeats`` calls (``calls``: fewer, at least 3, where ``--max-seconds`` per
  call ran out first), after warm-up calls (3, or 1 for a call of seconds). The signatures of
  one batch shape are timed in turns, one call of each per round, so that the machine's other
  load falls on all of them alike. Each signature's first call goes through ``Runtime.call``
  (inputs checked; ``first_call_ms`` and ``first_call_rss_mb``, the memory its tensors took),
  the timed ones to the interpreter's signature runner (no Python-side checks);
- ``flops``: forward FLOPs per window, counted on the TF graph of the Keras student (a
  concrete function at batch 1): 2 m k n for every MatMul and BatchMatMul op, by the part it
  belongs to (``block_i``, or ``head``: IAT, intent head and the rest), so element-wise ops
  (layer norms, softmax, GELU) and the embedding gathers are left out;
  ``profiler_float_ops``, what ``tf.compat.v1.profiler`` counts on the same graph
  (element-wise ops in, batched matmuls out), is a cross-check. A training step is estimated
  as the forward pass plus twice the forward FLOPs of the trained part (the backward pass:
  gradients of activations and of weights), times the batch; ``unlearn`` as ``train``.
  ``gflops_per_s`` divides them by the median, ``peak_fraction`` that by the matmul peak
  (int8 files: the float FLOPs, so above 1 is possible);
- ``train_signatures``: each training signature's trainable weights (``student_tflite.json``);
- ``infer_step_speedup`` (a streaming student, ``--sizes paper:7``): ``infer`` at batch 1
  over ``infer_step``, in FLOPs and in median time in each file (``time``: the trainable
  ``student.tflite``, whose weights are variables; ``time_int8``, ``time_fp16``: the
  inference files) (the prediction after one new event either way);
- ``memory_mb``: per file, the measuring process's resident memory (VmRSS) before loading
  (Python, numpy and LiteRT), and its peak (VmHWM) after loading, after every signature has
  run once and more, and after the user-week;
- ``user_week``: the windows of one user-week (``--days`` x ``--events-per-day`` = 280) as the
  phone runs them, through ``Runtime``'s helpers: ``infer`` over all of them at batch 32 (the
  shipped model's logits that ``unlearn`` needs), ``--unlearn-steps`` ``unlearn`` steps, then
  ceil(280 / 32) x ``--epochs`` = 9 x 8 = 72 steps of each train part, each part from the
  shipped weights; ``seconds`` per part = infer + unlearn + its train steps, the median of
  ``--week-rounds`` rounds. ``measured`` says whether the steps ran: ``--week auto`` (the
  default) runs them where all rounds are estimated to take at most ``--week-max-seconds``,
  else reports ``user_week_estimate``: each count of calls times its signature's median
  (always given beside, as a cross-check).

Beside them: ``matmul_gflops_1thread``, the machine's float32 matmul peak on one TF thread
(``pitune_tf.benchmarking.matmul_peak_flops``), so the numbers read as ratios across
machines; the 1-minute load average at start and end; the CPUs.

How long it takes on the development machine (a shared 2-core CPU, load ~2): ``--sizes demo``
(the default, the quick path) about 1 minute, 40 s of it converting; ``--sizes paper`` about
5 minutes (converting ~2 minutes, 230 MB of models in a temporary folder, ~5.5 GB peak memory
converting and ~5.7 GB measuring; its train steps take seconds, so its user-week is estimated).

    python bench/phone.py                              # demo size
    python bench/phone.py --sizes demo,paper --max-seconds 10
    python bench/phone.py --sizes demo:7,paper:7         # streaming students (infer_step)
    python bench/phone.py --sizes paper --repeats 5 --keep /tmp/phone_models
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
import math  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from pitune_tf.data.features import N_WEEKDAY_IDS, n_slot_ids  # noqa: E402

HISTORY = 30  # L, the paper's window
BATCH = 32  # the train / unlearn signatures' fixed batch (the individual trainer's)
# The demo world's vocabularies (pitune_tf.data.synthetic "demo"): 90 places, 89 apps and
# 16 intents, each with the reserved <pad> and <unk> (locations also "no location"); weekday
# and slot ids as the library makes them (pad + Mon..Sun; pad + 24 hourly slots).
SIZES = {"location": 93, "weekday": N_WEEKDAY_IDS, "slot": n_slot_ids(60), "event": 91,
         "intent": 18}
STUDENTS = {"demo": "demo", "paper": "paper"}  # size -> population preset of its student
LEARNING_RATE = 1e-4


# ------------------------------------------------------------------ measuring (LiteRT only)

def memory_mb() -> dict:
    """This process's resident memory now (VmRSS) and at its peak (VmHWM), MB (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line[:5].lower()] = round(int(line.split()[1]) / 1024, 1)
    return out


def windows(n, seed=0) -> dict:
    """n full windows of random ids within the vocabularies (features dict)."""
    rng = np.random.default_rng(seed)
    low = {"location": 2, "weekday": 1, "slot": 1, "event": 2}
    feats = {k: rng.integers(lo, SIZES[k], (n, HISTORY)).astype(np.int32) for k, lo in low.items()}
    feats["mask"] = np.ones((n, HISTORY), np.float32)
    return feats


def labels(n, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(2, SIZES["intent"], n).astype(np.int32)


def time_round_robin(calls, repeats, max_seconds) -> dict:
    """Median and fastest ms of each of ``calls`` ({name: (fn, warmup)}), timed in turns (one
    call of each per round, so that the machine's other load falls on all of them alike) over
    ``repeats`` rounds, or fewer (at least 3) once ``max_seconds`` per call have gone by."""
    for fn, warmup in calls.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in calls}
    deadline = time.perf_counter() + max_seconds * len(calls)
    rounds = 0
    while rounds < repeats and (rounds < 3 or time.perf_counter() < deadline):
        for name, (fn, _) in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
        rounds += 1
    return {name: {"median_ms": round(float(np.median(t)) * 1e3, 3),
                   "min_ms": round(float(np.min(t)) * 1e3, 3), "calls": len(t)}
            for name, t in times.items()}


def signature_inputs(rt, name, batch) -> dict:
    """The inputs of signature ``name`` of ``rt`` (batch ``batch`` for ``infer``; one event
    for ``infer_step``)."""
    n = rt.n_intents
    if name == "infer":
        return windows(batch)
    if name == "infer_step":
        event = {k: v[:, -1] for k, v in windows(1).items() if k != "mask"}
        return {**event, "state": rt.initial_state(1)}
    if name.startswith("train"):
        return {**windows(BATCH), "label": labels(BATCH), "sample_weight": np.ones(BATCH, np.float32),
                "learning_rate": np.float32(LEARNING_RATE)}
    if name == "unlearn":
        feats = windows(BATCH)
        forget = np.zeros(n, np.float32)
        forget[2:4] = 1.0
        retain = np.ones(n, np.float32) - forget
        retain[:2] = 0.0
        return {**feats, "original_logits": rt.call("infer", **feats)["logits"],
                "retain_mask": retain, "forget_mask": forget, "lam": np.float32(1.0),
                "sample_weight": np.ones(BATCH, np.float32), "learning_rate": np.float32(LEARNING_RATE)}
    if name == "set_weights":
        return {"weights": rt.get_weights()}
    return {}


def time_signatures(rt, names, batch, repeats, max_seconds) -> dict:
    """Times signatures ``names`` of ``rt`` in turns (:func:`time_round_robin`); each first
    goes once through ``Runtime.call`` (its inputs checked, its tensors allocated: the
    ``first_call_ms``), then to the interpreter's signature runner, unchecked."""
    calls, first, added = {}, {}, {}
    for name in names:
        inputs = signature_inputs(rt, name, batch)
        rss = memory_mb()["vmrss"]
        start = time.perf_counter()
        rt.call(name, **inputs)
        first[name] = (time.perf_counter() - start) * 1e3
        added[name] = round(memory_mb()["vmrss"] - rss, 1)
        runner = rt.interpreter.get_signature_runner(name)
        warmup = 3 if first[name] < 1000 else 1  # a call of seconds needs little warming
        calls[name] = (lambda r=runner, x=inputs: r(**x), warmup)
    timed = time_round_robin(calls, repeats, max_seconds)
    return {name: {**timed[name], "first_call_ms": round(first[name], 3),
                   "first_call_rss_mb": added[name]} for name in names}


def user_week(rt, n_windows, epochs, unlearn_steps, rounds) -> dict:
    """One user-week on the phone, measured ``rounds`` times (the median of each figure):
    infer over its windows, the unlearn steps, then each train part's epochs from the shipped
    weights."""
    runs = [_user_week_once(rt, n_windows, epochs, unlearn_steps) for _ in range(rounds)]
    out = dict(runs[0], rounds=rounds)
    for key in ("infer_s", "unlearn_s"):
        out[key] = round(float(np.median([r[key] for r in runs])), 3)
    out["parts"] = {part: {key: round(float(np.median([r["parts"][part][key] for r in runs])), 3)
                           for key in ("train_s", "seconds")} for part in runs[0]["parts"]}
    return out


def _user_week_once(rt, n_windows, epochs, unlearn_steps) -> dict:
    feats, y = windows(n_windows, seed=1), labels(n_windows, seed=1)
    batches = [slice(i, i + BATCH) for i in range(0, n_windows, BATCH)]
    rt.reset()
    start = time.perf_counter()
    logits = rt.infer(feats, batch_size=BATCH)["logits"]
    infer_s = time.perf_counter() - start
    forget = np.zeros(rt.n_intents, np.float32)
    forget[2:4] = 1.0
    retain = np.ones(rt.n_intents, np.float32) - forget
    retain[:2] = 0.0
    start = time.perf_counter()
    for step in range(unlearn_steps):
        b = batches[step % len(batches)]
        rt.unlearn({k: v[b] for k, v in feats.items()}, logits[b], retain, forget, lam=1.0,
                   learning_rate=LEARNING_RATE)
    unlearn_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    parts = {}
    for part in rt.train_parts:
        rt.reset()
        start = time.perf_counter()
        for _ in range(epochs):
            order = rng.permutation(n_windows)
            for b in batches:
                idx = order[b]
                rt.train({k: v[idx] for k, v in feats.items()}, y[idx],
                         learning_rate=LEARNING_RATE, part=part)
        train_s = time.perf_counter() - start
        parts[part] = {"train_s": train_s, "seconds": infer_s + unlearn_s + train_s}
    rt.reset()
    return {"measured": True, "windows": n_windows, "epochs": epochs,
            "train_steps": len(batches) * epochs, "unlearn_steps": unlearn_steps,
            "infer_s": infer_s, "unlearn_s": unlearn_s, "parts": parts}


def estimate_week(signatures, args) -> dict:
    """The user-week of :func:`user_week` from the signatures' median times, no step run:
    each count of calls times its median (``--week estimate``)."""
    n_windows = args.days * args.events_per_day
    batches = math.ceil(n_windows / BATCH)
    steps = batches * args.epochs
    infer_s = batches * signatures[f"infer_b{BATCH}"]["median_ms"] / 1e3
    unlearn_s = args.unlearn_steps * signatures["unlearn"]["median_ms"] / 1e3
    parts = {}
    for name, timing in signatures.items():
        if name.startswith("train"):
            train_s = steps * timing["median_ms"] / 1e3
            parts["all" if name == "train" else name[len("train_"):]] = {
                "train_s": round(train_s, 3), "seconds": round(infer_s + unlearn_s + train_s, 3)}
    order = sorted(parts, key=lambda p: (p == "all", p != "head", len(p), p))
    return {"measured": False, "windows": n_windows, "epochs": args.epochs, "train_steps": steps,
            "unlearn_steps": args.unlearn_steps, "infer_s": round(infer_s, 3),
            "unlearn_s": round(unlearn_s, 3), "parts": {p: parts[p] for p in order}}


def measure(path, args) -> dict:
    """Loads one .tflite file in this (TensorFlow-free) process and times its signatures."""
    from ai_edge_litert import interpreter  # noqa: F401  (loaded before the baseline)

    from tflite.runtime import TRAINING_SIGNATURES, Runtime

    path = Path(path)
    before = memory_mb()
    training = path.name == "student.tflite"
    rt = Runtime(path, backend="litert", num_threads=1,
                 required=TRAINING_SIGNATURES if training else ("infer",))
    loaded = memory_mb()
    names = ["infer"] + [n for n in rt.signatures if n != "infer" and (training or n == "infer_step")]
    order = sorted(names, key=lambda n: (n != "infer", not n.startswith("train"),
                                         n.startswith("train_"), n))
    out = {"signatures": {}}
    for batch in (1, BATCH):  # apart: a new batch size reallocates the infer tensors
        timed = time_signatures(rt, ["infer"], batch, args.repeats, args.max_seconds)
        out["signatures"][f"infer_b{batch}"] = timed["infer"]
    out["signatures"].update(time_signatures(rt, order[1:], BATCH, args.repeats,
                                             args.max_seconds))
    called = memory_mb()
    out["memory_mb"] = {"rss_before_load": before["vmrss"], "hwm_after_load": loaded["vmhwm"],
                        "hwm_after_calls": called["vmhwm"]}
    if training:
        estimate = estimate_week(out["signatures"], args)
        longest = max(p["seconds"] for p in estimate["parts"].values())
        run = args.week == "run" or (
            args.week == "auto" and longest * len(estimate["parts"]) * args.week_rounds
            <= args.week_max_seconds)
        out["user_week_estimate"] = estimate
        if run:
            out["user_week"] = user_week(rt, args.days * args.events_per_day, args.epochs,
                                         args.unlearn_steps, args.week_rounds)
            out["memory_mb"]["hwm_after_user_week"] = memory_mb()["vmhwm"]
        else:
            out["user_week"] = estimate
    out["backend"] = rt.backend
    return out


# ------------------------------------------------------------------ building (TensorFlow)

def build(size):
    """The random student of ``size`` (``demo``, ``paper``, or either with ``:<span>``: the
    streaming student of ``--student-span <span>``) and its config."""
    from pitune_tf.common.keras import keras
    from pitune_tf.models import build_student
    from pitune_tf.population import preset

    name, _, span = size.partition(":")
    config = preset(STUDENTS[name]).replace(history=HISTORY)
    if span:
        config = config.replace(student_span=int(span) if span.isdigit() else span)
    keras.utils.set_random_seed(0)
    event_intent = np.random.default_rng(0).integers(2, SIZES["intent"], SIZES["event"])
    return build_student(config, SIZES, event_intent=event_intent), config


def count_flops(student) -> dict:
    """FLOPs of each signature call (``pitune_tf.models.train_parts.signature_flops``, as
    ``student_tflite.json`` records them) and of ``infer`` per window by part."""
    from pitune_tf.common.keras import tf
    from pitune_tf.models.train_parts import forward_graph, matmul_flops, signature_flops

    calls = signature_flops(student, HISTORY, BATCH)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    graph = forward_graph(student, HISTORY)
    profiled = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
    steps = {name: flops for name, flops in calls.items() if name.startswith(("train", "unlearn"))}
    stepped = {"infer_step": calls["infer_step"]} if "infer_step" in calls else {}
    return {**stepped,
            "method": "2mkn per MatMul/BatchMatMul op of the Keras student's graph at batch 1",
            "forward_per_window": calls["infer"], "by_part": matmul_flops(graph),
            "profiler_float_ops": int(profiled), "step_estimate": steps,
            "infer_b1": calls["infer"], f"infer_b{BATCH}": BATCH * calls["infer"]}


def measure_in_child(path, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--measure", str(path), "--week", args.week,
           "--week-rounds", str(args.week_rounds), "--week-max-seconds", str(args.week_max_seconds),
           "--repeats", str(args.repeats), "--max-seconds", str(args.max_seconds),
           "--days", str(args.days), "--events-per-day", str(args.events_per_day),
           "--epochs", str(args.epochs), "--unlearn-steps", str(args.unlearn_steps)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(f"error: measuring {path} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_size(size, out_dir, args) -> dict:
    from tflite.export import MODEL_FILES, export_student

    student, config = build(size)
    flops = count_flops(student)
    start = time.perf_counter()
    paths = export_student(student, out_dir, history=HISTORY, batch_size=BATCH, quantized=True)
    convert_s = time.perf_counter() - start
    meta = json.loads((Path(out_dir) / "student_tflite.json").read_text())
    del student
    result = {
        "student": {"preset": STUDENTS[size.partition(":")[0]], "layers": config.student_layers,
                    "width": config.student_width, "heads": config.student_heads,
                    "span": config.resolved_student_span(), "state_size": meta["state_size"],
                    "history": HISTORY, "copy_term": bool(config.repeat_term),
                    "num_weights": meta["num_weights"], "vocab_sizes": SIZES},
        "convert_s": round(convert_s, 1),
        "files": {kind: path.stat().st_size for kind, path in paths.items()},
        "train_signatures": {name: info["trainable_weights"]
                             for name, info in meta["train_signatures"].items()},
        "flops": flops,
        "memory_mb": {},
    }
    for kind in ("fp32", "int8", "fp16"):
        measured = measure_in_child(Path(out_dir) / MODEL_FILES[kind], args)
        result["memory_mb"][kind] = measured["memory_mb"]
        if kind == "fp32":
            result["backend"] = measured["backend"]
            result["signatures"] = measured["signatures"]
            result["user_week"] = measured["user_week"]
            result["user_week_estimate"] = measured["user_week_estimate"]
        else:
            for name in ("infer_b1", f"infer_b{BATCH}", "infer_step"):
                if name in measured["signatures"]:
                    result["signatures"][f"{name}_{kind}"] = measured["signatures"][name]
    if "infer_step" in result["signatures"]:  # one new event vs the whole window, batch 1
        times = result["signatures"]
        result["infer_step_speedup"] = {
            "flops": round(flops["infer_b1"] / flops["infer_step"], 2),
            **{"time" + suffix: round(times["infer_b1" + suffix]["median_ms"]
                                      / times["infer_step" + suffix]["median_ms"], 2)
               for suffix in ("", "_int8", "_fp16") if "infer_step" + suffix in times}}
    for name, timing in result["signatures"].items():
        step = flops["step_estimate"].get(name) or flops.get(name.replace("_int8", "").replace("_fp16", ""))
        if step:
            timing["gflops_per_s"] = round(step / timing["median_ms"] / 1e6, 2)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="demo",
                        help="comma-separated: demo, paper (each preset's student); "
                             "<size>:<span> for --student-span <span> (a number or auto: the "
                             "streaming student with infer_step), e.g. paper:7")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per signature")
    parser.add_argument("--max-seconds", type=float, default=30.0,
                        help="stop timing a signature after this long (at least 3 calls)")
    parser.add_argument("--days", type=int, default=7, help="the user-week's days")
    parser.add_argument("--events-per-day", type=int, default=40, help="windows per day")
    parser.add_argument("--epochs", type=int, default=8, help="user-week training epochs")
    parser.add_argument("--unlearn-steps", type=int, default=10)
    parser.add_argument("--week", choices=("auto", "run", "estimate"), default="auto",
                        help="run the user-week's steps, or estimate it from the signatures' "
                             "median times; auto (default): run it where all its rounds are "
                             "estimated to take at most --week-max-seconds")
    parser.add_argument("--week-max-seconds", type=float, default=120.0)
    parser.add_argument("--week-rounds", type=int, default=3,
                        help="user-weeks run per part; the median is reported")
    parser.add_argument("--keep", help="write the models here (default: a temporary folder)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one file, LiteRT only
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args)))
        return 0
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s.partition(":")[0] not in STUDENTS
               or not ((s.partition(":")[2] or "0").isdigit() or s.partition(":")[2] in ("auto", "none"))]
    if unknown or not sizes:
        parser.error(f"--sizes takes {', '.join(STUDENTS)}; got {args.sizes!r}")
    for name in ("repeats", "days", "events_per_day", "epochs", "week_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    from pitune_tf.common.keras import tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from pitune_tf.benchmarking import matmul_peak_flops

    result = {"bench": "phone", "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
              "threads": 1, "load_start": round(os.getloadavg()[0], 2),
              "batch_size": BATCH, "history": HISTORY, "repeats": args.repeats,
              "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench_phone_") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for size in sizes:
            start = time.perf_counter()
            result["sizes"][size] = bench_size(size, root / size, args)
            result["sizes"][size]["wall_s"] = round(time.perf_counter() - start, 1)
            result["sizes"][size]["build_convert_hwm_mb"] = memory_mb()["vmhwm"]
    peak = matmul_peak_flops()
    result["matmul_gflops_1thread"] = round(peak / 1e9, 2)
    for size in result["sizes"].values():
        for timing in size["signatures"].values():
            if "gflops_per_s" in timing:
                timing["peak_fraction"] = round(timing["gflops_per_s"] * 1e9 / peak, 3)
    result["load_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
