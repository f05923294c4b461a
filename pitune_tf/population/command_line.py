"""The population stage's command-line options, shared by ``trainers.population`` and
``trainers.pipeline`` (the entry points stay argument parsing plus one library call)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pitune_tf.common import tables
from pitune_tf.common.cli import (
    OVERWRITE_HELP,
    HelpFormatter,
    add_config_options,
    add_output_options,
)
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.settings_summary import format_settings, format_summary, setting_sources
from pitune_tf.common.training_options import PRECISIONS, STRATEGIES
from pitune_tf.data.schema import add_schema_options, schema_from_args
from pitune_tf.metrics.numpy_metrics import INTENT_METRIC_COLUMNS, difference_cell
from pitune_tf.population.population_config import (
    PRESETS,
    SUMMARY_FIELDS,
    PopulationConfig,
    describe_preset,
    resolution_notes,
    resolve,
)

logger = logging.getLogger(__name__)
PRECEDENCE = "--preset < --config < flags"


def _bool_flag(parser, name, dest, help_text):
    parser.add_argument(f"--no-{name}", dest=dest, action="store_false", default=None,
                        help=help_text)


def build_parser(prog="python -m trainers.population", description=None):
    """The population stage's command line (``trainers.population``; ``trainers.pipeline``
    parses its ``--population-args`` with it)."""
    epilog = "presets (--preset):\n" + "\n".join(f"  {describe_preset(name)}" for name in PRESETS)
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                formatter_class=HelpFormatter)
    p.add_argument("--preset", default="demo", choices=list(PRESETS),
                   help="the config's defaults (each preset is described at the end)")
    add_config_options(p, PRECEDENCE)
    p.add_argument("--out", default="runs/demo", help="run directory")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP + " or an unfinished "
                   "run of another config")
    p.add_argument("--strategy", default="auto", choices=STRATEGIES,
                   help="tf.distribute strategy: auto (multiworker when TF_CONFIG names a "
                   "cluster, mirrored with several GPUs, else default), default, mirrored, "
                   "multiworker")
    add_output_options(p, results_only=True)
    p.add_argument("--data", nargs="+", metavar="EVENTS",
                   help="canonical events file, or a population file and an individual file")
    p.add_argument("--individual-fraction", type=float, metavar="F",
                   help="one events file: the share of its users held out (seeded) for the "
                   f"individual stage ({PopulationConfig.individual_fraction}); the others "
                   "train the population models")
    p.add_argument("--individual-users", type=int, metavar="N",
                   help="one events file: hold out N users instead of --individual-fraction")
    p.add_argument("--mapping", help="event -> intent mapping (CSV or JSON)")
    add_schema_options(p)
    p.add_argument("--synthetic-preset", help="synthetic data preset when no --data (demo)")
    p.add_argument("--history", type=int, help="window length L (30)")
    p.add_argument("--max-train-windows", type=int, help="subsample training windows (0 = all)")
    p.add_argument("--streaming", action="store_true", default=None,
                   help="build windows chunk by chunk from Parquet (file or shard directory)")
    p.add_argument("--stream-chunk-events", type=int, help="events per streamed chunk (250000)")
    p.add_argument("--stream-eval-windows", type=int,
                   help="streaming: most validation / test windows each (250000; 0 = all)")
    p.add_argument("--backbone", help="hub name, local checkpoint dir, or random:<layers>x<width>")
    p.add_argument("--embedding-dim", type=int, help="d (0 = backbone width / 4)")
    _bool_flag(p, "iat", "use_iat", "ablation: no intent attention (last position to the head)")
    _bool_flag(p, "repeat-term", "repeat_term",
               "no learned repeat-the-newest-intent mixture (not in the paper; off in "
               "--preset paper and paper_small, which turn off every deviation)")
    p.add_argument("--attention-normalize", choices=["none", "mean", "softmax"],
                   help="IAT pooling: none (PITuning Eq. 3's plain sum, the paper presets), "
                   "mean (divided by the real positions, default) or softmax")
    _bool_flag(p, "reconstruction", "reconstruction", "ablation: no event reconstruction loss")
    p.add_argument("--mask-rate", type=float, help="masked share of history events (0.15)")
    p.add_argument("--reconstruction-passes", choices=["one", "two"],
                   help="two (PITuning Algorithm 1: clean pass for the intent loss) or one")
    p.add_argument("--patience", type=int, help="early stopping patience in epochs (2; 0: off)")
    p.add_argument("--tuning", choices=["full", "partial"], help="full or partial (OFA-style PP)")
    p.add_argument("--dropout", type=float, help="GPT2 dropout")
    p.add_argument("--student-layers", type=int)
    p.add_argument("--student-width", type=int)
    p.add_argument("--student-heads", type=int)
    p.add_argument("--student-span", type=_span,
                   help="each student block attends to this many earlier events, so the phone "
                        "bundle gets infer_step (one event per prediction); auto (default): "
                        "(history - 2) // student_layers; none: the paper's whole-window student")
    p.add_argument("--alpha", type=float, help="weight of the KL term (PITuning Eq. 7)")
    p.add_argument("--temperature", type=float, help="eps of PITuning Eq. 6")
    p.add_argument("--teacher-epochs", type=int)
    p.add_argument("--student-epochs", type=int)
    p.add_argument("--epochs", type=int, help="both teacher and student epochs")
    p.add_argument("--teacher-learning-rate", type=float)
    p.add_argument("--student-learning-rate", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--clipnorm", type=float,
                   help="gradient norm clipping at this norm (default off, as in the paper)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="the teacher's dtype policy (float32; mixed_* keep float32 logits)")
    p.add_argument("--jit", action="store_true", default=None,
                   help="XLA-compile the training steps")
    p.add_argument("--seed", type=int)
    return p


def config_from_args(args) -> PopulationConfig:
    """The PopulationConfig of parsed arguments: ``--preset`` < ``--config`` < flags; a
    UserInputError for flags that contradict each other."""
    if args.individual_fraction is not None and args.individual_users is not None:
        raise UserInputError("give --individual-fraction or --individual-users, not both")
    if (args.individual_fraction is not None or args.individual_users is not None) and (
            len(args.data or ()) != 1):
        logger.warning("--individual-fraction / --individual-users split the users of one "
                       "--data events file; without one they are ignored")
    return resolve(args.preset, args.config, overrides_from_args(args))


def overrides_from_args(args) -> dict:
    """The config keys the flags set (None: not given)."""
    overrides = {
        key: getattr(args, key)
        for key in (
            "mapping", "synthetic_preset", "history", "max_train_windows", "backbone",
            "embedding_dim", "use_iat", "repeat_term", "attention_normalize", "reconstruction",
            "mask_rate", "reconstruction_passes", "clipnorm",
            "patience", "tuning", "dropout",
            "student_layers", "student_width", "student_heads", "student_span", "alpha", "temperature",
            "teacher_epochs", "student_epochs", "teacher_learning_rate",
            "student_learning_rate", "batch_size", "seed", "streaming",
            "stream_chunk_events", "stream_eval_windows", "precision", "jit",
            "individual_fraction", "individual_users",
        )
    }
    if args.data:
        overrides["data"] = [str(Path(p).resolve()) for p in args.data]
    if args.mapping:  # read again by trainers.individual --data, from any directory
        overrides["mapping"] = str(Path(args.mapping).resolve())
    schema = schema_from_args(args).to_dict()
    overrides["data_schema"] = schema or None  # None: the preset's / config file's
    if args.epochs is not None:
        overrides["teacher_epochs"] = overrides["student_epochs"] = args.epochs
    return overrides


def settings_text(config, args, full=False) -> str:
    """The resolved settings of a run: with ``full`` (``--print-config``) one ``key = value``
    line per config key, noting where a value came from and what a null becomes; else one
    line (the start of a run) with :data:`SUMMARY_FIELDS` and every key a preset, file or
    flag set."""
    sources = setting_sources(PRESETS, args.preset, args.config, overrides_from_args(args))
    resolved = resolution_notes(config)
    notes = {key: "; ".join(n for n in (sources.get(key), resolved.get(key)) if n)
             for key in {*sources, *resolved}}
    where = f"--preset {args.preset}" + (f" < --config {args.config}" if args.config else "")
    if full:
        return (f"# trainers.population settings ({where} < flags); run directory {args.out}\n"
                + format_settings(config, notes))
    shown = {key: note for key, note in notes.items() if key in sources or key in SUMMARY_FIELDS}
    return (f"settings ({where} < flags; all: --print-config): "
            + format_summary(config, SUMMARY_FIELDS, shown))


def table_rows(metrics, split="test") -> list:
    """``(name, metrics of split)`` of teacher, student, each with the ``p / prior^tau``
    decision rule, and the baselines, from a metrics.json."""
    rows = []
    for name in ("teacher", "student"):
        rows.append((name, metrics.get(name, {}).get(split)))
        rule = metrics.get(f"{name}_prior_rule")
        if rule:
            rows.append((f"{name}, p/prior^{rule['tau']:g}", rule.get(split)))
    rows += [(f"baseline: {name}", value.get(split))
             for name, value in metrics.get("baselines", {}).items()]
    return [(name, values) for name, values in rows if values]


def metrics_text(metrics) -> str:
    """The test metrics of teacher, student and baselines as a plain-text table
    (:func:`pitune_tf.common.tables.text_table`), then the student's comparison with each
    baseline (:func:`comparison_rows`)."""
    keys = [key for key, _ in INTENT_METRIC_COLUMNS]
    rows = [[name, *(float(values[k]) for k in keys)] for name, values in table_rows(metrics)]
    lines = [tables.text_table(["test", *keys], rows)]
    title, compared = comparison_rows(metrics)
    if compared:
        lines += [title] + [f"  {name:<18} {text}" for name, text in compared]
    return "\n".join(lines)


def metrics_markdown(metrics) -> str:
    """`metrics_text` in markdown (``report.md``;
    :func:`pitune_tf.common.tables.markdown_table`)."""
    rows = [[name, *(float(m[k]) for k, _ in INTENT_METRIC_COLUMNS)]
            for name, m in table_rows(metrics)]
    lines = [tables.markdown_table(["Model", *(c for _, c in INTENT_METRIC_COLUMNS)], rows)]
    title, compared = comparison_rows(metrics)
    if compared:
        lines += ["", title, ""] + [f"- {name}: {text}" for name, text in compared]
    return "\n".join(lines)


COMPARED_METRICS = (("prec_w", "Prec_w"), ("rec_m", "Rec_m"), ("ndcg@3", "N@3"), ("acc", "Acc"))


def comparison_rows(metrics) -> tuple:
    """``(title, [(baseline, text)])``: the student minus each trivial baseline on test with
    its 95% interval (``metrics["student_vs_baselines"]``), each difference marked above /
    below / tie (:func:`pitune_tf.metrics.difference_cell`); no rows for a metrics.json
    without them."""
    comparison = metrics.get("student_vs_baselines")
    if not comparison:
        return "", []
    title = f"student - baseline on test, 95% paired bootstrap over {comparison['unit']}s:"
    return title, [(name, "; ".join(f"{label} {difference_cell(diffs[key])}"
                                    for key, label in COMPARED_METRICS))
                   for name, diffs in comparison.items() if name != "unit"]


def _span(text: str) -> int | str:
    """``--student-span``: a whole number, ``auto`` or ``none``."""
    if text.lower() in ("auto", "none"):
        return text.lower()
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number, auto or none, got {text!r}") from None
