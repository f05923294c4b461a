"""The individual stage's command-line options (``trainers.individual`` parses, the library
runs)."""

from __future__ import annotations

import argparse

from pitune_tf.common.cli import (
    HelpFormatter,
    add_config_options,
    add_output_options,
)
from pitune_tf.common.config import resolve_config
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.limits import COUNT_MAX, WORKERS_MAX, whole_number_type
from pitune_tf.common.settings_summary import format_settings, format_summary, setting_sources
from pitune_tf.data.schema import add_schema_options
from pitune_tf.individual.individual_config import (
    PRESET_NOTES,
    PRESETS,
    UNLEARN_SELECT,
    IndividualConfig,
)
from pitune_tf.individual.methods import (
    BACKEND_DEFAULT_METHODS,
    BACKENDS,
    LITERT,
    METHOD_ORDER,
    METHODS,
    TABLE2_BASELINES,
    default_methods,
)
from pitune_tf.individual.shards import parse_shard

# command-line flag -> IndividualConfig field
OPTIONS = {"seed": "seed", "min_history": "min_history", "split": "fractions",
           "epochs": "max_epochs", "patience": "patience", "learning_rate": "learning_rate",
           "unlearn_steps": "unlearn_steps", "unlearn_learning_rate": "unlearn_learning_rate",
           "lam": "lam", "static_threshold": "static_threshold", "batch_size": "batch_size",
           "focal_gamma": "focal_gamma", "oversample_ratio": "oversample_ratio",
           "lgbm_iterations": "lgbm_iterations", "fp_users": "fp_users",
           "fp_learning_rate": "fp_learning_rate", "prior_pseudo_count": "prior_pseudo_count",
           "split_days": "split_days", "train_days": "train_days",
           "prior_after_tuning": "prior_after_tuning", "refit": "refit", "holdout": "holdout",
           "unlearn_select": "unlearn_select", "train_part": "train_part",
           "train_part_rule": "train_part_rule",
           "shipped_guard": "shipped_guard", "shipped_guard_z": "shipped_guard_z",
           "shrink_to_shipped": "shrink_to_shipped", "repeat_mix": "repeat_mix"}
PRECEDENCE = "--preset < --config < flags"
# the settings a run's first line shows (with every setting a config file or flag changed)
SUMMARY_FIELDS = ("methods", "fractions", "max_epochs", "patience", "learning_rate", "lam",
                  "unlearn_steps", "refit", "prior_after_tuning", "seed")
PRESETS_HELP = ("presets (--preset):\n" + "\n".join(
    f"  {name}: {note}" for name, note in PRESET_NOTES.items())
    + "\nThe models and their sizes come from the population run (its --preset, "
    "RUN/config.json); the paper's whole recipe: trainers.population --preset paper (or "
    "paper_small), then trainers.individual --preset paper.")


def build_parser(prog="python -m trainers.individual", description=None):
    """The individual stage's command line (``trainers.individual``)."""
    d = IndividualConfig()
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=PRESETS_HELP,
                                formatter_class=HelpFormatter)
    p.add_argument("--run", required=True, help="population run directory (trainers.population --out)")
    p.add_argument("--data", help="individual users' events (CSV/Parquet); default RUN/data/individual.parquet")
    p.add_argument("--mapping", help="event -> intent mapping file, when --data has no intent column")
    add_schema_options(p)
    oracle = p.add_mutually_exclusive_group()
    oracle.add_argument("--oracle", help="the log's user oracle (Parquet/CSV: user_id, timestamp, "
                        "one column per intent); default <data stem>_oracle.parquet beside the log")
    oracle.add_argument("--no-oracle", action="store_true",
                        help="ignore an oracle file beside the log")
    p.add_argument("--backend", default="keras", choices=BACKENDS, help="keras (default) or litert")
    p.add_argument("--model", help="student.tflite for --backend litert (default RUN/student.tflite)")
    p.add_argument("--interpreter", default="auto", help="litert: auto, litert, tflite_runtime or tf")
    p.add_argument("--method", help=f"comma-separated, from {', '.join(METHODS)}, or 'all' "
                   f"(every method but the Table 2 baselines {','.join(TABLE2_BASELINES)}), or "
                   f"'table2' (those) (default: {','.join(d.methods)}; litert: "
                   f"{','.join(default_methods(LITERT))})")
    p.add_argument("--preset", default="default", choices=list(PRESETS),
                   help="the config's defaults (each preset is described at the end)")
    add_config_options(p, PRECEDENCE)
    p.add_argument("--users", type=whole_number_type(0, COUNT_MAX), default=0,
                   help="first N users by id (0 = all)")
    p.add_argument("--workers", type=whole_number_type(1, WORKERS_MAX), default=1,
                   help="parallel processes (users split among them)")
    p.add_argument("--shard", type=parse_shard, metavar="I/N",
                   help="run shard I of N (from 0) of the users and write a part for "
                   "'trainers.individual merge' (partition: user number modulo N)")
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
    p.add_argument("--prior-after-tuning", action=argparse.BooleanOptionalAction, default=None,
                   help="shift the tuned models' logits by the user's prior too, beta chosen on "
                        f"validation ({'on' if d.prior_after_tuning else 'off'} by default)")
    p.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                   help="after the epoch (and beta) are chosen on validation, retrain the tuned "
                        f"models on training + validation windows ({'on' if d.refit else 'off'} by default)")
    p.add_argument("--shipped-guard", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the shipped model for a user unless the tuned one's validation "
                        "log-loss is lower by more than --shipped-guard-z standard errors "
                        f"({'on' if d.shipped_guard else 'off'} by default; not in the paper)")
    p.add_argument("--shipped-guard-z", type=float,
                   help=f"the guard's margin in standard errors ({d.shipped_guard_z})")
    p.add_argument("--shrink-to-shipped", action=argparse.BooleanOptionalAction, default=None,
                   help="a tuned model's weights become alpha * tuned + (1 - alpha) * shipped, "
                        "alpha (0 .. 1) chosen per user on validation log-loss "
                        f"({'on' if d.shrink_to_shipped else 'off'} by default; not in the paper)")
    p.add_argument("--repeat-mix", action=argparse.BooleanOptionalAction, default=None,
                   help="mix a tuned model's probabilities with the last event's intent, the weight "
                        "chosen per user on validation log-loss "
                        f"({'on' if d.repeat_mix else 'off'} by default; not in the paper)")
    p.add_argument("--unlearn-select", choices=UNLEARN_SELECT,
                   help="pituning: none (default: always from the unlearned weights, Algorithm 1) "
                        "or after_finetune (fine-tune from the unlearned and the shipped "
                        "weights, keep the better on validation: twice the compute)")
    p.add_argument("--train-part", metavar="PART",
                   help="what fine-tuning trains: head, top1, top2, ... (the student's top "
                        "blocks and the head), all (default), or auto (per user, chosen before "
                        "training by --train-part-rule, with whether pituning unlearns); litert: "
                        "the train_<part> signatures, whose backward pass stops below the part")
    p.add_argument("--train-part-rule", metavar="FILE",
                   help="with --train-part auto: the rule's JSON (python -m trainers.experiments "
                        "pituning_train_part writes one)")
    p.add_argument("--holdout", choices=("test", "validation"),
                   help="validation: never read the test windows; score the validation windows, "
                        "validating on the newest training windows (to choose settings)")
    add_output_options(p, results_only=True)
    return p


