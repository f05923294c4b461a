"""The fine-tuning stage of a UAF run: one mode fine-tuned, selected on the validation
split and scored on the test split."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from nextitnet.baselines import SCORE_MODES, baseline_scores
from nextitnet.evaluation import (
    gate_statistics,
    predict,
    profile_metrics,
    recommendation_metrics,
    streamed_logits,
)
from nextitnet.fine_tuning_loss import UAFLearner
from nextitnet.fit_progress import epochs_text, say
from nextitnet.modes import ORACLE
from nextitnet.stage_fit import fit_stage
from nextitnet.uaf_model import PRETRAINED_MODES, UAF_MODES, UAFModel
from nextitnet.validation_monitor import ValidationMonitor
from pitune_tf.common.atomic import atomic_path, write_json
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.json_files import read_json
from pitune_tf.common.keras import keras, tf
from pitune_tf.common.seeding import seed_everything


def new_uaf_model(mode, config, task) -> UAFModel:
    """The UAFModel of ``mode`` with ``config``'s shape for ``task``'s vocabularies."""
    return build_uaf_model(mode, config, len(task.source_vocab), task.n_outputs)


def build_uaf_model(mode, config, n_items, n_outputs) -> UAFModel:
    """The UAFModel of ``mode`` with ``config``'s shape, ``n_items`` source ids and
    ``n_outputs`` output ids (what :func:`fine_tune` trains and ``from_run`` reloads)."""
    return UAFModel(
        n_items, n_outputs, mode=mode, embedding_dim=config.embedding_dim,
        block_dilations=config.block_dilations, kernel_size=config.kernel_size,
        policy_kind=config.policy, policy_dim=config.policy_dim,
        policy_dilations=config.policy_dilations, temperature=config.temperature,
        adapter_dim=config.adapter_dim, tune_embedding=config.tune_embedding, seed=config.seed,
        representation=config.representation, name="uaf",
    )


def scorer(config, objective):
    """(score_fn (logits [n, C], split) -> dict, the metric that selects the best epoch:
    accuracy, or MRR at the first cut-off of ``config.topk``)."""
    if objective == "ce":
        return lambda logits, split, keep_ranks=False: profile_metrics(logits, split["target"]), "accuracy"

    def score_fn(logits, split, keep_ranks=False):
        return recommendation_metrics(logits, split["target"], config.n_negatives, seed=config.seed,
                                      k=config.topk, seen=split["seen"] if config.mask_seen else None,
                                      keep_ranks=keep_ranks)
    return score_fn, f"mrr@{config.topk[0]}"


TEST_RANKS = "test_ranks.npz"  # modes/<mode>/: each test row's sampled rank and user


def save_test_ranks(stage, scores, split) -> dict:
    """Moves ``scores``' per-row ``ranks`` (``recommendation_metrics(keep_ranks=True)``) into
    ``stage/test_ranks.npz`` beside the test rows' users; returns the scores without them."""
    ranks = scores.pop("ranks", None)
    if ranks is not None:
        with atomic_path(stage / TEST_RANKS) as tmp, open(tmp, "wb") as f:
            np.savez(f, ranks=ranks, user=np.asarray(split["user"]).astype(str))
    return scores


def check_splits(task) -> None:
    """An empty train, validation or test split of ``task`` is a UserInputError."""
    if any(len(task.splits[s]["target"]) == 0 for s in ("train", "val", "test")):
        raise UserInputError(f"empty split: sizes {task.sizes()} (need more data)")


def score_baseline(mode, config, task, score_fn, metric) -> dict:
    """The metrics of a baseline of ``SCORE_MODES`` or of the oracle (``ORACLE``: each row's
    true target distribution, known for synthetic data; no training) on the validation and
    test splits, in the layout of a fine-tuned mode's (no curves, no trainable parameters)."""
    start = time.time()
    train = task.splits["train"]
    scores = {}
    for name in ("val", "test"):
        split = task.splits[name]
        logits = split["oracle"] if mode == ORACLE else baseline_scores(
            mode, train["target"], task.n_outputs, len(split["target"]), seed=config.seed)
        scores[name] = score_fn(logits, split, keep_ranks=name == "test")
    return {
        "mode": mode, "test": scores["test"], "val": scores["val"], "best_epoch": None,
        "val_curve": [], "val_metric": metric, "val_curves": {}, "train_losses": {},
        "trainable_parameters": 0, "seconds": round(time.time() - start, 1),
    }


def _rounded(values) -> list:
    return [None if v is None else round(float(v), 3) for v in values]


def describe_gates(mode, stats) -> str:
    """Two lines on the gates of ``mode`` over the test users (``stats``:
    :func:`nextitnet.evaluation.gate_statistics`), each figure named as it is stored."""
    return (f"[{mode}] gates over {stats['users']} test users: {stats['distinct_patterns']} distinct "
            f"on/off patterns; per block, utilisation = share of users whose gate is on (>= 0.5) "
            f"{_rounded(stats['block_on_share'])} (utilisation.json, Figure 3)\n"
            f"[{mode}] per block, mean gate value over users {_rounded(stats['block_mean'])}, "
            f"std {_rounded(stats['block_std'])} (metrics.json gate_statistics)")


