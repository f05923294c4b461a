"""PITuning population-level tuning (Sec. 3.2, Algorithm 1 top half): train the GPT2 teacher
with intent attention and masked event reconstruction, distill it into the on-device student,
and write a run directory.

Commands::

    python -m trainers.population                          # demo preset, embedded synthetic data
    python -m trainers.population --out runs/demo_noiat --no-iat
    python -m trainers.population --preset demo_fit --out runs/fit    # the demo, trained to fit
    python -m trainers.population --no-reconstruction --tuning partial --backbone random:4x128
    python -m trainers.population --preset paper --data events.parquet --out runs/paper
    python -m trainers.population --preset paper_small --out runs/paper_small   # the paper's
    #   choices (no repeat term, Eq. 3's plain sum, Adam 0.01, no clipping) at the demo's size
    python -m trainers.population --data population.csv individual.csv --mapping map.csv
    python -m trainers.population --data events.csv --individual-users 10   # 10 users held out
    python -m trainers.population --preset tiny --print-config   # the resolved settings, no run
    python -m trainers.population --config my.yaml --alpha 0.7 --temperature 2
    python -m trainers.population --config runs/demo --seed 1 --out runs/demo_seed1   # a run's config
    python -m trainers.population --data log.csv --mapping apps.csv --time-unit ms \\
        --columns user_id=uid,timestamp=ts,event=app --timezone Asia/Shanghai --unmapped other
    python -m trainers.launch --workers 2 -- trainers.population --out runs/demo2w   # 2 workers

Precedence: command line > ``--config`` (JSON, YAML or a run's config.json) > ``--preset``
defaults (the presets are described at the end of ``--help``); a run prints its settings
first, ``--print-config`` prints them all and exits. With one events file in ``--data``, a
seeded share of its users (``--individual-fraction``, 0.2, or ``--individual-users N``) is
held out for the individual stage (``data/individual.parquet``) and the others train the
population models.

Running again with the same ``--out`` resumes an interrupted run from its last completed
epoch and ends with the same result as an uninterrupted one (with dropout 0, the demo's
setting); a finished run directory is only replaced with ``--overwrite``. ``--quiet`` prints
only the test table, the run directory and errors.

The work is ``pitune_tf.population.run_population``; this module parses the command line
and prints the test table. The run directory (``pitune_tf.population.run_directory``)::

    config.json  vocab.json  teacher/  student.keras  metrics.json  p_out.json
    summaries/{teacher,student}.txt  logs/{teacher,student}/ (TensorBoard)
    training.json  (per phase: epochs run, the kept epoch, the per-epoch history)
    plots/{training_curves,attention_map,intent_distribution,confusion_matrix}.png
    data/individual.parquet   (the individual users' events, when known)
"""

import sys
from pathlib import Path

from pitune_tf.common.cli import parse_settings, run_main
from pitune_tf.population.command_line import (
    build_parser,
    config_from_args,
    settings_text,
)


def run(argv=None):
    """Parses ``argv`` and runs the population stage (TensorFlow is imported here, after
    parsing, so that ``--help`` and ``--print-config`` are instant); raises UserInputError on
    bad input."""
    parsed = parse_settings(build_parser(description=__doc__.split("\n\n")[0]), argv, config_from_args,
                            settings_text)
    if parsed is None:  # --print-config
        return 0
    args, config = parsed
    from pitune_tf.population import run_population
    from pitune_tf.population.command_line import metrics_text

    metrics = run_population(config, args.out, overwrite=args.overwrite, strategy=args.strategy)
    print(metrics_text(metrics))
    print(f"run directory: {Path(args.out).resolve()} ({metrics['seconds']} s)")
    return 0


def main(argv=None) -> int:
    """Entry point (``python -m trainers.population``, ``pitune-train``): the exit status."""
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
