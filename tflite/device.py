"""On-device personalization simulator: each user's model is tuned through the TFLite
interpreter only (``unlearn`` / ``train`` / ``infer`` / ``get_weights`` / ``set_weights`` /
``reset`` signatures), using only that user's data, exactly as a phone would; evaluated with
the same metrics, tables and ``--dump-predictions`` as ``python -m trainers.individual``.

Commands:

    python -m tflite.convert --run runs/demo              # writes runs/demo/student.tflite
    python -m tflite.device --model runs/demo/student.tflite
    python -m tflite.device --model runs/demo/student.tflite --data individual.csv \\
        --method pituning,finetune,none --users 10 --dump-predictions --out runs/demo/device
    # side by side with the Keras path (its --out directory)
    python -m tflite.device --model runs/demo/student.tflite --compare runs/demo/individual

The run directory (vocabularies, P_out, the config) is the model's folder unless ``--run``
says otherwise. Per user: the forgotten set (Eq. 8-10), ``unlearn`` steps (Eq. 11), ``train``
epochs with early stopping on the user's validation windows (best weights kept through
``get_weights`` / ``set_weights``), ``infer`` on the test windows. Batches, their order and
the seeds are the Keras trainer's (``pitune_tf.individual.user_runner.UserRunner``), so with the same
options the per-user results match the Keras path up to float round-off (see README).

Writes to --out (default RUN/device/): per_user.csv, summary.json, results.md, and with
--dump-predictions predictions.csv; with --compare also compare.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from pitune_tf.common.atomic import atomic_path, write_json, write_text
from pitune_tf.common.cli import run_main
from pitune_tf.common.errors import UserInputError

DEVICE_METHODS = ("none", "finetune", "pituning")


class DeviceRunner:
    """Tunes each user's model through a :class:`tflite.runtime.Runtime`.

    Args:
        runtime: tflite.runtime.Runtime. The training model (``student.tflite``).
        run: the population run (``pitune_tf.models.load_run``): P_out, P_pop, vocabularies.
        config: IndividualConfig. The same options as the Keras trainer.
    """

    def __init__(self, runtime, run, config):
        self.runtime = runtime
        self.run = run
        self.config = config
        self.n_intents = int(run.vocabs.n_intents)
        if runtime.n_intents != self.n_intents:
            raise UserInputError(
                f"the model outputs {runtime.n_intents} intents but the run has "
                f"{self.n_intents}: was it converted from this run?"
            )

    # ------------------------------------------------------------------ helpers
    def logits(self, windows) -> np.ndarray:
        if len(windows) == 0:
            return np.zeros((0, self.n_intents), np.float32)
        return self.runtime.infer(windows.features())["logits"]

    def probs(self, windows) -> np.ndarray:
        from pitune_tf.individual.user_runner import softmax

        return softmax(self.logits(windows))

    def cross_entropy(self, windows) -> float:
        """Mean cross-entropy of the current weights on ``windows`` (what early stopping
        compares; the formula of ``UserRunner.cross_entropy``)."""
        probs = self.probs(windows)
        return float(-np.mean(np.log(np.maximum(probs[np.arange(len(windows)), windows.label],
                                                1e-12))))

    def _batches(self, windows, rng):
        """One epoch of shuffled row-index batches of up to ``batch_size`` rows: the order of
        ``UserRunner._batches`` (one ``rng.permutation`` per epoch), so the device sees the
        Keras trainer's batches; the runtime pads the last one with weight-0 rows."""
        order = rng.permutation(len(windows))
        size = self.config.batch_size
        for i in range(0, len(order), size):
            yield order[i:i + size]

    @staticmethod
    def _take(windows, index):
        return {k: np.ascontiguousarray(v[index]) for k, v in windows.features().items()}

    def _fit(self, train, val, seed):
        """Fine-tuning (3.3.2): up to ``max_epochs`` epochs of ``train`` steps, early stopping
        on the validation cross-entropy with the starting weights as epoch 0; the best
        weights are kept (``get_weights`` / ``set_weights``)."""
        cfg, rt = self.config, self.runtime
        rng = np.random.default_rng(seed)
        has_val = len(val) > 0
        best = start = self.cross_entropy(val) if has_val else float("nan")
        best_epoch, best_weights = 0, rt.get_weights() if has_val else None
        train_ce, epochs = [], 0
        for epoch in range(1, cfg.max_epochs + 1):
            losses, weights = [], []
            for index in self._batches(train, rng):
                losses.append(rt.train(self._take(train, index), train.label[index],
                                       learning_rate=cfg.learning_rate))
                weights.append(len(index))
            train_ce.append(float(np.average(losses, weights=weights)))
            epochs = epoch
            if not has_val:
                continue
            loss = self.cross_entropy(val)
            if loss < best:
                best, best_epoch, best_weights = loss, epoch, rt.get_weights()
            elif epoch - best_epoch > cfg.patience:
                break
        if has_val:
            rt.set_weights(best_weights)
        else:
            best_epoch = epochs
        return {"epochs": epochs, "best_epoch": best_epoch, "val_ce_start": start,
                "val_ce_best": best, "train_ce_first": train_ce[0], "train_ce_last": train_ce[-1]}

    def _unlearn(self, user, sets):
        """Adaptive unlearning (Eq. 11): ``unlearn_steps`` steps cycling through shuffled
        epochs; no-op when F is empty. The original model's outputs M_o are the shipped
        model's, computed once with ``infer`` before the first step."""
        from pitune_tf.individual.user_runner import softmax, user_seed

        cfg, rt = self.config, self.runtime
        if not sets.forget or cfg.unlearn_steps == 0:
            return {"unlearn_steps": 0}
        forget, retain = sets.forget_mask(), sets.retain_mask()
        original = self.logits(user.train)  # [n_train, N]
        before = softmax(original)
        rng = np.random.default_rng(user_seed(cfg.seed, user.user))
        logs = []
        while len(logs) < cfg.unlearn_steps:
            for index in self._batches(user.train, rng):
                logs.append(rt.unlearn(self._take(user.train, index), original[index], retain,
                                       forget, lam=cfg.lam,
                                       learning_rate=cfg.unlearn_learning_rate))
                if len(logs) == cfg.unlearn_steps:
                    break
        after = self.probs(user.train)
        keep = retain.astype(bool)
        return {
            "unlearn_steps": cfg.unlearn_steps,
            "unlearn_loss_first": logs[0]["loss"],
            "unlearn_loss_last": logs[-1]["loss"],
            "forget_ce_last": logs[-1]["forget_ce"],
            "forget_prob_before": float((before @ forget).mean()),
            "forget_prob_after": float((after @ forget).mean()),
            "retain_max_abs_change": float(np.abs(after[:, keep] - before[:, keep]).max()),
        }

    # ------------------------------------------------------------------ methods
    def method_none(self, user, sets):
        return self.probs(user.test), {}

    def method_finetune(self, user, sets):
        from pitune_tf.individual.user_runner import user_seed

        info = self._fit(user.train, user.val, user_seed(self.config.seed, user.user))
        return self.probs(user.test), info

    def method_pituning(self, user, sets):
        from pitune_tf.individual.user_runner import user_seed

        info = self._unlearn(user, sets)
        info.update(self._fit(user.train, user.val, user_seed(self.config.seed, user.user)))
        return self.probs(user.test), info

    def run_user(self, user, methods):
        """Same result dict as ``UserRunner.run_user`` (so the same summaries apply)."""
        from pitune_tf.individual.user_runner import start_user_result

        sets, out = start_user_result(user, self.run, self.n_intents, self.config.static_threshold)
        for method in methods:
            self.runtime.reset()  # the shipped weights, fresh optimizer state
            start = time.perf_counter()
            scores, info = getattr(self, f"method_{method}")(user, sets)
            info["seconds"] = time.perf_counter() - start
            out["methods"][method] = {"scores": scores.astype(np.float32), "info": info}
        self.runtime.reset()
        return out


