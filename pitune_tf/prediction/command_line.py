"""Next-intent predictions for users' event logs from a population run.

Commands:

    python -m pitune_tf.predict --run runs/demo --events user.csv
    python -m pitune_tf.predict --run runs/demo --events user.csv --top-k 5 --out preds.csv
    python -m pitune_tf.predict --run runs/demo --events user.csv --weights me.weights
    python -m pitune_tf.predict --run runs/demo --events user.csv --model runs/demo/student_int8.tflite
    python -m pitune_tf.predict --run runs/demo --events user.csv --decision-rule prior
    python -m pitune_tf.predict --run runs/demo --events user.csv --each-event

The events file (CSV or Parquet) has ``user_id, timestamp, event`` and optionally
``location`` (an ``intent`` column is ignored), read as the run read its own log: with the
schema it keeps in ``config.json`` (``data_schema``: column names, time unit, time zone,
merge gap); ``--columns``, ``--time-unit``, ``--timezone``, ``--merge-gap`` override just
that field (``--columns`` just the names it gives), e.g. for a run trained with
``--columns user_id=uid,timestamp=ts,event=app --time-unit ms --timezone Asia/Shanghai``:

    python -m pitune_tf.predict --run runs/mine --events my_log.csv     # the run's schema
    python -m pitune_tf.predict --run runs/mine --events other.csv --columns event=package

Each user's window is built after the user's newest event with the run's vocabularies and
context features; one line per user is printed,
e.g. ``u00150  social 0.445 | shopping 0.105 | weather 0.073``, and ``--out`` also writes the
table ``user_id, rank, intent, probability`` (.csv or .parquet). ``--decision-rule prior``
puts first the intent of the best ``p / P_pop^tau`` instead of p's (the population's intent
shares divided out: rare intents come first more often; the others follow in p's order),
with the tau that the population run chose on its validation windows (``metrics.json``, ``student_prior_rule``) unless ``--tau`` is given; the
printed probabilities stay p. ``--each-event`` predicts after every event of the log
instead, as the phone would have at each moment (one line per event; the table gains
``timestamp``); a streaming student (``--student-span``) does it one event per step from a
cached state (``infer_step``). The work is done by
``pitune_tf.prediction.NextIntentPredictor``; ``pitune_tf.predict`` is the entry point that
calls :func:`main`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pitune_tf.common.cli import HelpFormatter, add_output_options, run_main
from pitune_tf.common.errors import UserInputError, not_found
from pitune_tf.data.io import CSV_SUFFIXES, PARQUET_SUFFIXES, write_table
from pitune_tf.data.schema import add_schema_options, schema_overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pitune_tf.predict",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--run", required=True, help="run directory of trainers.population")
    parser.add_argument("--events", required=True, help="the users' events (CSV or Parquet)")
    parser.add_argument("--model", help=".tflite model of this run (default: the Keras student)")
    parser.add_argument("--weights", help="personalized weights file (Runtime.save_weights)")
    parser.add_argument("--top-k", type=int, default=3, help="intents per user (default 3)")
    parser.add_argument("--out", help="also write the predictions table (.csv or .parquet)")
    parser.add_argument("--each-event", action="store_true",
                        help="predict after every event of the log, not only the newest")
    parser.add_argument("--decision-rule", choices=("argmax", "prior"), default="argmax",
                        help="rank intents by p (argmax), or the first by p / P_pop^tau and the "
                             "others by p (prior)")
    parser.add_argument("--tau", type=float,
                        help="prior rule's exponent (default: the run's, chosen on validation "
                             "windows, metrics.json student_prior_rule.tau)")
    # --columns, --time-unit, ... over the run's data_schema; no --unmapped: intents are
    # not read here (an unknown event is the unknown id)
    add_schema_options(parser, unmapped=False)
    add_output_options(parser)
    return parser


def run(argv=None):
    """Parses ``argv`` and prints the predictions; raises UserInputError on bad input."""
    args = build_parser().parse_args(argv)
    if args.top_k < 1:
        raise UserInputError(f"--top-k must be >= 1, got {args.top_k}")
    if args.tau is not None and args.decision_rule != "prior":
        raise UserInputError("--tau is the exponent of --decision-rule prior")
    if not Path(args.events).is_file():
        raise UserInputError(not_found("events file", args.events))
    if args.out and Path(args.out).suffix.lower() not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise UserInputError(f"--out {args.out}: use a .csv or .parquet file")
    schema = schema_overrides(args)  # checked before the run is loaded
    from pitune_tf.prediction.next_intent_predictor import (  # deferred: TensorFlow loads here
        NextIntentPredictor,
        format_predictions,
    )

    predictor = NextIntentPredictor.from_run(args.run, weights=args.weights, model=args.model,
                                             decision_rule=args.decision_rule, tau=args.tau,
                                             schema=schema)
    if args.each_event:
        predictions = predictor.predict_each_event(args.events, top_k=args.top_k)
    else:
        predictions = predictor.predict_next(args.events, top_k=args.top_k)
    print("\n".join(format_predictions(predictions)))
    if args.out:
        write_table(predictions, args.out)
    return 0


def main(argv=None) -> int:
    """Entry point (``python -m pitune_tf.predict``, ``pitune-predict``): the exit status."""
    return run_main(run, argv)
