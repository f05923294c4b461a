"""A whole UAF run: pretraining, every mode's fine-tuning, evaluation and reports, resumable
in one run directory (what ``python -m trainers.uaf`` calls)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from nextitnet.data.cross_domain_data import CrossDomainData
from nextitnet.data.encoding import (
    PROFILE_LABELS,
    encode_profile_task,
    encode_recommendation_task,
    fit_source_vocab,
    pretrain_windows,
)
from nextitnet.fine_tuning_stage import check_splits, fine_tune
from nextitnet.fit_progress import say
from nextitnet.modes import ORACLE, RUN_MODES, SCORE_MODES, with_baselines
from nextitnet.pretraining_stage import pretrain_backbone, write_source_vocab
from nextitnet.reports import write_reports
from nextitnet.uaf_config import UAFConfig
from nextitnet.uaf_model import PRETRAINED_MODES
from nextitnet.uaf_recommender import dump_topk as write_topk
from nextitnet.uaf_recommender import write_target_vocab
from pitune_tf.common.atomic import write_json
from pitune_tf.common.divergence import accept_new_rates
from pitune_tf.common.errors import UserInputError, not_found
from pitune_tf.common.run_lock import run_lock
from pitune_tf.common.run_replacement import finish_replacement, prepare_run_dir

log = logging.getLogger(__name__)
TASKS = ("recommendation", "profile")
MIN_TEST_ROWS = 100  # fewer test rows than this: the scores are noisy (a warning)


def encode_tasks(config: UAFConfig, data: CrossDomainData, vocab, task: str) -> dict:
    """{name: EncodedTask}: the recommendation task, or one profile task per label."""
    if task == "recommendation":
        return {"recommendation": encode_recommendation_task(
            data, config.max_len, config.fractions, config.seed, config.train_fraction, vocab)}
    labels = [label for label in PROFILE_LABELS if label in data.profiles]
    if not labels:
        raise UserInputError(f"{data.name} has no profile labels (gender / age) for --task profile")
    return {label: encode_profile_task(data, label, config.max_len, config.fractions, config.seed,
                                       config.train_fraction, vocab) for label in labels}


def protocol_warnings(config: UAFConfig, tasks: dict) -> list[str]:
    """Warnings on the evaluation protocol (logged and stored in ``data.json``): a small test
    split, or fewer valid target items than ``config.n_negatives`` + 1 (negatives capped)."""
    warnings = []
    for name, task in tasks.items():
        n_test = len(task.splits["test"]["target"])
        if n_test < MIN_TEST_ROWS:
            warnings.append(f"{name}: only {n_test} test rows (< {MIN_TEST_ROWS}); scores are noisy")
        if task.task == "recommendation" and task.n_outputs - 2 < config.n_negatives:
            warnings.append(f"{name}: {task.n_outputs - 1} target items, so {task.n_outputs - 2} sampled "
                            f"negatives instead of n_negatives={config.n_negatives}")
    for warning in warnings:
        log.warning(warning)
    return warnings


def run_uaf(
    config: UAFConfig,
    data: CrossDomainData,
    run_dir,
    modes=("soft",),
    task="recommendation",
    pretrained=None,
    data_source=None,
    verbose="auto",
    dump_topk=0,
    overwrite=False,
) -> dict:
    """Pretrains (or loads) the backbone, fine-tunes every mode of ``modes``, scores it and
    writes the reports; running it again on the same ``run_dir`` resumes. The baselines
    MostPop and Random (``SCORE_MODES``, seconds) are always scored too, first, and, on data
    whose process is known (synthetic: ``data.target_oracle``), the oracle last, so that every
    table carries them. A ``run_dir`` holding a run of another configuration is an error
    unless ``overwrite``, which also starts a finished run over
    (:mod:`pitune_tf.common.run_replacement`: the old run is moved aside, put back if the new
    run fails, and removed once it has finished).

    ``run_dir`` ends up holding ``config.json``, ``source_vocab.json``, ``data.json``,
    ``pretrain/backbone.weights.h5``, ``modes/<mode>/{best.weights.h5,metrics.json}``
    (``profile_<label>/modes/...`` for the profile task), ``metrics.json``, ``table.md``,
    ``utilisation.json``/``.png`` and ``curves.png``; the recommendation task also
    ``target_vocab.json`` (what ``UAFRecommender.from_run`` reloads a mode with) and, with
    ``dump_topk``, ``modes/<mode>/topk.csv`` (each test user's top target items).

    Args:
        config: UAFConfig.
        data: CrossDomainData.
        run_dir: str or Path. The run directory (created if needed).
        modes: sequence of str. Modes of ``RUN_MODES`` (the baselines of
            ``nextitnet.baselines.SCORE_MODES``, scored without training, and the fine-tuning
            modes of ``nextitnet.uaf_model.MODES``), run in this order after the baselines
            (:func:`nextitnet.modes.with_baselines`).
        task: str. "recommendation" (Table 2) or "profile" (gender / age, Table 7).
        pretrained: str, Path or None. A run directory or backbone ``.weights.h5`` to reuse
            instead of pretraining.
        data_source: str or None. Where the data came from, recorded in ``config.json``
            (default ``data.name``).
        verbose: "auto" (a progress bar per fit on a terminal), 2 (one line per epoch) or 0
            (nothing printed): :mod:`nextitnet.fit_progress`.
        dump_topk: int. With K > 0, write the top-K target items per test user of every mode
            of ``modes`` (not of the baselines added to them)
            (:func:`nextitnet.uaf_recommender.dump_topk`; recommendation task only).
        overwrite: bool. Replace the run in ``run_dir`` (finished, or of another config).
    Returns:
        dict: ``{mode: metrics}``, or ``{mode: {label: metrics}}`` for the profile task
        (baselines first).
    """
    modes = list(modes)
    unknown = [m for m in modes if m not in RUN_MODES]
    if unknown or not modes:
        raise UserInputError(f"unknown mode(s) {unknown or modes!r}; choose from {', '.join(RUN_MODES)} or all")
    if task not in TASKS:
        raise UserInputError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if pretrained is not None and not Path(pretrained).exists():
        raise UserInputError(not_found("--pretrained", pretrained))
    if dump_topk and (int(dump_topk) < 0 or task != "recommendation"):
        raise UserInputError(f"--dump-topk needs K >= 1 and the recommendation task, got "
                             f"{dump_topk} with task {task}")
    run_dir = Path(run_dir)
    dumped = modes if dump_topk else []
    oracle = task == "recommendation" and data.target_oracle is not None  # synthetic data: the ceiling
    with run_lock(run_dir):  # a second run on the same directory is refused
        return _run_locked(config, data, run_dir, with_baselines(modes, oracle), task, pretrained, data_source,
                           verbose, int(dump_topk or 0), dumped, bool(overwrite))


def _run_locked(config, data, run_dir, modes, task, pretrained, data_source, verbose, dump_topk,
                dumped, overwrite):
    vocab = fit_source_vocab(data)
    tasks = encode_tasks(config, data, vocab, task)  # data that cannot be used fails before any write
    for encoded in tasks.values():
        check_splits(encoded)
        config.check_memory(len(vocab), encoded.n_outputs)  # before anything is written
    if task == "recommendation" and dump_topk > tasks["recommendation"].n_outputs - 1:
        raise UserInputError(f"--dump-topk {dump_topk}: the data has "
                             f"{tasks['recommendation'].n_outputs - 1} target items")
    record = {"config": dataclasses.asdict(config), "task": task,
              "data": data.name if data_source is None else data_source}
    # a run that diverged resumes with another learning rate
    for key, (old, new) in accept_new_rates(run_dir, record, ("learning_rate",)).items():
        say(f"the run in {run_dir} diverged: resuming it with {key} {new:g} (was {old:g})",
            verbose)
    # a finished run of the same config resumes (e.g. to add modes); --overwrite starts over
    replaced = prepare_run_dir(run_dir, record, overwrite, refuse_finished=False)
    try:
        results = _train_and_report(config, data, run_dir, modes, task, pretrained, verbose,
                                    dump_topk, dumped, vocab, tasks)
    except BaseException:
        finish_replacement(run_dir, replaced, succeeded=False)  # the replaced run comes back
        raise
    finish_replacement(run_dir, replaced, succeeded=True)
    return results


def describe_scores(scores, task, k) -> str:
    """``test mrr@5 0.1747, hr@5 0.3036, ndcg@5 0.2066; full ranking mrr@5 0.1896, hr@5
    0.3214`` (the first cut-off ``k``), or ``test accuracy 0.7812, f1 0.7790``."""
    if task != "recommendation":
        return f"test accuracy {scores['accuracy']:.4f}, f1 {scores['f1']:.4f}"
    sampled = ", ".join(f"{m}@{k} {scores[f'{m}@{k}']:.4f}" for m in ("mrr", "hr", "ndcg"))
    full = ", ".join(f"{m}@{k} {scores[f'full_{m}@{k}']:.4f}" for m in ("mrr", "hr"))
    return f"test {sampled}; full ranking {full}"


def _done(run_dir, mode) -> bool:
    return (Path(run_dir) / "modes" / mode / "metrics.json").is_file()


def _what_happened(mode, done_before) -> str:
    if done_before:
        return "done in an earlier run"
    return "scored without training" if mode in (*SCORE_MODES, ORACLE) else "fine-tuned"


def _train_and_report(config, data, run_dir, modes, task, pretrained, verbose, dump_topk, dumped,
                      vocab, tasks) -> dict:
    write_source_vocab(run_dir, vocab)
    needs_backbone = any(m in PRETRAINED_MODES for m in modes)
    backbone = pretrain_backbone(config, data, vocab, run_dir, pretrained, verbose) if needs_backbone else None
    if task == "recommendation":
        write_target_vocab(run_dir, tasks["recommendation"].output_tokens)
    write_json(run_dir / "data.json", {
        "summary": data.summary(),
        "tasks": {k: {"sizes": t.sizes(), "outputs": t.n_outputs, "dropped": t.dropped,
                      "unseen_in_train": t.unseen_in_train} for k, t in tasks.items()},
        "warnings": protocol_warnings(config, tasks)})
    objective = config.loss if task == "recommendation" else "ce"
    windows = pretrain_windows(data, vocab, config.max_len) if "mtl" in modes else None  # [n, L + 1]
    results = {}
    for index, mode in enumerate(modes, start=1):
        place = f"({index}/{len(modes)})"
        if task == "recommendation":
            done_before = _done(run_dir, mode)
            results[mode] = fine_tune(mode, config, tasks["recommendation"], backbone, run_dir, objective, verbose,
                                      source_windows=windows)
            say(f"[{mode}] {_what_happened(mode, done_before)} {place}: "
                f"{describe_scores(results[mode]['test'], task, config.topk[0])}", verbose)
            continue
        results[mode] = {}
        for label, encoded in tasks.items():
            done_before = _done(run_dir / f"profile_{label}", mode)
            result = fine_tune(mode, config, encoded, backbone, run_dir / f"profile_{label}", objective,
                               verbose, source_windows=windows)
            results[mode][label] = result
            say(f"[{mode}] {label}: {_what_happened(mode, done_before)} {place}: "
                f"{describe_scores(result['test'], task, config.topk[0])}", verbose)
    write_reports(run_dir, results, task, f"{data.name}, task {task}, train fraction {config.train_fraction}")
    for mode in dumped:
        path = write_topk(run_dir, mode, config, tasks["recommendation"], dump_topk)
        say(f"[{mode}] top-{dump_topk} target items per test user: {path}", verbose)
    return results