def single_window_ms(runtime, repeats=50) -> float:
    """Median ``infer`` latency of one window (ms)."""
    ones = np.ones((1, runtime.history), np.int32)
    x = {"location": ones, "weekday": ones, "slot": ones, "event": ones,
         "mask": np.ones((1, runtime.history), np.float32)}
    runtime.infer(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runtime.infer(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def compare_tables(device_dir, keras_dir) -> str:
    """Markdown: pooled metrics per method, device beside Keras, and the largest per-user
    metric difference (from the two ``per_user.csv``)."""
    from trainers.individual import TABLE_COLUMNS

    dev = pd.read_csv(Path(device_dir) / "per_user.csv")
    for path in (Path(keras_dir) / "per_user.csv", Path(keras_dir) / "summary.json",
                 Path(device_dir) / "summary.json"):
        if not path.is_file():
            raise UserInputError(f"--compare: {path} not found (run trainers.individual first)")
    ker_path = Path(keras_dir) / "per_user.csv"
    ker = pd.read_csv(ker_path)
    import json

    dev_sum = json.loads((Path(device_dir) / "summary.json").read_text())["methods"]
    ker_sum = json.loads((Path(keras_dir) / "summary.json").read_text())["methods"]
    lines = ["## On-device (TFLite) vs Keras, same users, same options", "",
             "| Method | path | " + " | ".join(c for _, c in TABLE_COLUMNS) + " | users |",
             "|---|---|" + "---|" * (len(TABLE_COLUMNS) + 1)]
    diffs = {}
    for method in dev_sum:
        if method not in ker_sum:
            continue
        for name, s in (("device", dev_sum[method]), ("keras", ker_sum[method])):
            lines.append(f"| {method} | {name} | "
                         + " | ".join(f"{s['pooled'][k]:.4f}" for k, _ in TABLE_COLUMNS)
                         + f" | {s['users']} |")
        d = dev[dev.method == method].set_index("user_id")
        k = ker[ker.method == method].set_index("user_id")
        common = d.index.intersection(k.index)
        cols = [c for c, _ in TABLE_COLUMNS]
        diffs[method] = (float(np.abs(d.loc[common, cols].to_numpy()
                                      - k.loc[common, cols].to_numpy()).max())
                         if len(common) else float("nan"), len(common))
    lines += ["", "| Method | users compared | max per-user metric difference |", "|---|---|---|"]
    lines += [f"| {m} | {n} | {v:.2e} |" for m, (v, n) in diffs.items()]
    return "\n".join(lines) + "\n"


def build_parser():
    from pitune_tf.individual.individual_config import IndividualConfig
    from trainers.individual import add_tuning_options

    defaults = IndividualConfig()
    p = argparse.ArgumentParser(prog="python -m tflite.device", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="student.tflite (python -m tflite.convert)")
    p.add_argument("--run", help="population run directory (default: the model's folder)")
    p.add_argument("--data", help="individual users' events (CSV/Parquet); default RUN/data/individual.parquet")
    p.add_argument("--mapping", help="event -> intent mapping file, when --data has no intent column")
    p.add_argument("--method", default=",".join(DEVICE_METHODS),
                   help=f"comma-separated from {', '.join(DEVICE_METHODS)} (default: %(default)s)")
    p.add_argument("--users", type=int, default=0, help="first N users by id (0 = all)")
    p.add_argument("--backend", default="auto", help="auto, litert, tflite_runtime or tf")
    p.add_argument("--dump-predictions", action="store_true", help="write predictions.csv")
    p.add_argument("--compare", help="a trainers.individual output directory to compare with")
    p.add_argument("--out", help="output directory (default RUN/device)")
    add_tuning_options(p, defaults)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    from pitune_tf.data import read_events
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.user_data import prepare_users
    from pitune_tf.models import load_run
    from tflite.runtime import Runtime
    from trainers.individual import markdown_tables, summarize

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in DEVICE_METHODS]
    if unknown or not methods:
        raise UserInputError(f"unknown method {unknown or args.method!r}; on the device: "
                             f"{', '.join(DEVICE_METHODS)}")
    if args.users < 0:
        raise UserInputError(f"--users must be >= 0, got {args.users}")
    model = Path(args.model)
    run_dir = Path(args.run) if args.run else model.parent
    runtime = Runtime(model, backend=args.backend)
    run = load_run(run_dir)
    config = IndividualConfig(
        methods=tuple(m for m in DEVICE_METHODS if m in methods),
        fractions=tuple(args.split),
        min_history=args.min_history or int(run.config.min_history),
        learning_rate=args.learning_rate,
        batch_size=runtime.batch_size,  # fixed in the model's train / unlearn signatures
        max_epochs=args.epochs,
        patience=args.patience,
        static_threshold=args.static_threshold,
        lam=args.lam,
        unlearn_steps=args.unlearn_steps,
        unlearn_learning_rate=args.unlearn_learning_rate,
        seed=args.seed,
    ).validate()
    if runtime.history != int(run.config.history):
        raise UserInputError(f"the model's window length is {runtime.history}, the run's "
                             f"{run.config.history}: was it converted from this run?")
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

    runner = DeviceRunner(runtime, run, config)
    start = time.perf_counter()
    results = []
    for user in tqdm(users, desc="users", unit="user", disable=args.quiet):
        results.append(runner.run_user(user, config.methods))
    elapsed = time.perf_counter() - start
    summary, per_user = summarize(results, run, config)
    device = {"pituning": {"parameters": runtime.num_weights,
                           "trainable_parameters": runtime.num_weights,
                           "infer_ms": single_window_ms(runtime)}}
    tokens = list(run.vocabs.intent.tokens)

    out = Path(args.out) if args.out else run_dir / "device"
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "per_user.csv") as tmp:
        per_user.to_csv(tmp, index=False)
    write_json(out / "summary.json", {
        "model": str(model), "backend": runtime.backend, "run": str(run_dir),
        "data": str(data_path), "config": dataclasses.asdict(config), "users": len(users),
        "seconds": elapsed,
        "skipped": {k: v for k, v in stats.items() if k != "skipped_users"},
        "skipped_users": stats["skipped_users"],
        "rare_intents": next(iter(summary.values()))["rare"] if summary else {},
        "methods": summary, "device_models": device,
        "forget_sets": {r["user"]: [tokens[i] for i in r["forget"]] for r in results},
    })
    table = markdown_tables(summary, device, stats, config)
    write_text(out / "results.md", table)
    if args.dump_predictions:
        from pitune_tf.individual.evaluation import predictions_frame

        frames = [predictions_frame(np.full(r["n_test"], r["user"]), r["timestamp"], r["y_true"],
                                    entry["scores"], tokens, method=method)
                  for r in results for method, entry in r["methods"].items()]
        with atomic_path(out / "predictions.csv") as tmp:
            pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
    print(table)
    if args.compare:
        comparison = compare_tables(out, args.compare)
        write_text(out / "compare.md", comparison)
        print(comparison)
    print(f"{len(users)} users in {elapsed:.1f}s on {runtime.backend}; outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
