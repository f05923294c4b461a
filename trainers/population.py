"""PITuning population-level tuning (Sec. 3.2, Algorithm 1 top half): train the GPT2 teacher
with intent attention and masked event reconstruction, distill it into the on-device student,
and write a run directory.

Commands::

    python -m trainers.population                          # demo preset, embedded synthetic data
    python -m trainers.population --out runs/demo_noiat --no-iat
    python -m trainers.population --no-reconstruction --tuning partial --backbone random:4x128
    python -m trainers.population --preset paper --data events.parquet --out runs/paper
    python -m trainers.population --data population.csv individual.csv --mapping map.csv
    python -m trainers.population --config my.json --alpha 0.7 --temperature 2

Precedence: command line > ``--config FILE.json`` > ``--preset`` defaults. Running again with
the same ``--out`` resumes an interrupted run from its last completed epoch and ends with the
same result as an uninterrupted one (with dropout 0, the demo's setting); a finished run
directory is only replaced with ``--overwrite``.

The run directory::

    config.json  vocab.json  teacher/  student.keras  metrics.json  p_out.json
    summaries/{teacher,student}.txt  logs/{teacher,student}/ (TensorBoard)
    data/individual.parquet   (the individual users' events, when known)
"""

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from pitune_tf.common import _env  # noqa: F401  (Keras 2 before tensorflow)
from pitune_tf.common.atomic import atomic_path, write_json, write_text  # noqa: E402
from pitune_tf.common.cli import run_main  # noqa: E402
from pitune_tf.common.errors import UserInputError  # noqa: E402
from pitune_tf.common.keras import keras, tf  # noqa: E402
from pitune_tf.config import PRESETS, PopulationConfig, resolve  # noqa: E402

CHECKPOINTS = ".checkpoints"
MAX_EPOCH_VAL = 4096  # validation windows scored after each epoch


# ----------------------------------------------------------------------------- data


def load_data(config: PopulationConfig):
    """``(population_df, individual_df or None)`` canonical event tables."""
    from pitune_tf.data import read_events, split_users

    if not config.data:
        from pitune_tf.data.synthetic import generate

        synthetic = generate(config.synthetic_preset, seed=config.seed)
        return synthetic.population, synthetic.individual
    if len(config.data) == 2:
        return read_events(config.data[0], config.mapping), read_events(
            config.data[1], config.mapping
        )
    df = read_events(config.data[0], config.mapping)
    population_users, individual_users = split_users(
        df["user_id"], config.individual_fraction, config.seed
    )
    population = df[df["user_id"].isin(set(population_users))].reset_index(drop=True)
    individual = df[df["user_id"].isin(set(individual_users))].reset_index(drop=True)
    return population, (individual if len(individual) else None)


def prepare_windows(config, population):
    """Vocabularies, population (train, val, test) windows, event->intent id map."""
    from pitune_tf.data import Vocabularies, encode_events, make_windows, split_windows

    vocabs = Vocabularies.fit(population, slot_minutes=config.slot_minutes)
    encoded = encode_events(population, vocabs)
    windows = make_windows(encoded, history=config.history, min_history=config.min_history)
    train, val, test = split_windows(windows, fractions=tuple(config.split))
    if len(train) == 0 or len(test) == 0:
        raise UserInputError(
            f"the population data gives {len(train)} training and {len(test)} test windows; "
            "more events per user are needed"
        )
    train = train.subsample(config.max_train_windows, config.seed)
    # The event catalog's intent of each event id (its most frequent intent): the
    # "intent of the last event" baseline.
    counts = np.zeros((len(vocabs.event), vocabs.n_intents), np.int64)
    np.add.at(counts, (encoded.event, encoded.intent), 1)
    event_intent = counts.argmax(axis=1).astype(np.int32)
    return vocabs, (train, val, test), event_intent


