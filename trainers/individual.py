"""PITuning individual-level tuning (Section 3.3) and its evaluation (Section 4).

For every individual user, starting from the population run's distilled student: the
forgotten set (PITuning Eq. 8-10), adaptive unlearning (PITuning Eq. 11), fine-tuning with
early stopping on the user's validation windows, and the paper's baselines; metrics pooled
over all users' test windows and averaged over users. One personalization loop
(``pitune_tf.individual.engine``) runs on two backends: Keras (default) and LiteRT (the
``student.tflite`` signatures only, exactly what a phone runs).

Commands:

    # the demo's individual users (RUN/data/individual.parquet), the default methods
    python -m trainers.individual --run runs/demo
    # the paper as written (after trainers.population --preset paper_small --out runs/paper_small)
    python -m trainers.individual --run runs/paper_small --preset paper
    python -m trainers.individual --run runs/demo --preset paper --print-config
    # every method (FP / PP on --fp-users users only), 10 users, 2 processes
    python -m trainers.individual --run runs/demo --method all --users 10 --workers 2
    # your own individual log, one method, every test prediction written out (read with the
    # run's schema and mapping, config.json data_schema and mapping; --columns, --time-unit,
    # --timezone, --unmapped, --merge-gap and --mapping override just their field)
    python -m trainers.individual --run runs/demo --data individual.csv --method pituning \\
        --dump-predictions --out runs/demo/individual_csv
    # on-device simulation through the TFLite signatures, beside the Keras results
    python -m trainers.individual --run runs/demo --backend litert \\
        --model runs/demo/student.tflite --compare runs/demo/individual
    # across machines: shard I of N (from 0; any scheduler's array index), then merge
    python -m trainers.individual --run runs/demo --shard 0/2 --out parts/0
    python -m trainers.individual --run runs/demo --shard 1/2 --out parts/1
    python -m trainers.individual merge parts/0 parts/1 --out runs/demo/individual

Methods: most_frequent and last_event_intent (trivial per-user baselines, no model: the user's
own intent frequencies; the intent of the window's last event), pituning (unlearning then fine-tuning), finetune (fine-tuning only: the
I-unlearning ablation), focal, oversample (Figure 8), none (the shipped student), prior (the
shipped student's logits shifted by beta * (log P_in - log P_pop), the user's intent
frequencies against the population's, beta chosen on the user's validation windows; no
backpropagation), lgbm (Appendix E), fp / pp (Table 3: the teacher, fully or partially tuned
per user), and (named, or --method table2; not in --method all) PITuning Table 2's other
baselines lsat, eodrec, metabert4rec, clover, tallrec, p5, instructrec
(pitune_tf.individual.baselines). The LiteRT backend runs none, prior, finetune, pituning (default: none, finetune,
pituning) and oversample.

A run prints its settings first (``--print-config``: all of them, then exits; precedence:
``--preset`` < --config < flags); ``--quiet`` prints only the result tables and errors.
``--preset paper`` is PITuning's individual stage as written (Section 3.3, Algorithm 1: Adam
0.01, no prior shift after tuning, no refit, fine-tuning always from the unlearned weights);
the default preset is our best settings, each departure a key and a flag of its own.

Writes to --out (default RUN/individual/, RUN/device/ on LiteRT): per_user.csv,
summary.json, results.md (Table 2 and Table 3 style tables), with --dump-predictions
predictions.csv, with --compare compare.md.

When the log comes with a user oracle (the exact next-intent distribution of each event; the
synthetic generator writes one, format in pitune_tf.data.intent_oracle): --oracle FILE, or
found beside the log as <stem>_oracle.parquet (RUN/data/individual_oracle.parquet for the
run's own data), every table gets an `oracle` row and every method its gap_closed, the share
of the gap from `none` to the oracle it closes on Prec_w, Prec_m, Rec_m and NDCG@3:

    python -m trainers.individual --run runs/demo --data data/synth/individual.parquet \
        --oracle data/synth/individual_oracle.parquet
"""

import sys
from pathlib import Path

from pitune_tf.common.cli import parse_settings, run_main
from pitune_tf.data.schema import schema_overrides
from pitune_tf.individual.command_line import (
    build_merge_parser,
    build_parser,
    config_from_args,
    settings_text,
)


def merge(argv):
    """``merge PARTS... --out DIR``: the parts of a sharded run into the tables of one run."""
    args = build_merge_parser(description="Combines the parts of a sharded individual stage "
                              "into the tables of one run.").parse_args(argv)
    from pitune_tf.individual.stage import merge_parts

    result = merge_parts(args.parts, args.out)
    print(result["table"])
    print(f"{result['users']} users from {len(args.parts)} parts; outputs in {args.out}")
    return 0


def run(argv=None):
    """Parses ``argv`` and runs the individual stage (TensorFlow is imported after parsing),
    or ``merge``; raises UserInputError on bad input."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        return merge(argv[1:])
    parsed = parse_settings(build_parser(description=__doc__.split("\n")[0]), argv, config_from_args,
                            settings_text)
    if parsed is None:  # --print-config
        return 0
    args, config = parsed
    schema = schema_overrides(args)  # over the run's data_schema
    from pitune_tf.individual.stage import run_individual

    model = args.model or (str(Path(args.run) / "student.tflite") if args.backend == "litert" else None)
    result = run_individual(args.run, config, out=args.out, data=args.data, mapping=args.mapping,
                            n_users=args.users, workers=args.workers, backend=args.backend,
                            model=model, litert_backend=args.interpreter,
                            dump_predictions=args.dump_predictions, compare=args.compare,
                            progress=not args.quiet, schema=schema,
                            oracle=False if args.no_oracle else args.oracle, shard=args.shard)
    print(result["table"])
    if "comparison" in result:
        print(result["comparison"])
    shard = f" (shard {result['shard']})" if args.shard else ""
    print(f"{result['users']} users{shard} in {result['seconds']:.1f}s on {args.backend} with "
          f"{args.workers} worker(s); outputs in {result['out']}")
    return 0


def main(argv=None) -> int:
    """Entry point (``python -m trainers.individual``, ``pitune-personalize``): the exit status."""
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
