"""Prints the Keras ``summary()`` of the PITuning teacher and student for a preset.

Commands::

    python scripts/print_summaries.py                          # demo preset
    python scripts/print_summaries.py --preset paper --backbone random:12x768   # offline
    python scripts/print_summaries.py --preset paper           # downloads gpt2 when online
    python scripts/print_summaries.py --run runs/demo          # a trained run's models

Vocabulary sizes come from ``--run`` or, without it, the flags (the demo data's sizes by
default).
"""

import argparse
import sys

from pitune_tf.common.cli import run_main
from pitune_tf.population import PRESETS, resolve


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    parser.add_argument("--backbone", help="override the preset's backbone")
    parser.add_argument("--run", help="a run directory: print its trained teacher and student")
    parser.add_argument("--n-events", type=int, default=91)
    parser.add_argument("--n-intents", type=int, default=18)
    parser.add_argument("--n-locations", type=int, default=91)
    parser.add_argument("--n-slots", type=int, default=25)
    args = parser.parse_args(argv)
    from pitune_tf.models import build_student, build_teacher
    from pitune_tf.population import load_run

    if args.run:
        run = load_run(args.run)
        teacher, student = run.teacher, run.student
    else:
        config = resolve(args.preset, overrides={"backbone": args.backbone})
        sizes = {"event": args.n_events, "intent": args.n_intents,
                 "location": args.n_locations, "slot": args.n_slots}
        teacher = build_teacher(config, sizes)
        student = build_student(config, sizes)
    for model in (teacher, student):
        model.summary(expand_nested=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
