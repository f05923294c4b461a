"""The papers' tables and figures from one command each: ``<name>.csv``, ``<name>.png`` and
an ``index.md`` showing them all in the output folder.

Commands (run from the repository root)::

    # PITuning, from a finished population run (python -m trainers.population --out runs/demo)
    python -m trainers.experiments pituning --run runs/demo                  # -> runs/demo/experiments
    python -m trainers.experiments pituning --run runs/demo --seeds 3 --preset demo
    python -m trainers.experiments pituning --run runs/demo --only pituning_table2,pituning_fig8
    # each of our deviations from the paper, measured on its own (-> runs/demo/ledger)
    python -m trainers.experiments pituning_ledger --run runs/demo --seeds 3
    python -m trainers.experiments uaf_ledger --seeds 3 --out runs/uaf_ledger   # UAF's, the same way
    # the individual stage on synthetic worlds, one premise varied at a time (-> runs/demo/payoff)
    python -m trainers.experiments pituning_payoff --run runs/demo --knobs users_differ
    python -m trainers.experiments uaf_payoff --knobs related_spread --out runs/uaf_payoff  # UAF's
    # every individual method under one tuning budget (Optuna), paper and default protocols
    python -m trainers.experiments pituning_tuned --run runs/demo --trials 20   # -> runs/demo/tuned
    python -m trainers.experiments pituning_train_part --run runs/demo   # --train-part auto
    python -m trainers.experiments uaf_tuned --trials 20 --seeds 3 --out runs/uaf_tuned
    # UAF, on the embedded synthetic data (or --data / --data-atomic / --ml1m as trainers.uaf)
    python -m trainers.experiments uaf --seeds 3 --out runs/uaf_experiments

An experiment whose ``<name>.csv`` exists is skipped (delete it to rerun); the runs behind
the numbers live in ``OUT/runs/`` and resume when the command is started again. The work is
``pitune_tf.experiments.run_pituning_suite`` and ``nextitnet.experiments``; this module
parses the command line.
"""

import argparse
import importlib
import logging
import sys
from pathlib import Path

from pitune_tf.common.cli import run_main

PITUNING = {  # command -> (module, function, its output's folder under RUN)
    "pituning": ("pitune_tf.experiments", "run_pituning_suite", "experiments"),
    "pituning_ledger": ("pitune_tf.experiments.ledger", "run_ledger", "ledger"),
    "pituning_payoff": ("pitune_tf.experiments.payoff", "run_payoff", "payoff"),
    "pituning_tuned": ("pitune_tf.experiments.tuning", "run_tuning", "tuned"),
    "pituning_train_part": ("pitune_tf.experiments.train_part", "run_train_part", "train_part"),
}


def _names(text):
    return [n.strip() for n in text.split(",") if n.strip()]


