"""PITuning individual-level tuning (Section 3.3) and its evaluation (Section 4).

For every individual user, starting from the population run's distilled student: the
forgotten set (Eq. 8-10), adaptive unlearning (Eq. 11), fine-tuning with early stopping on
the user's validation windows, and the paper's baselines; metrics pooled over all users'
test windows and averaged over users.

Commands:

    # the demo's individual users (RUN/data/individual.parquet), the default methods
    python -m trainers.individual --run runs/demo
    # every method (FP / PP on --fp-users users only), 10 users, 2 processes
    python -m trainers.individual --run runs/demo --method all --users 10 --workers 2
    # your own individual log, one method, every test prediction written out
    python -m trainers.individual --run runs/demo --data individual.csv --method pituning \\
        --dump-predictions --out runs/demo/individual_csv

Methods: pituning (unlearning then fine-tuning), finetune (fine-tuning only: the
I-unlearning ablation), focal, oversample (Figure 8), none (the shipped student), lgbm
(Appendix E), fp / pp (Table 3: the teacher, fully or partially tuned per user).

Writes to --out (default RUN/individual/): per_user.csv, summary.json, results.md (Table 2
and Table 3 style tables) and, with --dump-predictions, predictions.csv.
"""

from pitune_tf.common import _env  # noqa: F401  (Keras 2 before tensorflow)

# isort: split

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from pitune_tf.common.atomic import atomic_path, write_json, write_text  # noqa: E402
from pitune_tf.common.cli import run_main  # noqa: E402
from pitune_tf.common.errors import UserInputError  # noqa: E402
from pitune_tf.individual.individual_config import (  # noqa: E402
    DEVICE_METHODS,
    METHODS,
    IndividualConfig,
)
from pitune_tf.metrics import INTENT_METRIC_COLUMNS  # noqa: E402

logger = logging.getLogger("trainers.individual")

METHOD_ORDER = ("none", "finetune", "focal", "oversample", "pituning", "lgbm", "fp", "pp")
TABLE_COLUMNS = INTENT_METRIC_COLUMNS

_RUNNER = None  # the worker process's UserRunner


def set_single_thread():
    """One TF thread per process (workers run side by side; results independent of threads)."""
    from pitune_tf.common.keras import tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime is already up (an embedding process, the tests)
        logger.debug("TensorFlow already initialized; thread counts unchanged")


def _init_worker(run_dir, config):
    global _RUNNER
    set_single_thread()
    from pitune_tf.individual.user_runner import UserRunner

    _RUNNER = UserRunner(run_dir, config)


def _work(user, methods):
    return _RUNNER.run_user(user, methods)


def add_tuning_options(p, defaults):
    """The per-user tuning options shared with the on-device simulator (``tflite.device``)."""
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--min-history", type=int, default=0, help="0 = the run's min_history")
    p.add_argument("--split", type=float, nargs=3, default=list(defaults.fractions),
                   metavar=("TRAIN", "VAL", "TEST"), help="per-user chronological fractions")
    p.add_argument("--epochs", type=int, default=defaults.max_epochs, help="max fine-tuning epochs")
    p.add_argument("--patience", type=int, default=defaults.patience)
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    p.add_argument("--unlearn-steps", type=int, default=defaults.unlearn_steps)
    p.add_argument("--unlearn-learning-rate", type=float, default=defaults.unlearn_learning_rate)
    p.add_argument("--lam", type=float, default=defaults.lam, help="lambda of Eq. 11")
    p.add_argument("--static-threshold", type=float, default=defaults.static_threshold,
                   help="Eq. 8's epsilon (a share of P_out); default 0.2 / N_I")