def epoch_dataset(windows, batch_size, seed, first_epoch, epochs):
    """Training batches of epochs ``first_epoch .. epochs-1`` back to back.

    Epoch e is a stateless shuffle seeded by ``(seed, e)``, so a resumed run sees exactly the
    batches an uninterrupted run would have seen.
    """
    features = {k: tf.constant(v) for k, v in windows.features().items()}
    labels = tf.constant(windows.label)
    n = len(windows)

    def one_epoch(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    def gather(index):
        return {k: tf.gather(v, index) for k, v in features.items()}, tf.gather(labels, index)

    ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def eval_dataset(windows, batch_size):
    return windows.to_dataset(batch_size, shuffle=False)


# ----------------------------------------------------------------------------- training


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves model + optimizer after every epoch and records the completed epoch count."""

    def __init__(self, manager, state_path, phase):
        super().__init__()
        self.manager = manager
        self.state_path = state_path
        self.phase = phase

    def on_epoch_end(self, epoch, logs=None):
        self.manager.save(checkpoint_number=epoch + 1)
        write_json(self.state_path, {"phase": self.phase, "epoch": epoch + 1})


class ScalarLogger(keras.callbacks.Callback):
    """TensorBoard scalars of every epoch's logs (``train/<name>``, ``val/<name>``).

    Written with ``tf.summary.write``, which needs no ``tensorboard`` package (Keras'
    ``TensorBoard`` callback does, and TF 2.21 does not install it).
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = str(log_dir)
        self.writer = None

    def on_train_begin(self, logs=None):
        from tensorflow.core.framework import summary_pb2

        self.metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        )
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        with self.writer.as_default():
            for name, value in (logs or {}).items():
                tag = f"val/{name[4:]}" if name.startswith("val_") else f"train/{name}"
                tf.summary.write(tag, tf.constant(float(value)), step=epoch + 1,
                                 metadata=self.metadata)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


def _verbosity():
    return 1 if sys.stdout.isatty() else 2


def _optimizer(learning_rate, clipnorm):
    kwargs = {"clipnorm": clipnorm} if clipnorm else {}
    return keras.optimizers.Adam(learning_rate, **kwargs)


def fit_phase(trainer, variables, config, phase, epochs, train, val, out_dir):
    """``trainer.fit`` with TensorBoard logs and per-epoch checkpoints; resumes a phase."""
    ckpt_dir = out_dir / CHECKPOINTS / phase
    state_path = ckpt_dir / "state.json"
    trainer.optimizer.build(variables)
    checkpoint = tf.train.Checkpoint(trainer=trainer, optimizer=trainer.optimizer)
    manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir), max_to_keep=1)
    first_epoch = 0
    if manager.latest_checkpoint and state_path.exists():
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
        # the checkpoint's own number is the completed epoch count (state.json may lag it
        # when a run stopped between the two writes)
        first_epoch = int(manager.latest_checkpoint.rsplit("-", 1)[1])
        print(f"[{phase}] resuming after epoch {first_epoch}/{epochs}", flush=True)
    if first_epoch >= epochs:
        return None
    steps = math.ceil(len(train) / config.batch_size)
    val = val.subsample(MAX_EPOCH_VAL, config.seed)  # per-epoch validation (metrics.json: all)
    history = trainer.fit(
        epoch_dataset(train, config.batch_size, config.seed, first_epoch, epochs),
        validation_data=eval_dataset(val, 4 * config.batch_size) if len(val) else None,
        epochs=epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=steps,
        callbacks=[
            EpochCheckpoint(manager, state_path, phase),
            ScalarLogger(out_dir / "logs" / phase),
        ],
        verbose=_verbosity(),
    )
    return history.history


def train_teacher(config, vocabs, train, val, out_dir):
    """Trains the teacher with L_pop (Eq. 5), saves ``out_dir/teacher``; returns it."""
    from pitune_tf.models import PopulationTrainer, build_teacher
    from pitune_tf.models.teacher_io import load_teacher, save_teacher

    if (out_dir / "teacher").is_dir():
        print("[teacher] already trained: loading it", flush=True)
        return load_teacher(out_dir / "teacher", dropout=config.dropout)
    keras.utils.set_random_seed(config.seed)
    teacher = build_teacher(config, vocabs.sizes)
    trainer = PopulationTrainer(teacher, reconstruction=config.reconstruction, name="population")
    trainer.compile(optimizer=_optimizer(config.teacher_learning_rate, config.clipnorm))
    fit_phase(trainer, teacher.trainable_variables, config, "teacher", config.teacher_epochs,
              train, val, out_dir)
    save_teacher(teacher, out_dir / "teacher")
    return teacher


def distill_student(config, vocabs, teacher, train, val, out_dir):
    """Distills the teacher into the student (Eq. 6-7); returns the student."""
    from pitune_tf.models import Distiller, build_student

    keras.utils.set_random_seed(config.seed + 1)
    student = build_student(config, vocabs.sizes)
    distiller = Distiller(student, teacher, alpha=config.alpha,
                          temperature=config.temperature, name="distiller")
    distiller.compile(optimizer=_optimizer(config.student_learning_rate, config.clipnorm))
    fit_phase(distiller, student.trainable_variables, config, "student", config.student_epochs,
              train, val, out_dir)
    return student


