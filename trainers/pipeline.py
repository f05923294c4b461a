"""The whole PITuning journey in one command, on the embedded synthetic data unless
``--population-args "--data ..."`` says otherwise:

1. the population stage (``pitune_tf.population.run_population``, options as for
   ``trainers.population``): GPT2-style teacher with IAT and masked reconstruction, distilled
   into the on-device student;
2. the phone bundle (``tflite.convert``): ``RUN/student.tflite`` with its ``infer``, ``train``
   and ``unlearn`` signatures (builtin ops only), ``labels.txt``, ``vocab.json``,
   ``preprocessing.json``;
3. the on-device personalization of the individual users through the LiteRT signatures, the
   path a phone takes (``trainers.individual --backend litert``: the trivial baselines,
   ``none``, ``finetune`` and ``pituning``) into ``RUN/device/``;
4. the next-intent predictions of one individual user from the bundle
   (``RUN/predictions.csv``);
5. ``RUN/report.md``.

``--all-methods`` adds the individual stage with every method on the Keras backend
(``RUN/individual/``: prior, focal, oversample, LightGBM, FP / PP, ...).

Commands:

    python -m trainers.pipeline --out runs/demo            # the quickstart: ~5 min on 2 cores
    python -m trainers.pipeline --out runs/demo --all-methods --workers 2
    python -m trainers.pipeline --out runs/big --users 30 --population-args "--preset demo_fit"
    python -m trainers.pipeline --out runs/demo --skip-population   # reuse a finished run
"""

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from pitune_tf.common.atomic import write_json
from pitune_tf.common.cli import OVERWRITE_HELP, HelpFormatter, add_output_options, run_main
from pitune_tf.common.errors import UserInputError

# Each stage runs as its own command, the one the docs show, in a process of its own: the
# journey is the user's, and its memory peak is the largest stage's, not their sum. This
# process imports pandas and matplotlib (the report) only after the stages that train, so
# that it holds 15 MB, not 110, beside them.


def build_parser():
    p = argparse.ArgumentParser(prog="python -m trainers.pipeline", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--out", default="runs/demo", help="run directory")
    p.add_argument("--users", type=int, default=6,
                   help="individual users personalized (0 = all; default 6)")
    p.add_argument("--epochs", type=int, default=8,
                   help="max fine-tuning epochs per user (default 8; the stage's own: 20)")
    p.add_argument("--workers", type=int, default=1, help="processes for the individual stage")
    p.add_argument("--all-methods", action="store_true",
                   help="also the individual stage with every method on Keras (RUN/individual)")
    p.add_argument("--fp-users", type=int, default=2,
                   help="--all-methods: users for FP / PP (the teacher per user)")
    p.add_argument("--lgbm-iterations", type=int, default=300,
                   help="--all-methods: LightGBM rounds (Table 5: 2000, early stopping 75)")
    p.add_argument("--skip-population", action="store_true",
                   help="reuse the finished population run in --out")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--print-config", action="store_true",
                   help="print each stage's command and the population and individual stages' "
                        "resolved settings, then exit")
    add_output_options(p)
    p.add_argument("--population-args", default="--preset quickstart",
                   help="arguments for trainers.population, as one string (default "
                        "'--preset quickstart': a small slice of the demo world)")
    return p


def stage(name, module, args, timings, options):
    """Runs ``python -m module args`` (with ``--quiet`` / ``--verbose`` as given) and records
    its wall time under ``name``; a failed stage ends the pipeline with its exit status."""
    flags = [flag for flag, on in (("--quiet", options.quiet), ("--verbose", options.verbose))
             if on]
    if not options.quiet or options.print_config:
        print(f"\n== {name}: python -m {module} {shlex.join(map(str, args))}", flush=True)
    if options.print_config:
        if module in ("trainers.population", "trainers.individual"):
            subprocess.call([sys.executable, "-m", module, *map(str, args), "--print-config"])
        return
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", module, *map(str, args), *flags])
    timings[name] = time.perf_counter() - start
    if code:
        raise SystemExit(code)


def run(argv=None):
    """Parses ``argv`` and runs the journey, one command per stage."""
    args = build_parser().parse_args(argv)
    if args.users < 0 or args.workers < 1 or (args.epochs is not None and args.epochs < 1):
        raise UserInputError("--users must be >= 0, --workers and --epochs >= 1")
    out = Path(args.out)
    timings = {}
    finished = (out / "metrics.json").exists() and (out / "student.keras").exists()
    if args.skip_population:
        if not finished:
            raise UserInputError(f"--skip-population: {out} has no finished population run")
    elif finished and not args.overwrite:
        print(f"population run {out} already finished: reusing it (--overwrite to retrain)")
    else:
        stage("population stage", "trainers.population",
              ["--out", out, *(["--overwrite"] if args.overwrite else []),
               *shlex.split(args.population_args)], timings, args)
    stage("phone bundle", "tflite.convert", ["--run", out, "--no-quantized"], timings, args)
    personalize = ["--run", out, "--users", args.users, "--workers", args.workers,
                   "--epochs", args.epochs]
    stage("on-device personalization", "trainers.individual",
          [*personalize, "--backend", "litert"], timings, args)
    if args.all_methods:
        stage("every method (Keras)", "trainers.individual",
              [*personalize, "--method", "all", "--fp-users", args.fp_users,
               "--lgbm-iterations", args.lgbm_iterations], timings, args)
    from pitune_tf.experiments.journey_report import (
        EXAMPLE_USER_FILE,
        TIMINGS_FILE,
        write_example_user,
        write_report,
    )

    example = out / "data" / EXAMPLE_USER_FILE
    if not args.print_config:
        write_example_user(out)
    stage("predictions", "pitune_tf.predict",
          ["--run", out, "--events", example, "--model", out / "student.tflite",
           "--out", out / "predictions.csv"], timings, args)
    if args.print_config:
        return 0
    write_json(out / TIMINGS_FILE, timings)
    print(f"report: {write_report(out, timings)}")
    return 0


def main(argv=None) -> int:
    """Entry point (``python -m trainers.pipeline``, ``pitune-pipeline``): the exit status."""
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
