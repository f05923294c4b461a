"""A population run converted for the phone (``python -m tflite.convert``): the student's
TFLite files (:mod:`tflite.export`, with ``--qat-epochs`` also :func:`tflite.qat.export_qat`)
and the phone bundle beside them (:mod:`tflite.phone_bundle`), written into the output folder
as one set."""

from __future__ import annotations

import os
from pathlib import Path

from pitune_tf.common.atomic import write_json
from pitune_tf.common.epoch_log import StepProgress
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.json_files import read_json
from pitune_tf.common.output_set import output_set
from pitune_tf.population.run_directory import load_run
from tflite.export import META_FILE, MODEL_FILES, export_student
from tflite.phone_bundle import BUNDLE_FILES, bundle_contents, write_bundle

# What a conversion writes in its output folder, replaced as one set (a file of an earlier
# conversion that this one does not write goes too; the folder's other files stay).
OUTPUT_FILES = (*MODEL_FILES.values(), META_FILE, *BUNDLE_FILES)


def convert_run(run_dir, out_dir=None, batch_size=32, optimizer="adam", clipnorm=None,
                quantized=True, qat_epochs=0, qat_max_windows=5000, qat_seed=0,
                qat_report=None, static_threshold=None, train_part_rule=None, quiet=False) -> dict:
    """Converts ``RUN_DIR/student.keras`` (through ``pitune_tf.population.load_run``) and
    writes the phone bundle beside it (``labels.txt``, ``vocab.json``, ``preprocessing.json``
    of :mod:`tflite.phone_bundle`, also embedded in every ``.tflite`` as named metadata;
    ``static_threshold`` is Eq. 8's epsilon written there, None for the individual stage's
    default; ``train_part_rule``: a rule file the bundle carries as ``train_part_rule.json``); with ``qat_epochs`` > 0 also writes ``student_qat_int8.tflite``
    (:func:`tflite.qat.export_qat`), whose report goes into ``qat_report`` (a dict, when given) and
    ``student_tflite.json``. Each file written is announced (``[convert] student_int8.tflite
    (2/3) ...``, or a bar on a terminal unless ``quiet``), as is each QAT epoch. The files
    (``OUTPUT_FILES``) replace an earlier conversion's as one set
    (:func:`pitune_tf.common.output_set.output_set`): a conversion that fails or is killed
    leaves the earlier bundle whole."""
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UserInputError(f"{out_dir} is a file, not an output directory")
    run = load_run(run_dir)
    out_dir = out_dir or run_dir
    history = _history(run)
    bundle = bundle_contents(run, history, batch_size, static_threshold, train_part_rule)
    qat = bool(qat_epochs and qat_epochs > 0)
    progress = StepProgress("convert", 1 + 2 * bool(quantized) + qat, quiet=quiet)
    with output_set(out_dir, OUTPUT_FILES) as new:  # the files of a bundle go in as one set
        paths = export_student(
            run.student,
            new,
            history=history,
            batch_size=batch_size,
            optimizer=optimizer,
            clipnorm=clipnorm,
            quantized=quantized,
            meta=run_reference(run_dir, out_dir),
            metadata=bundle,
            progress=progress,
        )
        if qat:
            # deferred: tensorflow_model_optimization loads only for quantization-aware training
            from tflite.qat import export_qat

            compare = {kind: paths[kind] for kind in ("int8",) if kind in paths}
            report = export_qat(run_dir, new, history, int(qat_epochs),
                                max_windows=qat_max_windows, seed=qat_seed, compare=compare,
                                metadata=bundle, quiet=quiet, progress=progress)
            paths["qat_int8"] = report["path"]
            meta_path = Path(new) / META_FILE
            meta = read_json(meta_path)
            meta["qat"] = {"epochs": int(qat_epochs), "file": report["path"].name,
                           "bytes": report["path"].stat().st_size,
                           **{k: v for k, v in report.items() if k != "path"}}
            write_json(meta_path, meta)
            if qat_report is not None:
                qat_report.update({**report, "path": Path(out_dir) / report["path"].name})
        paths.update(write_bundle(bundle, new))
    return {kind: Path(out_dir) / path.name for kind, path in paths.items()}


def run_reference(run_dir, out_dir) -> dict:
    """How ``student_tflite.json`` names the converted run: its directory name and its path
    relative to the output directory (``.`` when converted into the run), never an absolute
    path of the converting machine."""
    run_dir, out_dir = Path(run_dir).resolve(), Path(out_dir).resolve()
    try:
        relative = Path(os.path.relpath(run_dir, out_dir)).as_posix()
    except ValueError:  # another drive (Windows): no relative path
        relative = None
    return {"run": run_dir.name, "run_path": relative}


def _history(run) -> int:
    config = run.config
    for key in ("history", "max_len", "seq_len", "L"):
        value = config.get(key) if isinstance(config, dict) else getattr(config, key, None)
        if value:
            return int(value)
    shape = getattr(run.student, "input_shape", None)
    if isinstance(shape, dict) and "event" in shape:
        return int(shape["event"][1])
    raise UserInputError("cannot find the window length (history) in the run's config.json")
