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
    python -m trainers.launch --workers 2 -- trainers.population --out runs/demo2w   # 2 workers

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

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from pitune_tf.common.cli import run_main  # noqa: E402
from pitune_tf.population import run_population  # noqa: E402
from pitune_tf.population.command_line import (  # noqa: E402
    build_parser,
    config_from_args,
    format_table,
)


def main(argv=None):
    args = build_parser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    config = config_from_args(args)
    metrics = run_population(config, args.out, overwrite=args.overwrite, strategy=args.strategy)
    print(format_table(metrics))
    print(f"run directory: {Path(args.out).resolve()} ({metrics['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
