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
    # every method (FP / PP on --fp-users users only), 10 users, 2 processes
    python -m trainers.individual --run runs/demo --method all --users 10 --workers 2
    # your own individual log, one method, every test prediction written out
    python -m trainers.individual --run runs/demo --data individual.csv --method pituning \\
        --dump-predictions --out runs/demo/individual_csv
    # on-device simulation through the TFLite signatures, beside the Keras results
    python -m trainers.individual --run runs/demo --backend litert \\
        --model runs/demo/student.tflite --compare runs/demo/individual

Methods: pituning (unlearning then fine-tuning), finetune (fine-tuning only: the
I-unlearning ablation), focal, oversample (Figure 8), none (the shipped student), prior (the
shipped student's logits shifted by beta * (log P_in - log P_pop), the user's intent
frequencies against the population's, beta chosen on the user's validation windows; no
backpropagation), lgbm (Appendix E), fp / pp (Table 3: the teacher, fully or partially tuned
per user). The LiteRT backend runs none, prior, finetune, pituning (default: none, finetune,
pituning) and oversample.

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

from pitune_tf.common import _env  # noqa: F401  (Keras 2 before tensorflow)

# isort: split

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from pitune_tf.common.cli import run_main  # noqa: E402
from pitune_tf.common.config import resolve_config  # noqa: E402
from pitune_tf.common.errors import UserInputError  # noqa: E402
from pitune_tf.individual.individual_config import METHODS, IndividualConfig  # noqa: E402
from pitune_tf.individual.report import METHOD_ORDER  # noqa: E402
from pitune_tf.individual.stage import BACKENDS, DEFAULT_METHODS, run_individual  # noqa: E402

# command-line flag -> IndividualConfig field
OPTIONS = {"seed": "seed", "min_history": "min_history", "split": "fractions",
           "epochs": "max_epochs", "patience": "patience", "learning_rate": "learning_rate",
           "unlearn_steps": "unlearn_steps", "unlearn_learning_rate": "unlearn_learning_rate",
           "lam": "lam", "static_threshold": "static_threshold", "batch_size": "batch_size",
           "focal_gamma": "focal_gamma", "oversample_ratio": "oversample_ratio",
           "lgbm_iterations": "lgbm_iterations", "fp_users": "fp_users",
           "fp_learning_rate": "fp_learning_rate", "prior_pseudo_count": "prior_pseudo_count",
           "split_days": "split_days", "train_days": "train_days"}


def build_parser():
    d = IndividualConfig()
    p = argparse.ArgumentParser(prog="python -m trainers.individual", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="population run directory (trainers.population --out)")
    p.add_argument("--data", help="individual users' events (CSV/Parquet); default RUN/data/individual.parquet")
    p.add_argument("--mapping", help="event -> intent mapping file, when --data has no intent column")
    oracle = p.add_mutually_exclusive_group()
    oracle.add_argument("--oracle", help="the log's user oracle (Parquet/CSV: user_id, timestamp, "
                        "one column per intent); default <data stem>_oracle.parquet beside the log")
    oracle.add_argument("--no-oracle", action="store_true",
                        help="ignore an oracle file beside the log")
    p.add_argument("--backend", default="keras", choices=BACKENDS, help="keras (default) or litert")
    p.add_argument("--model", help="student.tflite for --backend litert (default RUN/student.tflite)")
    p.add_argument("--interpreter", default="auto", help="litert: auto, litert, tflite_runtime or tf")
    p.add_argument("--method", help=f"comma-separated, from {', '.join(METHODS)}, or 'all' "
                   f"(default: {','.join(d.methods)}; litert: {','.join(DEFAULT_METHODS['litert'])})")
    p.add_argument("--config", help="JSON file of IndividualConfig keys (the flags override it)")
    p.add_argument("--users", type=int, default=0, help="first N users by id (0 = all)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (users split among them)")
    p.add_argument("--fp-users", type=int, help=f"users (the first by id) on which fp / pp run ({d.fp_users})")
    p.add_argument("--dump-predictions", action="store_true", help="write predictions.csv")
    p.add_argument("--compare", help="another individual output directory to put beside this one")
    p.add_argument("--out", help="output directory (default RUN/individual, litert: RUN/device)")
    p.add_argument("--seed", type=int)
    p.add_argument("--min-history", type=int, help="0 = the run's min_history")
    p.add_argument("--split", type=float, nargs=3, metavar=("TRAIN", "VAL", "TEST"),
                   help=f"per-user chronological fractions ({' '.join(map(str, d.fractions))})")
    p.add_argument("--split-days", type=int, nargs=3, metavar=("TRAIN", "VAL", "TEST"),
                   help="per-user days instead of --split (the paper's Honor split: 7 1 4)")
    p.add_argument("--train-days", type=int, help="with --split-days: the last K training days only")
    p.add_argument("--epochs", type=int, help=f"max fine-tuning epochs ({d.max_epochs})")
    p.add_argument("--patience", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--unlearn-steps", type=int)
    p.add_argument("--unlearn-learning-rate", type=float)
    p.add_argument("--lam", type=float, help="lambda of PITuning Eq. 11")
    p.add_argument("--static-threshold", type=float,
                   help="PITuning Eq. 8's epsilon (a share of P_out); default 0.2 / N_I")
    p.add_argument("--batch-size", type=int, help="Keras only: litert's is fixed in the model")
    p.add_argument("--focal-gamma", type=float)
    p.add_argument("--oversample-ratio", type=float)
    p.add_argument("--lgbm-iterations", type=int)
    p.add_argument("--fp-learning-rate", type=float)
    p.add_argument("--prior-pseudo-count", type=float,
                   help=f"prior: P_in's smoothing toward P_pop, in windows ({d.prior_pseudo_count})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_methods(text, backend):
    if text is None:
        return DEFAULT_METHODS.get(backend)
    methods = list(METHODS) if text.strip() == "all" else [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UserInputError(f"unknown method {unknown or text!r}; choose from {', '.join(METHODS)} or all")
    return tuple(m for m in METHOD_ORDER if m in methods)


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    overrides = {field: getattr(args, flag) for flag, field in OPTIONS.items()}
    overrides["methods"] = parse_methods(args.method, args.backend)
    config = resolve_config(IndividualConfig, {}, None, args.config, overrides)
    model = args.model or (str(Path(args.run) / "student.tflite") if args.backend == "litert" else None)
    result = run_individual(args.run, config, out=args.out, data=args.data, mapping=args.mapping,
                            n_users=args.users, workers=args.workers, backend=args.backend,
                            model=model, litert_backend=args.interpreter,
                            dump_predictions=args.dump_predictions, compare=args.compare,
                            progress=not args.quiet,
                            oracle=False if args.no_oracle else args.oracle)
    print(result["table"])
    if "comparison" in result:
        print(result["comparison"])
    print(f"{result['users']} users in {result['seconds']:.1f}s on {args.backend} with "
          f"{args.workers} worker(s); outputs in {result['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