def build_parser():
    defaults = IndividualConfig()
    p = argparse.ArgumentParser(prog="python -m trainers.individual", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="population run directory (trainers.population --out)")
    p.add_argument("--data", help="individual users' events (CSV/Parquet); default RUN/data/individual.parquet")
    p.add_argument("--mapping", help="event -> intent mapping file, when --data has no intent column")
    p.add_argument("--method", default=",".join(defaults.methods),
                   help=f"comma-separated, from {', '.join(METHODS)}, or 'all' (default: %(default)s)")
    p.add_argument("--users", type=int, default=0, help="first N users by id (0 = all)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (users split among them)")
    p.add_argument("--fp-users", type=int, default=defaults.fp_users,
                   help="users (the first by id) on which fp / pp run (default: %(default)s)")
    p.add_argument("--dump-predictions", action="store_true", help="write predictions.csv")
    p.add_argument("--out", help="output directory (default RUN/individual)")
    add_tuning_options(p, defaults)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--focal-gamma", type=float, default=defaults.focal_gamma)
    p.add_argument("--oversample-ratio", type=float, default=defaults.oversample_ratio)
    p.add_argument("--lgbm-iterations", type=int, default=defaults.lgbm_iterations)
    p.add_argument("--fp-learning-rate", type=float, default=defaults.fp_learning_rate)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_methods(text):
    methods = list(METHODS) if text.strip() == "all" else [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UserInputError(f"unknown method {unknown or text!r}; choose from {', '.join(METHODS)} or all")
    return tuple(m for m in METHOD_ORDER if m in methods)


def config_from_args(args, run_config):
    return IndividualConfig(
        methods=parse_methods(args.method),
        fractions=tuple(args.split),
        min_history=args.min_history or int(run_config.min_history),
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        patience=args.patience,
        static_threshold=args.static_threshold,
        lam=args.lam,
        unlearn_steps=args.unlearn_steps,
        unlearn_learning_rate=args.unlearn_learning_rate,
        focal_gamma=args.focal_gamma,
        oversample_ratio=args.oversample_ratio,
        lgbm_iterations=args.lgbm_iterations,
        fp_users=args.fp_users,
        fp_learning_rate=args.fp_learning_rate,
        seed=args.seed,
    ).validate()


def run_users(run_dir, config, users, workers=1, progress=True):
    """Runs ``config.methods`` on every user; FP / PP on the first ``config.fp_users`` only.

    Returns the per-user result dicts of ``UserRunner.run_user``, in the order of ``users``.
    Serial (``workers <= 1``, in this process) and parallel runs give the same results.
    """
    tasks = []
    for i, user in enumerate(users):
        methods = [m for m in config.methods if m not in DEVICE_METHODS or i < config.fp_users]
        tasks.append((user, methods))
    results = [None] * len(tasks)
    bar = tqdm(total=len(tasks), desc="users", unit="user", disable=not progress)
    if workers <= 1:
        set_single_thread()
        from pitune_tf.individual.user_runner import UserRunner

        runner = UserRunner(run_dir, config)
        for i, (user, methods) in enumerate(tasks):
            results[i] = runner.run_user(user, methods)
            bar.update(1)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                 initargs=(str(run_dir), config)) as pool:
            futures = {pool.submit(_work, user, methods): i for i, (user, methods) in enumerate(tasks)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
    bar.close()
    return results


def summarize(results, run, config):
    """Per-method metrics (pooled, mean over users, rare-intent recall, gap) and per-user rows."""
    from pitune_tf.individual.evaluation import evaluate_users
    from pitune_tf.metrics import intent_metrics

    tokens = list(run.vocabs.intent.tokens)
    methods = [m for m in METHOD_ORDER if any(m in r["methods"] for r in results)]
    summary, rows = {}, []
    for method in methods:
        done = [r for r in results if method in r["methods"]]
        summary[method] = evaluate_users([r["y_true"] for r in done],
                                         [r["methods"][method]["scores"] for r in done],
                                         run.p_pop, n_rare=config.n_rare, intent_tokens=tokens)
        summary[method]["seconds_per_user"] = float(
            np.mean([r["methods"][method]["info"]["seconds"] for r in done]))
    for r in results:
        base = {
            "user_id": r["user"], "n_train": r["n_train"], "n_val": r["n_val"], "n_test": r["n_test"],
            "static": "|".join(tokens[i] for i in r["static"]),
            "dynamic": "|".join(tokens[i] for i in r["dynamic"]),
            "forget": "|".join(tokens[i] for i in r["forget"]),
            "retain": "|".join(tokens[i] for i in r["retain"]),
        }
        for method in methods:
            if method not in r["methods"]:
                continue
            entry = r["methods"][method]
            metrics = intent_metrics(r["y_true"], entry["scores"])
            rows.append({**base, "method": method, **{k: float(v) for k, v in metrics.items()},
                         **{k: v for k, v in entry["info"].items() if np.isscalar(v)}})
    return summary, pd.DataFrame(rows)


def device_models(run, results, methods, config):
    """Table 3's columns: parameters, trainable parameters and single-sample inference time
    (ms, median of 50 calls, one thread) of each device model, with its metrics on the users
    where FP / PP ran (so every row is measured on the same users)."""
    from pitune_tf.individual.evaluation import evaluate_users
    from pitune_tf.individual.user_runner import set_partial_tuning

    fp_users = [r for r in results if any(m in r["methods"] for m in DEVICE_METHODS)]
    rows = {}
    student = run.student
    rows["pituning"] = {"parameters": int(student.count_params()),
                        "trainable_parameters": _trainable(student),
                        "infer_ms": _latency_ms(student)}
    if "lgbm" in methods:
        infos = [r["methods"]["lgbm"]["info"] for r in results if "lgbm" in r["methods"]]
        nodes = int(np.mean([i["lgbm_nodes"] for i in infos]))
        rows["lgbm"] = {"parameters": nodes, "trainable_parameters": nodes,
                        "infer_ms": float(np.median([i["lgbm_infer_ms"] for i in infos]))}
    if any(m in methods for m in DEVICE_METHODS):
        teacher = run.teacher
        latency = _latency_ms(teacher)
        for method in DEVICE_METHODS:
            if method in methods:
                set_partial_tuning(teacher, method == "pp")
                rows[method] = {"parameters": int(teacher.count_params()),
                                "trainable_parameters": _trainable(teacher), "infer_ms": latency}
        set_partial_tuning(teacher, False)
    for method, row in rows.items():
        subset = fp_users if fp_users else results
        done = [r for r in subset if method in r["methods"]]
        if done:
            metrics = evaluate_users([r["y_true"] for r in done],
                                     [r["methods"][method]["scores"] for r in done], run.p_pop)
            row.update(users=len(done), prec_w=metrics["pooled"]["prec_w"],
                       prec_m=metrics["pooled"]["prec_m"])
    return rows


def _trainable(model):
    return int(sum(int(np.prod(v.shape)) for v in model.trainable_variables))


def _latency_ms(model, repeats=50):
    """Median single-window inference time (ms) of a traced call of an ``IntentPredictor``;
    NaN (with a warning) if the model cannot be traced here, so the tables are still written."""
    from pitune_tf.common.keras import tf

    x = model.dummy_inputs(batch_size=1)
    infer = tf.function(lambda inputs: model(inputs, training=False), autograph=False)
    try:
        infer(x)
    except Exception as err:  # noqa: BLE001  (timing is a report column, not a result)
        logger.warning("could not time %s: %s", model.name, str(err).splitlines()[0])
        return float("nan")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        infer(x).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def _fmt(value):
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.4f}"


