"""Convert a run's student to TFLite for phones: ``student.tflite`` (infer / train / unlearn /
get_weights / set_weights / reset, builtin ops only), ``student_int8.tflite`` (dynamic-range
quantized) and ``student_fp16.tflite`` (float16 weights), both inference-only. With
``--qat-epochs N`` also ``student_qat_int8.tflite``: the student after N epochs of tfmot
quantization-aware fine-tuning of its dense layers (``tflite.qat``), dynamic-range quantized,
inference-only; its prec_w on the population test windows is printed next to the plain int8
model's.

Beside the models it writes the phone bundle (``tflite.phone_bundle``): ``labels.txt`` (the
intent of each output index), ``vocab.json`` and ``preprocessing.json`` (window rules, reserved
ids, P_pop, P_out and the static threshold of PITuning Eq. 8-10), the three also embedded in
every ``.tflite`` as named metadata entries (``tflite.metadata.read_metadata``).

Commands:

    python -m tflite.convert --run runs/demo                 # writes into runs/demo/
    python -m tflite.convert --run runs/demo --out phone/ --batch-size 16 --optimizer sgd
    python -m tflite.convert --run runs/demo --qat-epochs 2    # + student_qat_int8.tflite
    python -m tflite.convert --run runs/demo --static-threshold 0.01   # Eq. 8's epsilon

The export fails with a clear message naming every op outside TFLite's builtin set (Flex /
SELECT_TF ops), since stock LiteRT on phones cannot run them.

This module is the command line; the work is :func:`tflite.run_export.convert_run` (the
files: :mod:`tflite.export`, :mod:`tflite.qat`, :mod:`tflite.phone_bundle`).
"""

from __future__ import annotations

import argparse
import sys

from pitune_tf.common.cli import HelpFormatter, add_output_options, run_main
from pitune_tf.common.limits import BATCH_SIZE_MAX, COUNT_MAX, EPOCHS_MAX, check_number


def run(argv=None):
    """Parses ``argv`` and converts the run; raises UserInputError on bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m tflite.convert", description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    add_output_options(parser)
    parser.add_argument("--run", required=True, help="run directory of trainers.population")
    parser.add_argument("--out", default=None, help="output directory (default: the run dir)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="fixed batch of the train/unlearn signatures (default 32, the individual trainer's)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                        help="optimizer inside train/unlearn (default adam, Keras math)")
    parser.add_argument("--clipnorm", type=float, default=None,
                        help="per-gradient norm clip inside train/unlearn (Keras clipnorm)")
    parser.add_argument("--no-quantized", action="store_true",
                        help="skip the int8 and fp16 inference models")
    parser.add_argument("--qat-epochs", type=int, default=0,
                        help="epochs of tfmot quantization-aware fine-tuning of the dense layers "
                             "before writing student_qat_int8.tflite (default 0: off)")
    parser.add_argument("--qat-max-windows", type=int, default=5000,
                        help="QAT training / test windows used at most (default 5000, 0 = all)")
    parser.add_argument("--static-threshold", type=float, default=None,
                        help="PITuning Eq. 8's epsilon written to preprocessing.json (default: "
                             "trainers.individual's, 0.2 / the number of intents)")
    parser.add_argument("--train-part-rule", metavar="FILE",
                        help="a --train-part auto rule (trainers.experiments pituning_train_part) "
                             "for the bundle: train_part_rule.json")
    args = parser.parse_args(argv)
    if args.static_threshold is not None and not 0.0 <= args.static_threshold < 1.0:
        parser.error("--static-threshold must be in [0, 1)")
    # the numbers' ranges, each one error line (pitune_tf.common.limits)
    check_number("--batch-size", args.batch_size, 1, BATCH_SIZE_MAX, whole=True)
    check_number("--qat-epochs", args.qat_epochs, 0, EPOCHS_MAX, whole=True)
    check_number("--qat-max-windows", args.qat_max_windows, 0, COUNT_MAX, whole=True)
    check_number("--clipnorm", args.clipnorm, 0, None, low_open=True, allow_none=True)
    from tflite.run_export import convert_run  # deferred: TensorFlow loads here (fast --help)

    qat = {}
    paths = convert_run(
        args.run,
        args.out,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        clipnorm=args.clipnorm,
        quantized=not args.no_quantized,
        qat_epochs=args.qat_epochs,
        qat_max_windows=args.qat_max_windows,
        qat_report=qat,
        static_threshold=args.static_threshold,
        train_part_rule=args.train_part_rule,
        quiet=args.quiet,
    )
    for kind, path in paths.items():
        print(f"{kind}: {path} ({path.stat().st_size / 1024:.1f} KiB)")
    if qat:
        losses = ", ".join(f"{x:.4f}" for x in qat["losses"])
        print(f"qat: {qat['wrapped_dense']} dense layers, {qat['n_train']} training windows, "
              f"epoch losses {losses}")
        for kind, value in qat["prec_w"].items():
            print(f"prec_w {kind}: {value:.4f} ({qat['n_test']} population test windows)")
    return 0


def main(argv=None) -> int:
    """Entry point (``python -m tflite.convert``, ``pitune-convert``): the exit status."""
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
