"""PITuning's population stage as one function (Sec. 3.2, Algorithm 1 top half)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from pitune_tf.common.console import status
from pitune_tf.common.distribution import barrier, is_chief, make_strategy, worker_index
from pitune_tf.common.run_files import RunFiles
from pitune_tf.common.run_lock import run_lock
from pitune_tf.common.run_replacement import finish_replacement
from pitune_tf.layers.repeat_mixture import repeat_logits
from pitune_tf.population.data_preparation import load_data, prepare_windows
from pitune_tf.population.distillation import distill_student
from pitune_tf.population.evaluation import evaluate, model_scores, predicted_counts
from pitune_tf.population.plots import write_population_plots
from pitune_tf.population.population_config import PopulationConfig
from pitune_tf.population.run_directory import prepare_out_dir, resumable, write_outputs
from pitune_tf.population.teacher_training import train_teacher
from pitune_tf.population.training_loop import CHECKPOINTS, TRAINING_RECORD


def run_population(config: PopulationConfig, out_dir, overwrite=False, strategy="auto") -> dict:
    """Trains the teacher, distills the student, evaluates both and the baselines, and writes
    the run directory ``out_dir``; returns metrics.json's content.

    Running again with the same ``out_dir`` resumes an unfinished run from its last completed
    epoch; a finished run is only replaced with ``overwrite`` (else UserInputError).

    Under a multi-worker strategy every worker runs this function (``TF_CONFIG``; e.g.
    ``python -m trainers.launch``): the chief writes ``out_dir``; every other worker starts
    from a copy of the chief's resumable state (checkpoints, ``teacher/``) and writes to a
    temporary directory it deletes at the end (the usual MultiWorkerMirroredStrategy
    pattern: every worker saves, only the chief's files are kept). ``out_dir`` must then be
    on storage every worker reads.

    Args:
        config: PopulationConfig.
        out_dir: str or Path. The run directory (see ``run_directory``).
        overwrite: bool. Replace a finished run, or an unfinished one of another config.
        strategy: str (``pitune_tf.common.training_options.STRATEGIES``: auto, default,
            mirrored, multiworker) or a ``tf.distribute.Strategy``. Models, optimizers and
            metrics are built in its scope; each global batch of ``config.batch_size`` windows
            is split across its replicas.
    """
    out_dir = Path(out_dir)
    started = time.time()
    if isinstance(strategy, str):  # before any other TensorFlow work of the process
        strategy = make_strategy(strategy)
    config.check_memory()  # networks this machine cannot train fail before anything is written
    # bad data fails before anything is written
    population, individual, oracle = load_data(config, with_oracle=True)
    data = (population, individual, oracle)
    if not is_chief(strategy):
        return _run_worker(config, out_dir, strategy, started, data)
    with run_lock(out_dir):  # a second run on the same directory is refused
        created = not out_dir.exists()
        replaced = prepare_out_dir(config, out_dir, overwrite)  # a replaced run is kept aside
        barrier(strategy)  # the other workers copy the resumable state once it is in place
        try:
            with strategy.scope():
                metrics = _train_and_write(config, out_dir, started, *data)
        except BaseException:
            if replaced is not None:  # the user's finished run comes back
                finish_replacement(out_dir, replaced, succeeded=False)
            elif created and not resumable(out_dir):
                # e.g. a backbone that cannot be loaded, a crash before the first epoch
                # ended: no half-made run directory behind to refuse the corrected rerun
                shutil.rmtree(out_dir, ignore_errors=True)
            raise
        finish_replacement(out_dir, replaced, succeeded=True)
        return metrics


def _run_worker(config, out_dir, strategy, started, data) -> dict:
    """A non-chief worker: the same steps as the chief (their collective ops must match),
    from a copy of the chief's resumable state, written to a temporary directory."""
    barrier(strategy)  # the chief has prepared out_dir
    index, count = worker_index(strategy)
    with tempfile.TemporaryDirectory(prefix=f"pitune-worker{index}-") as tmp:
        work = Path(tmp) / "run"
        work.mkdir()
        for name in (CHECKPOINTS, "teacher", TRAINING_RECORD):
            source = out_dir / name
            if source.is_dir():
                shutil.copytree(source, work / name)
            elif source.is_file():
                shutil.copy2(source, work / name)
        status(f"worker {index} of {count}: the chief writes {out_dir}")
        with strategy.scope():
            return _train_and_write(config, work, started, *data)


def _train_and_write(config, out_dir, started, population, individual, oracle) -> dict:
    vocabs, splits, event_intent = prepare_windows(config, population)
    vocabs.save(out_dir)
    train, val, test = splits
    status(f"windows: train {len(train)}, val {len(val)}, test {len(test)}; "
           f"{vocabs.n_intents} intent ids, {len(vocabs.event)} event ids")
    # the copy term's starting repeat rates; a streamed training set keeps only its labels in
    # memory, so its in-memory validation windows give them
    counted = train if hasattr(train, "event") else val
    repeat_init = repeat_logits(counted.label, event_intent[counted.event[:, -1]], vocabs.n_intents)
    teacher = train_teacher(config, vocabs, train, val, out_dir, event_intent, repeat_init)
    student = distill_student(config, vocabs, teacher, train, val, out_dir, event_intent, repeat_init)

    p_pop = np.bincount(train.label, minlength=vocabs.n_intents) / len(train)
    # the teacher's predicted intents over the training windows, a piece at a time
    p_out = predicted_counts(teacher, train, 4 * config.batch_size, vocabs.n_intents) / len(train)
    scores = model_scores(config, teacher, student, splits)
    metrics = evaluate(config, teacher, student, splits, p_pop, event_intent, scores=scores)
    metrics["windows"] = {"train": len(train), "val": len(val), "test": len(test)}
    training = RunFiles(out_dir).json(TRAINING_RECORD, default=None)
    if training is not None:
        metrics["training"] = training
    metrics["parameters"] = {"teacher": int(teacher.count_params()),
                             "student": int(student.count_params())}
    write_population_plots(
        out_dir, metrics.get("training"), {"teacher": teacher, "student": student}, test,
        {name: scores[name, "test"] for name in ("teacher", "student") if (name, "test") in scores},
        vocabs.intent.tokens, len(vocabs.intent.reserved), config.batch_size)
    metrics["seconds"] = round(time.time() - started, 1)
    write_outputs(out_dir, vocabs, teacher, student, p_out, p_pop, individual, metrics,
                  individual_oracle=oracle)
    return metrics