def build_merge_parser(prog="python -m trainers.individual merge", description=None):
    """``trainers.individual merge PARTS... --out DIR``: the parts of a sharded run into the
    tables of one run."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("parts", nargs="+", help="the --out directories of --shard 0/N ... N-1/N")
    p.add_argument("--out", required=True, help="output directory of the merged tables")
    return p


def parse_methods(text, backend):
    if text is None:
        return BACKEND_DEFAULT_METHODS.get(backend)
    named = {"all": [m for m in METHODS if m not in TABLE2_BASELINES], "table2": list(TABLE2_BASELINES)}
    methods = [m for part in text.split(",") if part.strip()
               for m in named.get(part.strip(), [part.strip()])]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UserInputError(f"unknown method {unknown or text!r}; choose from {', '.join(METHODS)}, all or table2")
    return tuple(m for m in METHOD_ORDER if m in methods)


def config_from_args(args) -> IndividualConfig:
    """The IndividualConfig of parsed arguments: --preset < --config file < flags."""
    return resolve_config(IndividualConfig, PRESETS, args.preset, args.config,
                          overrides_from_args(args))


def overrides_from_args(args) -> dict:
    """The config keys the flags set (None: not given)."""
    overrides = {field: getattr(args, flag) for flag, field in OPTIONS.items()}
    overrides["methods"] = parse_methods(args.method, args.backend)
    return overrides


def resolution_notes(config, args) -> dict:
    """Key -> what its value means in this run, where the value alone does not say."""
    notes = {}
    if not config.min_history:
        notes["min_history"] = "the run's min_history"
    if config.static_threshold is None:
        notes["static_threshold"] = "0.2 / the number of intents"
    if config.split_days is not None:
        notes["fractions"] = "not used: split_days is set"
    if args.backend == "litert":
        notes["batch_size"] = "not used: the litert model's own batch size"
    if "fp" in config.methods or "pp" in config.methods:
        notes["fp_users"] = f"fp / pp run on the first {config.fp_users} users"
    return notes


def settings_text(config, args, full=False) -> str:
    """The resolved settings of a run: with ``full`` (``--print-config``) one ``key = value``
    line per config key, noting where a value came from and what a null means; else one line
    (the start of a run) with :data:`SUMMARY_FIELDS` and every key a file or flag set."""
    overrides = overrides_from_args(args)
    if args.method is None:  # the backend's default methods, not a choice of the user
        overrides.pop("methods")
    sources = setting_sources(PRESETS, args.preset, args.config, overrides)
    resolved = resolution_notes(config, args)
    notes = {key: "; ".join(n for n in (sources.get(key), resolved.get(key)) if n)
             for key in {*sources, *resolved}}
    where = ("defaults" if args.preset == "default" else f"--preset {args.preset}") + (
        f" < --config {args.config}" if args.config else "")
    if full:
        data = args.data or f"{args.run}/data/individual.parquet"
        return (f"# trainers.individual settings ({where} < flags); run {args.run}, data {data}, "
                f"backend {args.backend}, users {args.users or 'all'}, workers {args.workers}\n"
                + format_settings(config, notes))
    shown = {key: note for key, note in notes.items() if key in sources or key in SUMMARY_FIELDS}
    return (f"settings ({where} < flags; all: --print-config): "
            + format_summary(config, SUMMARY_FIELDS, shown))
