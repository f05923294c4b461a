r"""Command line for event logs: generate synthetic data, convert real logs, summarize.

Commands::

    # synthetic population + individual logs -> DIR/population.parquet,
    # DIR/individual.parquet, DIR/mapping.json, and each log's user oracle (the exact
    # next-intent distribution of every event) DIR/population_oracle.parquet,
    # DIR/individual_oracle.parquet (format: pitune_tf.data.intent_oracle; the predicted
    # event's own context unknown), and *_oracle_context.parquet (that context known)
    python -m pitune_tf.data synth --preset demo --seed 0 --out data/synth
    # the same world with 500 population users (about 590k events)
    python -m pitune_tf.data synth --preset large --seed 0 --out data/large

    # about 10M population events as Parquet shards of 500 users (streamed population
    # training: python -m trainers.population --streaming --data DIR/population
    # DIR/individual.parquet --mapping DIR/mapping.json)
    python -m pitune_tf.data synth --preset scale --users-per-shard 500 --out data/scale

    # real logs -> canonical CSV or Parquet (by the suffix of --out)
    python -m pitune_tf.data convert --format tsinghua \
        ../shared/data/tsinghua_app_usage_sample/data_sample.csv \
        ../shared/data/tsinghua_app_usage_sample/category.csv --out data/tsinghua.parquet
    python -m pitune_tf.data convert --format foursquare \
        ../shared/data/foursquare_tky/traj-TKY.csv ../shared/data/foursquare_tky/poi-TKY.csv \
        --cell-size 0.05 --out data/tky.parquet
    python -m pitune_tf.data convert --format canonical events.csv --mapping map.json \
        --out data/events.parquet

    # users, events, intents, time span and population vs individual intent shares,
    # printed and saved as DIR/summary.json + DIR/intents.png
    python -m pitune_tf.data summarize data/synth --out reports/synth
    python -m pitune_tf.data summarize data/tky.parquet --individual-fraction 0.2 --seed 0
    python -m pitune_tf.data summarize --format tsinghua \
        ../shared/data/tsinghua_app_usage_sample/data_sample.csv --out reports/tsinghua

A directory given to ``summarize`` is read as ``population.parquet`` and, when present,
``individual.parquet``; otherwise the individual users are ``--individual`` or a seeded
``--individual-fraction`` of the users. Bad input exits with status 2 and one line on
stderr; outputs are written under a temporary name and renamed, so a failed run leaves
nothing behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pitune_tf.common.atomic import write_json
from pitune_tf.common.cli import HelpFormatter, add_output_options, run_main
from pitune_tf.common.errors import UserInputError
from pitune_tf.data.adapters import FORMATS, FOURSQUARE_EVENTS, read_any
from pitune_tf.data.intent_oracle import write_oracles
from pitune_tf.data.io import CSV_SUFFIXES, PARQUET_SUFFIXES, read_events, write_events
from pitune_tf.data.schema import ReadStats, add_schema_options, schema_from_args
from pitune_tf.data.splits import split_users
from pitune_tf.data.summary import format_summary, save_summary, summarize_events
from pitune_tf.data.synthetic import generate, generate_shards
from pitune_tf.data.synthetic_config import PRESETS


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="canonical", help="input format")
    parser.add_argument("--mapping", help="event-to-intent mapping (CSV event,intent or JSON)")
    parser.add_argument(
        "--cell-size",
        type=float,
        default=None,
        help="foursquare: location = lat/lon cell of this many degrees (default: the POI)",
    )
    parser.add_argument(
        "--foursquare-event",
        choices=FOURSQUARE_EVENTS,
        default="category",
        help="foursquare: event = the POI's category (default; the paper's Mobile dataset "
        "uses the location category as activity and intent) or the POI",
    )
    add_schema_options(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pitune_tf.data", description=__doc__, formatter_class=HelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="generate synthetic population + individual logs",
                           formatter_class=HelpFormatter)
    synth.add_argument("--preset", choices=sorted(PRESETS), default="demo",
                       help="pitune_tf.data.synthetic_config.PRESETS: tiny (~10k events), demo "
                            "(~200k), large (~590k), bench and scale (~10M)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--users-per-shard", type=int, default=0,
                       help="write the population as Parquet shards of this many users, one "
                            "in memory at a time (DIR/population/part-*.parquet; 0: one file)")
    synth.add_argument("--out", required=True, help="output directory")
    add_output_options(synth, quiet_help="no progress bar")

    convert = sub.add_parser("convert", help="convert a log to the canonical event table",
                             formatter_class=HelpFormatter)
    convert.add_argument("inputs", nargs="+", metavar="INPUT")
    _add_read_options(convert)
    convert.add_argument("--out", required=True, help="output file (.csv or .parquet)")
    add_output_options(convert, quiet_help="no progress bars")

    summarize = sub.add_parser("summarize", help="summarize a log (table, JSON, PNG)",
                               formatter_class=HelpFormatter)
    summarize.add_argument(
        "inputs", nargs="+", metavar="PATH", help="event file(s) or a synth directory"
    )
    _add_read_options(summarize)
    summarize.add_argument("--individual", help="canonical event file of the individual users")
    summarize.add_argument("--individual-fraction", type=float, default=0.2)
    summarize.add_argument("--seed", type=int, default=0, help="seed of the individual users")
    summarize.add_argument("--out", help="directory for summary.json and intents.png")
    add_output_options(summarize, quiet_help="no progress bars")
    return parser


def _synth(args) -> None:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: exists and is not a directory")
    if args.users_per_shard:
        info = generate_shards(out, args.preset, args.seed, args.users_per_shard, progress=not args.quiet)
        print(f"wrote {len(info['shards'])} shards {out}/population/part-*.parquet "
              f"({info['population_events']} events), {out}/individual.parquet "
              f"({info['individual_events']} events) and its oracle, {out}/mapping.json")
        return
    data = generate(preset=args.preset, seed=args.seed, progress=not args.quiet)
    for name in ("population", "individual"):
        write_events(getattr(data, name), out / f"{name}.parquet")
        write_oracles({"": getattr(data, f"{name}_oracle"),
                       "context": getattr(data, f"{name}_oracle_context")},
                      out / f"{name}.parquet")
    write_json(out / "mapping.json", data.mapping)
    print(
        f"wrote {out}/population.parquet ({len(data.population)} events), "
        f"{out}/individual.parquet ({len(data.individual)} events), their *_oracle.parquet "
        "and *_oracle_context.parquet, "
        f"{out}/mapping.json"
    )


def _check_out_file(path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise UserInputError(
            f"{path}: unknown output format {path.suffix!r} (use .csv or .parquet)"
        )
    if path.is_dir():
        raise UserInputError(f"{path}: is a directory")
    return path


def _convert(args) -> None:
    out = _check_out_file(args.out)
    stats = ReadStats()
    df = read_any(args.inputs, args.format, args.mapping, args.cell_size,
                  schema_from_args(args), stats,
                  foursquare_event=args.foursquare_event)
    write_events(df, out)
    for line in stats.lines():
        print(line)
    print(
        f"wrote {out}: {len(df)} events, {df['user_id'].nunique()} users, {df['intent'].nunique()} intents"
    )


def _summarize(args) -> None:
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserInputError(f"{args.out}: exists and is not a directory")
    first = Path(args.inputs[0])
    individual = None
    if first.is_dir():
        if len(args.inputs) > 1 or args.format != "canonical":
            raise UserInputError(f"{first}: a directory is read alone, as synth output")
        population_path = first / "population.parquet"
        if not population_path.is_file():
            raise UserInputError(f"{first}: no population.parquet in this directory")
        population = read_events(population_path)
        if args.individual is None and (first / "individual.parquet").is_file():
            individual = read_events(first / "individual.parquet")
    else:
        population = read_any(args.inputs, args.format, args.mapping, args.cell_size,
                              schema_from_args(args), foursquare_event=args.foursquare_event)
    if args.individual is not None:
        individual = read_events(args.individual, mapping=args.mapping,
                                 schema=schema_from_args(args))
        shared = set(population["user_id"].unique()) & set(individual["user_id"].unique())
        if shared:
            raise UserInputError(
                f"{args.individual}: {len(shared)} user(s) also in the population, e.g. {sorted(shared)[0]!r}"
            )
    if individual is None:
        pop_users, ind_users = split_users(
            population["user_id"], args.individual_fraction, args.seed
        )
        is_individual = population["user_id"].isin(ind_users)
        individual = population[is_individual].reset_index(drop=True)
        population = population[~is_individual].reset_index(drop=True)
        if len(individual) == 0 or len(population) == 0:
            raise UserInputError(
                "need at least 2 users to split into population and individual users"
            )
    summary = summarize_events(population, individual)
    written = save_summary(summary, args.out) if args.out is not None else None
    print(format_summary(summary))
    if written is not None:
        print(f"wrote {written[0]} and {written[1]}")


def run(argv=None) -> int:
    """Parses ``argv`` and runs the subcommand; raises UserInputError on bad input."""
    args = build_parser().parse_args(argv)
    {"synth": _synth, "convert": _convert, "summarize": _summarize}[args.command](args)
    return 0


def main(argv=None) -> int:
    """Entry point (``python -m pitune_tf.data``, ``pitune-data``): the exit status."""
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