# ----------------------------------------------------------------------------- evaluation


def softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_logits(model, windows, batch_size):
    """Logits ``[n, N_I]`` of ``model`` on ``windows`` (inference mode)."""
    if len(windows) == 0:
        return np.zeros((0, model.n_intents), np.float32)
    return model.predict(eval_dataset(windows, batch_size).map(lambda f, y: f), verbose=0)


def baseline_scores(windows, p_pop, event_intent):
    """Scores of the two baselines: most frequent intent; intent of the last event.

    Both break ties (for the ranking metrics) by the population intent share.
    """
    n = len(windows)
    most_frequent = np.tile(p_pop[None, :], (n, 1))
    last = np.zeros((n, len(p_pop)))
    last[np.arange(n), event_intent[windows.event[:, -1]]] = 1.0
    return {"most_frequent": most_frequent, "last_event_intent": last + 1e-3 * most_frequent}


def evaluate(config, teacher, student, splits, p_pop, event_intent):
    """metrics.json's content: teacher, student and the baselines on val and test."""
    from pitune_tf.metrics import intent_metrics

    _, val, test = splits
    results = {"teacher": {}, "student": {}, "baselines": {}}
    for split_name, windows in (("val", val), ("test", test)):
        if len(windows) == 0:
            continue
        for name, model in (("teacher", teacher), ("student", student)):
            scores = softmax(predict_logits(model, windows, 4 * config.batch_size))
            results[name][split_name] = intent_metrics(windows.label, scores)
        for name, scores in baseline_scores(windows, p_pop, event_intent).items():
            results["baselines"].setdefault(name, {})[split_name] = intent_metrics(
                windows.label, scores
            )
    return results


# ----------------------------------------------------------------------------- outputs


def model_summary(model) -> str:
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line), expand_nested=True)
    return "\n".join(lines) + "\n"


def save_student(student, path):
    """``student.keras`` written atomically (Keras needs the ``.keras`` suffix)."""
    with atomic_path(path) as tmp:
        staged = Path(f"{tmp}.keras")
        try:
            student.save(staged)
            os.replace(staged, tmp)
        finally:
            if staged.exists():
                staged.unlink()


def prepare_out_dir(config, out_dir, overwrite):
    """Creates ``out_dir``; checks that a resumed run has the same config."""
    config_path = out_dir / "config.json"
    if out_dir.exists() and (out_dir / "metrics.json").exists():
        if not overwrite:
            raise UserInputError(
                f"{out_dir} already holds a finished run; pass --overwrite or another --out"
            )
        shutil.rmtree(out_dir)
    if config_path.exists():
        saved = json.loads(config_path.read_text())
        if saved != json.loads(json.dumps(config.to_dict())):
            if not overwrite:
                raise UserInputError(
                    f"{out_dir} holds an unfinished run with a different config; pass "
                    "--overwrite to start over or use another --out"
                )
            shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(config_path, config.to_dict())


def run(config: PopulationConfig, out_dir, overwrite=False) -> dict:
    """The whole population stage; returns metrics.json's content."""

    out_dir = Path(out_dir)
    started = time.time()
    population, individual = load_data(config)  # bad data fails before anything is written
    created = not out_dir.exists()
    prepare_out_dir(config, out_dir, overwrite)
    try:
        return _run(config, out_dir, started, population, individual)
    except UserInputError:
        # e.g. a backbone that cannot be loaded: leave no half-made run directory behind
        if created and not (out_dir / CHECKPOINTS).exists():
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _run(config, out_dir, started, population, individual) -> dict:
    from pitune_tf.data import write_events

    vocabs, splits, event_intent = prepare_windows(config, population)
    vocabs.save(out_dir)
    train, val, test = splits
    print(f"windows: train {len(train)}, val {len(val)}, test {len(test)}; "
          f"{vocabs.n_intents} intent ids, {len(vocabs.event)} event ids", flush=True)

    teacher = train_teacher(config, vocabs, train, val, out_dir)
    student = distill_student(config, vocabs, teacher, train, val, out_dir)

    p_pop = np.bincount(train.label, minlength=vocabs.n_intents) / len(train)
    teacher_train = predict_logits(teacher, train, 4 * config.batch_size)
    p_out = np.bincount(teacher_train.argmax(axis=1), minlength=vocabs.n_intents) / len(train)
    metrics = evaluate(config, teacher, student, splits, p_pop, event_intent)
    metrics["windows"] = {"train": len(train), "val": len(val), "test": len(test)}
    metrics["parameters"] = {"teacher": int(teacher.count_params()),
                             "student": int(student.count_params())}
    metrics["seconds"] = round(time.time() - started, 1)

    save_student(student, out_dir / "student.keras")
    write_json(out_dir / "p_out.json", {"intents": vocabs.intent.tokens,
                                        "p_out": p_out.tolist(), "p_pop": p_pop.tolist()})
    write_text(out_dir / "summaries" / "teacher.txt", model_summary(teacher))
    write_text(out_dir / "summaries" / "student.txt", model_summary(student))
    if individual is not None:
        (out_dir / "data").mkdir(exist_ok=True)
        write_events(individual, out_dir / "data" / "individual.parquet")
    write_json(out_dir / "metrics.json", metrics)  # last: marks the run finished
    shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
    return metrics