def build_parser() -> argparse.ArgumentParser:
    from nextitnet.data.sources import add_source_arguments
    from nextitnet.uaf_config import PRESETS as UAF_PRESETS
    from pitune_tf.experiments import SUITE_PRESETS

    parser = argparse.ArgumentParser(prog="python -m trainers.experiments",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    papers = parser.add_subparsers(dest="paper", required=True)
    pit = papers.add_parser("pituning", help="PITuning's tables and figures from a population run")
    ledger = papers.add_parser("pituning_ledger", help="each of our deviations from PITuning, "
                               "switched on from the paper and off from the defaults, on its own")
    payoff = papers.add_parser("pituning_payoff", help="where PITuning's ideas pay off: the individual "
                               "stage on synthetic worlds that vary one premise at a time")
    tuned = papers.add_parser("pituning_tuned", help="every individual method under one tuning "
                              "protocol: the same Optuna trials on validation windows")
    part = papers.add_parser("pituning_train_part", help="which part of the student each user fine-tunes: "
                             "every part, and --train-part auto's rule fitted on other users")
    tuned.add_argument("--methods", type=_names, help="comma-separated (default: prior, finetune, focal, "
                       "oversample, mpda, pituning; the Table 2 baselines by name)")
    ledger.add_argument("--options", action="store_true", help="also switch on each of our options "
                        "off in both profiles (OPTIONS of the stages' configs), from each profile")
    for sub in (pit, ledger, payoff, tuned, part):
        sub.add_argument("--run", required=True, help="population run directory (trainers.population --out)")
        sub.add_argument("--preset", default="demo", choices=sorted(SUITE_PRESETS),
                         help="suite size (users, sweeps, budget of the extra population runs)")
        sub.add_argument("--workers", type=int, default=1, help="processes of the individual stage")
    uaf = papers.add_parser("uaf", help="UAF's tables and figures")
    uaf_ledger = papers.add_parser("uaf_ledger", help="each of our deviations from UAF, switched "
                                   "on from the paper and off from the defaults, on its own")
    uaf_tuned = papers.add_parser("uaf_tuned", help="UAF's Table 2 under one tuning protocol: "
                                  "the same Optuna trials per mode on the validation split")
    uaf_payoff = papers.add_parser("uaf_payoff", help="where UAF's ideas pay off: its modes on "
                                   "synthetic worlds that vary one premise at a time")
    for sub in (payoff, uaf_payoff):
        sub.add_argument("--knobs", type=_names, help="comma-separated (default: all of the study's KNOBS)")
    for sub in (tuned, uaf_tuned):
        sub.add_argument("--trials", type=int, help="trials per method (default: the preset's, UAF 20)")
    for sub in (uaf, uaf_ledger, uaf_tuned, uaf_payoff):
        sub.add_argument("--preset", default="demo", choices=sorted(UAF_PRESETS), help="UAF config preset")
        sub.add_argument("--config", help="JSON file of UAFConfig fields")
        sub.add_argument("--epochs", type=int, help="fine-tuning epochs")
        sub.add_argument("--pretrain-epochs", type=int)
        if sub is not uaf_payoff:  # it draws its own worlds
            add_source_arguments(sub)
    for sub in (uaf, uaf_tuned):
        sub.add_argument("--modes", type=_names, help="Table 2's modes, comma-separated (default: all; "
                                                      "uaf_tuned: six)")
    uaf.add_argument("--train-fraction", type=float, default=0.1, help="Table 5's share (0.1)")
    for sub in (pit, ledger, payoff, tuned, part, uaf, uaf_ledger, uaf_tuned, uaf_payoff):
        sub.add_argument("--seeds", type=int, default=3, help="seeds per setting (mean ± std)")
        sub.add_argument("--seed", type=int, help="first seed (default: the config's)")
        sub.add_argument("--out", help="output folder (pituning: RUN/experiments; pituning_<name>: "
                                       "RUN/<name>; uaf: runs/uaf_experiments; uaf_<name>: runs/uaf_<name>)")
    for sub in (pit, uaf):
        sub.add_argument("--only", type=_names, help="comma-separated experiment names")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.paper in PITUNING:  # the same arguments, and the extra ones each command has
        module, function, folder = PITUNING[args.paper]
        out = args.out or str(Path(args.run) / folder)
        extra = {k: getattr(args, k) for k in ("only", "options", "knobs", "trials", "methods") if k in args}
        status = getattr(importlib.import_module(module), function)(
            args.run, out, preset=args.preset, seeds=args.seeds, first_seed=args.seed, workers=args.workers,
            **extra)
    else:
        from nextitnet.data.sources import load_cross_domain
        from nextitnet.experiments import run_uaf_suite
        from nextitnet.ledger import run_uaf_ledger
        from nextitnet.payoff import run_uaf_payoff
        from nextitnet.tuning import run_uaf_tuning
        from nextitnet.uaf_config import PRESETS, UAFConfig
        from pitune_tf.common.config import resolve_config

        out = args.out or f"runs/{'uaf_experiments' if args.paper == 'uaf' else args.paper}"
        flags = ("epochs", "pretrain_epochs", "seed", "max_users")
        config = resolve_config(UAFConfig, PRESETS, args.preset, args.config, {k: getattr(args, k, None) for k in flags})
        if args.paper == "uaf_payoff":  # its own worlds: no data to load
            status = run_uaf_payoff(config, out, seeds=args.seeds, knobs=args.knobs)
        else:
            data, source = load_cross_domain(args, config)
        if args.paper == "uaf":
            status = run_uaf_suite(config, data, source, out, seeds=args.seeds, modes=args.modes,
                                   train_fraction=args.train_fraction, only=args.only)
        elif args.paper == "uaf_ledger":
            status = run_uaf_ledger(config, data, source, out, seeds=args.seeds)
        elif args.paper == "uaf_tuned":
            status = run_uaf_tuning(config, data, source, out, seeds=args.seeds, modes=args.modes,
                                    trials=args.trials or 20)
    for name, state in status.items():
        print(f"{name}: {state}")
    print(f"tables and figures: {Path(out) / 'index.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