def _count(n):
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K" if n >= 1e3 else str(n)


def markdown_tables(summary, device, stats, config):
    """Table 2 (pooled and mean over users), the long-tail view, and Table 3 in markdown."""
    lines = ["## Individual-level results (Table 2 style)", ""]
    for scope, title in (("pooled", "pooled over all users' test windows"), ("mean", "mean over users")):
        lines += [f"**{title}**", "",
                  "| Model | " + " | ".join(c for _, c in TABLE_COLUMNS) + " | users | windows |",
                  "|---|" + "---|" * (len(TABLE_COLUMNS) + 2)]
        for method, s in summary.items():
            lines.append(f"| {method} | " + " | ".join(_fmt(s[scope][k]) for k, _ in TABLE_COLUMNS)
                         + f" | {s['users']} | {s['windows']} |")
        lines.append("")
    rare = next(iter(summary.values()))["rare"] if summary else {}
    lines += ["**Long tail (Figure 8)**: recall on the population's 3 rarest intents (pooled), and "
              "the weighted-minus-macro gap (smaller = fairer across intents)", "",
              "| Model | " + " | ".join(f"Rec[{k}]" for k in rare)
              + " | mean rare recall | Prec_w-Prec_m | Rec_w-Rec_m | s/user |",
              "|---|" + "---|" * (len(rare) + 4)]
    for method, s in summary.items():
        lines.append(f"| {method} | " + " | ".join(_fmt(v) for v in s["rare"].values())
                     + f" | {_fmt(s['rare_recall_mean'])} | {_fmt(s['gap']['prec'])} | "
                     f"{_fmt(s['gap']['rec'])} | {s['seconds_per_user']:.2f} |")
    lines += ["", "## Device models (Table 3 style)", "",
              "| Model | Prec_w | Prec_m | users | Infer (1 sample, ms) | Params (Trainable) |",
              "|---|---|---|---|---|---|"]
    for method, row in device.items():
        lines.append(f"| {method} | {_fmt(row.get('prec_w'))} | {_fmt(row.get('prec_m'))} | "
                     f"{row.get('users', '—')} | {row['infer_ms']:.3f} | "
                     f"{_count(row['parameters'])} ({_count(row['trainable_parameters'])}) |")
    skipped = {k: stats[k] for k in ("too_few_events", "no_train_windows", "no_test_windows")}
    lines += ["", f"Users skipped: {skipped}; values mapped to <unk>: {stats['unknown']}; "
              f"windows dropped for an unknown next intent: {stats['unknown_label_windows']}.", ""]
    return "\n".join(lines)


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.workers < 1:
        raise UserInputError(f"--workers must be >= 1, got {args.workers}")
    if args.users < 0:
        raise UserInputError(f"--users must be >= 0, got {args.users}")
    set_single_thread()
    from pitune_tf.data import read_events
    from pitune_tf.individual.user_data import prepare_users
    from pitune_tf.models import load_run

    run_dir = Path(args.run)
    run = load_run(run_dir)
    config = config_from_args(args, run.config)
    data_path = Path(args.data) if args.data else run.individual_data_path
    if data_path is None:
        raise UserInputError(f"run directory {run_dir} is missing data/individual.parquet; pass --data")
    df = read_events(data_path, mapping=args.mapping)
    users, stats = prepare_users(df, run.vocabs, history=run.config.history,
                                 slot_minutes=run.config.slot_minutes, fractions=config.fractions,
                                 min_history=config.min_history)
    if args.users:
        users = users[: args.users]
    if not users:
        raise UserInputError(f"no user of {data_path} has both training and test windows ({stats})")
    out = Path(args.out) if args.out else run_dir / "individual"
    start = time.perf_counter()
    results = run_users(run_dir, config, users, workers=args.workers, progress=not args.quiet)
    elapsed = time.perf_counter() - start
    summary, per_user = summarize(results, run, config)
    tokens = list(run.vocabs.intent.tokens)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "per_user.csv") as tmp:
        per_user.to_csv(tmp, index=False)
    if args.dump_predictions:
        from pitune_tf.individual.evaluation import predictions_frame

        frames = [predictions_frame(np.full(r["n_test"], r["user"]), r["timestamp"], r["y_true"],
                                    entry["scores"], tokens, method=method)
                  for r in results for method, entry in r["methods"].items()]
        with atomic_path(out / "predictions.csv") as tmp:
            pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
    summary_json = {
        "run": str(run_dir), "data": str(data_path), "config": dataclasses.asdict(config),
        "users": len(users), "workers": args.workers, "seconds": elapsed,
        "skipped": {k: v for k, v in stats.items() if k != "skipped_users"},
        "skipped_users": stats["skipped_users"],
        "rare_intents": next(iter(summary.values()))["rare"] if summary else {},
        "methods": summary, "device_models": {},
        "forget_sets": {r["user"]: [tokens[i] for i in r["forget"]] for r in results},
    }
    write_json(out / "summary.json", summary_json)  # before the timings: results are safe
    device = device_models(run, results, config.methods, config)
    summary_json["device_models"] = device
    write_json(out / "summary.json", summary_json)
    table = markdown_tables(summary, device, stats, config)
    write_text(out / "results.md", table)
    print(table)
    print(f"{len(users)} users in {elapsed:.1f}s with {args.workers} worker(s); outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