# ----------------------------------------------------------------------------- CLI


def _bool_flag(parser, name, dest, help_text):
    parser.add_argument(f"--no-{name}", dest=dest, action="store_false", default=None,
                        help=help_text)


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m trainers.population",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    p.add_argument("--config", help="JSON file of config keys (overrides the preset)")
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--data", nargs="+", metavar="EVENTS",
                   help="canonical events file, or a population file and an individual file")
    p.add_argument("--mapping", help="event -> intent mapping (CSV or JSON)")
    p.add_argument("--synthetic-preset", help="synthetic data preset when no --data (demo)")
    p.add_argument("--history", type=int, help="window length L (30)")
    p.add_argument("--max-train-windows", type=int, help="subsample training windows (0 = all)")
    p.add_argument("--backbone", help="hub name, local checkpoint dir, or random:<layers>x<width>")
    p.add_argument("--embedding-dim", type=int, help="d (0 = backbone width / 4)")
    _bool_flag(p, "iat", "use_iat", "ablation: no intent attention (last position to the head)")
    _bool_flag(p, "reconstruction", "reconstruction", "ablation: no event reconstruction loss")
    p.add_argument("--mask-rate", type=float, help="masked share of history events (0.15)")
    p.add_argument("--tuning", choices=["full", "partial"], help="full or partial (OFA-style PP)")
    p.add_argument("--dropout", type=float, help="GPT2 dropout")
    p.add_argument("--student-layers", type=int)
    p.add_argument("--student-width", type=int)
    p.add_argument("--student-heads", type=int)
    p.add_argument("--alpha", type=float, help="weight of the KL term (Eq. 7)")
    p.add_argument("--temperature", type=float, help="eps of Eq. 6")
    p.add_argument("--teacher-epochs", type=int)
    p.add_argument("--student-epochs", type=int)
    p.add_argument("--epochs", type=int, help="both teacher and student epochs")
    p.add_argument("--teacher-learning-rate", type=float)
    p.add_argument("--student-learning-rate", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    return p


def config_from_args(args) -> PopulationConfig:
    overrides = {
        key: getattr(args, key)
        for key in (
            "mapping", "synthetic_preset", "history", "max_train_windows", "backbone",
            "embedding_dim", "use_iat", "reconstruction", "mask_rate", "tuning", "dropout",
            "student_layers", "student_width", "student_heads", "alpha", "temperature",
            "teacher_epochs", "student_epochs", "teacher_learning_rate",
            "student_learning_rate", "batch_size", "seed",
        )
    }
    if args.data:
        overrides["data"] = [str(Path(p).resolve()) for p in args.data]
    if args.epochs is not None:
        overrides["teacher_epochs"] = overrides["student_epochs"] = args.epochs
    return resolve(args.preset, args.config, overrides)


def _print_table(metrics):
    rows = [("teacher", metrics["teacher"].get("test")), ("student", metrics["student"].get("test"))]
    rows += [(name, value.get("test")) for name, value in metrics["baselines"].items()]
    from pitune_tf.metrics import INTENT_METRIC_COLUMNS

    keys = [key for key, _ in INTENT_METRIC_COLUMNS]
    print(f"{'test':<20}" + "".join(f"{k:>9}" for k in keys))
    for name, values in rows:
        if values:
            print(f"{name:<20}" + "".join(f"{values[k]:>9.4f}" for k in keys))


def main(argv=None):
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    metrics = run(config, args.out, overwrite=args.overwrite)
    _print_table(metrics)
    print(f"run directory: {Path(args.out).resolve()} ({metrics['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
