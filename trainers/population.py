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

The work is ``pitune_tf.population.run_population``; this module parses the command line
and prints the test table. The run directory (``pitune_tf.population.run_directory``)::

    config.json  vocab.json  teacher/  student.keras  metrics.json  p_out.json
    summaries/{teacher,student}.txt  logs/{teacher,student}/ (TensorBoard)
    data/individual.parquet   (the individual users' events, when known)
"""

from pitune_tf.common import _env  # noqa: F401  (Keras 2 before tensorflow)

# isort: split

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from pitune_tf.common.cli import run_main  # noqa: E402
from pitune_tf.metrics import INTENT_METRIC_COLUMNS  # noqa: E402
from pitune_tf.population import (  # noqa: E402
    PRESETS,
    PopulationConfig,
    resolve,
    run_population,
)


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
    p.add_argument("--alpha", type=float, help="weight of the KL term (PITuning Eq. 7)")
    p.add_argument("--temperature", type=float, help="eps of PITuning Eq. 6")
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


def print_table(metrics):
    rows = [("teacher", metrics["teacher"].get("test")), ("student", metrics["student"].get("test"))]
    rows += [(name, value.get("test")) for name, value in metrics["baselines"].items()]
    keys = [key for key, _ in INTENT_METRIC_COLUMNS]
    print(f"{'test':<20}" + "".join(f"{k:>9}" for k in keys))
    for name, values in rows:
        if values:
            print(f"{name:<20}" + "".join(f"{values[k]:>9.4f}" for k in keys))


def main(argv=None):
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    metrics = run_population(config, args.out, overwrite=args.overwrite)
    print_table(metrics)
    print(f"run directory: {Path(args.out).resolve()} ({metrics['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
