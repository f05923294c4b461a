"""The whole PITuning demo in one command: population tuning and distillation
(``pitune_tf.population.run_population``, options as for ``trainers.population``),
individual tuning with every method (``pitune_tf.individual.stage.run_individual``), and a markdown
report.

Commands:

    python -m trainers.pipeline                      # demo: runs/demo, ~10 minutes on 2 cores
    python -m trainers.pipeline --out runs/demo2 --users 30 --epochs 10 --workers 2
    python -m trainers.pipeline --out runs/demo --skip-population   # reuse a finished run

Writes RUN/ (see trainers.population), RUN/individual/ (see trainers.individual) and
RUN/report.md.
"""

from pitune_tf.common import _env  # noqa: F401  (Keras 2 before tensorflow)

# isort: split


import argparse  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from pitune_tf.common.atomic import write_text  # noqa: E402
from pitune_tf.common.cli import OVERWRITE_HELP, HelpFormatter, add_output_options, run_main  # noqa: E402
from pitune_tf.common.errors import UserInputError  # noqa: E402
from pitune_tf.common.plotting import markdown_images, rebase_images  # noqa: E402


def build_parser():
    p = argparse.ArgumentParser(prog="python -m trainers.pipeline", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--out", default="runs/demo", help="run directory")
    p.add_argument("--users", type=int, default=8, help="individual users to tune (0 = all; demo 8)")
    p.add_argument("--epochs", type=int, help="max fine-tuning epochs per user (default: the stage's)")
    p.add_argument("--workers", type=int, default=2, help="processes for the individual stage")
    p.add_argument("--fp-users", type=int, default=2, help="users for FP / PP (the teacher per user)")
    p.add_argument("--lgbm-iterations", type=int, default=300,
                   help="LightGBM rounds (Table 5: 2000, early stopping 75)")
    p.add_argument("--skip-population", action="store_true",
                   help="reuse the finished population run in --out")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    add_output_options(p)
    p.add_argument("--population-args", default="",
                   help="extra arguments for trainers.population, as one string")
    return p


def write_report(run_dir, timings):
    """RUN/report.md: population test metrics and figures, the individual tables and figure,
    the forgotten sets."""
    from pitune_tf.population.command_line import markdown_table
    from pitune_tf.population.plots import plot_paths

    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    summary = json.loads((run_dir / "individual" / "summary.json").read_text())
    results = rebase_images((run_dir / "individual" / "results.md").read_text(), "individual")
    figures = markdown_images(plot_paths(run_dir), run_dir)
    forget_sizes = [len(v) for v in summary["forget_sets"].values()]
    lines = [
        "# PITuning demo report", "",
        f"Run directory `{run_dir}`; population stage {timings.get('population', 0):.0f} s, "
        f"individual stage {timings['individual']:.0f} s ({summary['users']} users, "
        f"{summary['workers']} workers).", "",
        "## Population stage (test windows of the population users)", "",
        markdown_table(metrics), "",
        *(["Figures (`RUN/plots/`): training curves, IAT attention map (PITuning Fig. 6), "
           "predicted vs true intent distribution (Fig. 7), confusion matrix.", ""]
          + [f"{line}\n" for line in figures] if figures else []),
        results, "",
        "## Forgotten sets (PITuning Eq. 8-10)", "",
        f"Static threshold: {summary['config']['static_threshold'] or '0.2 / N_I (default)'}; "
        f"|F| per user: min {min(forget_sizes)}, max {max(forget_sizes)}, "
        f"mean {sum(forget_sizes) / len(forget_sizes):.1f}.", "",
    ]
    for user, forget in list(summary["forget_sets"].items())[:10]:
        lines.append(f"- {user}: {', '.join(forget) or '(none)'}")
    lines.append("")
    write_text(run_dir / "report.md", "\n".join(lines))
    return run_dir / "report.md"


def run(argv=None):
    """Parses ``argv`` and runs both stages and the report (TensorFlow loads after parsing)."""
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    timings = {}
    finished = (out / "metrics.json").exists() and (out / "student.keras").exists()
    if args.skip_population:
        if not finished:
            raise UserInputError(f"--skip-population: {out} has no finished population run")
    elif finished and not args.overwrite:
        print(f"population run {out} already finished: reusing it (--overwrite to retrain)")
    else:
        from pitune_tf.population import run_population
        from pitune_tf.population.command_line import build_parser as population_parser
        from pitune_tf.population.command_line import config_from_args, format_table

        start = time.perf_counter()
        argv_pop = ["--out", str(out), *(["--overwrite"] if args.overwrite else []),
                    *(["--quiet"] if args.quiet else []),
                    *shlex.split(args.population_args)]
        population_args = population_parser().parse_args(argv_pop)
        metrics = run_population(config_from_args(population_args), population_args.out,
                                 overwrite=population_args.overwrite)
        print(format_table(metrics))
        timings["population"] = time.perf_counter() - start
    from pitune_tf.individual.individual_config import METHODS, TABLE2_BASELINES, IndividualConfig
    from pitune_tf.individual.report import METHOD_ORDER
    from pitune_tf.individual.stage import run_individual

    start = time.perf_counter()
    config = IndividualConfig(methods=tuple(m for m in METHOD_ORDER  # the Table 2 baselines: experiments only
                                            if m in METHODS and m not in TABLE2_BASELINES),
                              **({"max_epochs": args.epochs} if args.epochs else {}),
                              fp_users=args.fp_users,
                              lgbm_iterations=args.lgbm_iterations)
    result = run_individual(out, config, out=out / "individual", n_users=args.users,
                            workers=args.workers, progress=not args.quiet)
    print(result["table"])
    timings["individual"] = time.perf_counter() - start
    report = write_report(out, timings)
    print(f"report: {report}")
    return 0


def main(argv=None) -> int:
    """Entry point (``python -m trainers.pipeline``, ``pitune-pipeline``): the exit status."""
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