def fine_tune(mode, config, task, backbone, run_dir, objective, verbose="auto", source_windows=None) -> dict:
    """Fine-tunes ``mode`` on ``task`` in ``run_dir/modes/<mode>`` (resumable; a finished
    mode's ``metrics.json`` is returned as is) for at most ``config.epochs`` epochs, stopping
    after ``config.patience`` epochs without a better validation score; keeps its best
    validation epoch and scores it on the test split.

    Args:
        mode: str. One of ``nextitnet.uaf_model.MODES``, or of
            ``nextitnet.baselines.SCORE_MODES`` (scored without training).
        config: UAFConfig.
        task: EncodedTask.
        backbone: NextItNet or None. The pretrained backbone (modes of ``PRETRAINED_MODES``).
        run_dir: Path. The run (or profile label's) directory.
        objective: str. "bpr", "bce", "softmax" or "ce" (profile prediction).
        verbose: "auto", 2 or 0: what is printed (:mod:`nextitnet.fit_progress`).
        source_windows: int array [n, L + 1] or None. Every source window (MTL's source
            objective).
    Returns:
        dict: test scores, best and stopping epochs, validation curves, epoch-mean training losses,
        trainable parameters, seconds and (UAF modes) per-block ``utilisation`` (the share
        of test users whose gate is on, UAF Figure 3) and ``gate_statistics``
        (:func:`nextitnet.evaluation.gate_statistics`).
    """
    stage = Path(run_dir) / "modes" / mode
    done = stage / "metrics.json"
    if done.is_file():
        return read_json(done)
    check_splits(task)
    train, val, test = (task.splits[s] for s in ("train", "val", "test"))
    stage.mkdir(parents=True, exist_ok=True)
    score_fn, metric = scorer(config, objective)
    if mode in SCORE_MODES or mode == ORACLE:
        metrics = score_baseline(mode, config, task, score_fn, metric)
        save_test_ranks(stage, metrics["test"], test)
        write_json(done, metrics)
        return metrics
    seed_everything(config.seed)
    model = new_uaf_model(mode, config, task)
    if mode in PRETRAINED_MODES:
        model.load_pretrained(backbone)
    learner = UAFLearner(model, objective=objective, gamma=config.gamma, beta=config.beta,
                         reward_top_k=config.reward_top_k, reward_protocol=config.reward_protocol,
                         n_negatives=config.n_negatives, reward_form=config.reward_form,
                         rl_warmup_epochs=config.rl_warmup_epochs,
                         rl_warmup_gates=config.rl_warmup_gates, entropy_weight=config.entropy_weight,
                         source_windows=source_windows if mode == "mtl" else None)
    learner.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    learner(tf.constant(train["source"][:2]))
    if config.head_bias_init == "popularity" and objective != "ce":
        counts = np.bincount(train["target"], minlength=task.n_outputs).astype(np.float32)
        model.head.dense.bias.assign(np.log1p(counts))  # b_n: the model starts at MostPop
        model.head.dense.kernel.assign(tf.zeros_like(model.head.dense.kernel))  # W_n = 0
    monitor = ValidationMonitor(
        model, lambda logs: score_fn(streamed_logits(model, val["source"]), val), metric, stage,
        patience=config.patience)
    start = time.time()
    prefix = f"[{mode}]" + ("" if task.task == "recommendation" else f" {task.task.split(':')[-1]}:")
    say(f"{prefix} fine-tuning on {len(train['target'])} training rows, at most "
        f"{epochs_text(config.epochs)} (patience {config.patience}, best validation {metric} kept)", verbose)
    train_losses = fit_stage(
        learner, {"source": train["source"], "target": train["target"]}, config.batch_size,
        config.seed, config.epochs, stage, verbose=verbose, monitor=monitor,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: learner.start_epoch(e))],
    )
    say(f"{prefix} {monitor.summary()}", verbose)
    model.load_weights(str(stage / "best.weights.h5"))
    _, gates = predict(model, test["source"], keep_logits=False)
    metrics = {
        "mode": mode,
        "test": save_test_ranks(stage, score_fn(streamed_logits(model, test["source"]), test,
                                                keep_ranks=True), test),
        "best_epoch": monitor.state["best"]["epoch"],
        "stopped_epoch": monitor.state.get("stopped_epoch"),
        "val_curve": monitor.curve(),
        "val_metric": metric,
        "val_curves": monitor.curves(),
        "train_losses": train_losses,
        "trainable_parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        "seconds": round(time.time() - start, 1),
    }
    if mode in UAF_MODES:
        metrics["gate_statistics"] = gate_statistics(gates, test["user"])
        metrics["utilisation"] = metrics["gate_statistics"]["block_on_share"]
        say(describe_gates(mode, metrics["gate_statistics"]), verbose)
    if mode == "rl":
        logs = metrics["train_losses"]
        metrics["rl_diagnostics"] = {
            "nonzero_advantage_batch_share": logs.get("advantage_batch", []),
            "nonzero_advantage_row_share": logs.get("advantage_nonzero", []),
            "correct_share": logs.get("correct", []), "reward": logs.get("reward", []),
            "correct_differs_row_share": logs.get("correct_differs", []),
            "rl_active": logs.get("rl_active", []), "gate_mean": logs.get("gate_mean", []),
            "entropy": logs.get("entropy", []),
        }
        say("[rl] share of batches with a non-zero advantage, per epoch: "
            f"{_rounded(logs.get('advantage_batch', []))}", verbose)
    write_json(done, metrics)
    return metrics
