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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from pitune_tf.common.atomic import atomic_path, write_json
from pitune_tf.common.cli import HelpFormatter, add_output_options, run_main
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.output_set import output_set
from tflite.errors import ConversionError
from tflite.metadata import embed_metadata
from tflite.ops_check import check_builtin_only, model_ops, unsupported_op_error
from tflite.phone_bundle import BUNDLE_FILES, bundle_contents, write_bundle
from tflite.runtime import Runtime

# TensorFlow (``pitune_tf.common.keras``, ``tflite.student_module``) is imported inside the
# functions that use it, so that ``--help`` answers without loading it.

MODEL_FILES = {
    "fp32": "student.tflite",
    "int8": "student_int8.tflite",
    "fp16": "student_fp16.tflite",
    "qat_int8": "student_qat_int8.tflite",
}
META_FILE = "student_tflite.json"
# What a conversion writes in its output folder, replaced as one set (a file of an earlier
# conversion that this one does not write goes too; the folder's other files stay).
OUTPUT_FILES = (*MODEL_FILES.values(), META_FILE, *BUNDLE_FILES)


def convert_saved_model(saved_model_dir, signature_keys, training=True, quantize=None) -> bytes:
    """Converts signatures of a SavedModel to a builtin-ops-only TFLite flatbuffer.

    Args:
        saved_model_dir: str. The SavedModel.
        signature_keys: list of str. Signatures to keep.
        training: bool. Keep variables as resource variables (training signatures); when False
            they are frozen into constants (what quantization needs).
        quantize: None, ``"int8"`` (dynamic-range: int8 weights, float activations) or
            ``"fp16"`` (float16 weights).

    Raises:
        UnsupportedOpError: naming every op outside TFLite's builtin set.
    """
    from pitune_tf.common.keras import tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=list(signature_keys)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.experimental_enable_resource_variables = bool(training)
    if quantize in ("int8", "fp16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "fp16":
            converter.target_spec.supported_types = [tf.float16]
    elif quantize is not None:
        raise ValueError(f"quantize must be None, 'int8' or 'fp16', got {quantize!r}")
    try:
        with converter_log():
            content = converter.convert()
    except Exception as err:  # the converter raises ConverterError / RuntimeError / ValueError
        keys = list(signature_keys)
        named = re.findall(r"failed while converting: '(\w+)'", str(err))
        signature = named[0] if named and named[0] in keys else keys[0] if len(keys) == 1 else None
        unsupported = unsupported_op_error(err, signature=signature)
        if unsupported is not None:
            raise unsupported from None
        raise ConversionError(err, signature) from err
    check_builtin_only(content)
    return content


@contextlib.contextmanager
def converter_log():
    """Inside the block, what native code writes to standard error (the converter's MLIR
    diagnostics: ``loc(...): error: ...`` lines and a dump of the failing ops) is dropped,
    unless ``--verbose``: the exception the converter raises carries the same facts, which
    the command reports as one ``error:`` line."""
    from pitune_tf.common._env import is_verbose

    if is_verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2 (an embedding interpreter)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def export_module(module, out_dir, quantized=True, metadata=None, progress=None) -> dict:
    """Writes ``student.tflite`` (every signature) and, when ``quantized``, the int8 and fp16
    inference models into ``out_dir``, each with the named ``metadata`` entries (dict name ->
    bytes or str, :func:`tflite.metadata.embed_metadata`) when given; returns {kind: path}.
    ``module``: a :class:`tflite.student_module.StudentModule`; ``progress``: an optional
    :class:`pitune_tf.common.epoch_log.StepProgress` told of each file."""
    from pitune_tf.common.keras import tf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    with tempfile.TemporaryDirectory(prefix="pitune_tflite_") as tmp:
        saved = Path(tmp) / "saved_model"
        tf.saved_model.save(module, str(saved), signatures=module.concrete_signatures())
        builds = {"fp32": (module.signature_names, True, None)}
        if quantized:
            builds["int8"] = (("infer",), False, "int8")
            builds["fp16"] = (("infer",), False, "fp16")
        for kind, (keys, training, quantize) in builds.items():
            if progress is not None:
                progress.begin(MODEL_FILES[kind])
            content = convert_saved_model(saved, keys, training=training, quantize=quantize)
            if metadata:
                content = embed_metadata(content, metadata)
            path = out_dir / MODEL_FILES[kind]
            with atomic_path(path) as tmp_path:
                Path(tmp_path).write_bytes(content)
            paths[kind] = path
            if progress is not None:
                progress.end()
    return paths


def export_inference(student, path, history, quantize="int8", metadata=None,
                     progress=None) -> Path:
    """Writes ``student``'s ``infer`` signature alone to ``path`` (``quantize`` as in
    :func:`convert_saved_model`, ``metadata`` and ``progress`` as in :func:`export_module`);
    checks it loads through :class:`Runtime`."""
    from pitune_tf.common.keras import tf
    from tflite.student_module import StudentModule

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress.begin(path.name)
    module = StudentModule(student, history=history)
    root = tf.Module()  # only ``infer`` is traced and saved (the training signatures are slow)
    root.student = student
    root.infer = module.infer
    with tempfile.TemporaryDirectory(prefix="pitune_tflite_") as tmp:
        saved = Path(tmp) / "saved_model"
        tf.saved_model.save(root, str(saved), signatures=module.concrete_signatures(("infer",)))
        content = convert_saved_model(saved, ("infer",), training=False, quantize=quantize)
    if metadata:
        content = embed_metadata(content, metadata)
    with atomic_path(path) as tmp_path:
        Path(tmp_path).write_bytes(content)
    Runtime(path, required=("infer",))
    if progress is not None:
        progress.end()
    return path


def tflite_prec_w(path, windows) -> float:
    """Weighted precision (prec_w) of a TFLite model's ``infer`` on ``windows``."""
    from pitune_tf.metrics import intent_metrics

    logits = Runtime(path, required=("infer",)).infer(windows.features(), batch_size=256)["logits"]
    return intent_metrics(windows.label, logits)["prec_w"]


def export_qat(run_dir, out_dir, history, epochs, max_windows=5000, seed=0, population=None,
               compare=None, metadata=None, quiet=False, progress=None) -> dict:
    """QAT fine-tuning (:func:`tflite.qat.quantization_aware_finetune`), then
    ``student_qat_int8.tflite`` in ``out_dir``; returns {"path", "losses", "n_train", "n_test",
    "prec_w": {kind: value}} with the prec_w on (at most ``max_windows``) population test windows
    of the QAT model and of each TFLite file in ``compare`` ({kind: path}). ``quiet``: epoch
    lines instead of a bar (:class:`pitune_tf.common.epoch_log.StepProgress`); ``progress``
    as in :func:`export_module`."""
    from tflite.qat import quantization_aware_finetune

    student, info = quantization_aware_finetune(
        run_dir, epochs=epochs, max_windows=max_windows, seed=seed, population=population,
        return_info=True, quiet=quiet,
    )
    path = export_inference(student, Path(out_dir) / MODEL_FILES["qat_int8"], history, "int8",
                            metadata=metadata, progress=progress)
    test = info["splits"][2].subsample(max_windows, seed)
    prec_w = {}
    if len(test):
        for kind, other in {**(compare or {}), "qat_int8": path}.items():
            prec_w[kind] = tflite_prec_w(other, test)
    return {"path": path, "losses": info["losses"], "n_train": info["n_train"],
            "n_test": len(test), "wrapped_dense": info["wrapped_dense"], "prec_w": prec_w}


def export_student(
    student,
    out_dir,
    history,
    batch_size=32,
    optimizer="adam",
    clipnorm=None,
    quantized=True,
    meta=None,
    metadata=None,
    progress=None,
) -> dict:
    """Wraps the Keras student in a :class:`StudentModule`, exports it (with the named
    ``metadata`` entries and ``progress``, as in :func:`export_module`) and checks that every written file
    loads through :class:`tflite.runtime.Runtime` with its signatures; writes
    ``student_tflite.json`` (shapes, sizes, ops); returns {kind: path}."""
    from tflite.student_module import StudentModule

    module = StudentModule(
        student, history=history, batch_size=batch_size, optimizer=optimizer, clipnorm=clipnorm
    )
    paths = export_module(module, out_dir, quantized=quantized, metadata=metadata,
                          progress=progress)
    files = {}
    for kind, path in paths.items():
        required = module.signature_names if kind == "fp32" else ("infer",)
        Runtime(path, required=required)  # loads, signatures and shapes as expected
        files[kind] = {
            "path": path.name,
            "bytes": path.stat().st_size,
            "signatures": list(required),
            "ops": model_ops(path.read_bytes()),
        }
    info = {
        "history": module.history,
        "batch_size": module.batch_size,
        "n_intents": module.n_intents,
        "num_weights": module.num_weights,
        "optimizer": optimizer,
        "clipnorm": clipnorm,
        "files": files,
        # what each training signature updates (train: all; train_<part>: that part)
        "train_signatures": {name: {"trainable_weights": module.trainable_weights_of(name)}
                             for name in module.signature_names if name.startswith("train")},
        "metadata": sorted(metadata or ()),
    }
    write_json(Path(out_dir) / META_FILE, {**(meta or {}), **info})
    return paths


def convert_run(run_dir, out_dir=None, batch_size=32, optimizer="adam", clipnorm=None,
                quantized=True, qat_epochs=0, qat_max_windows=5000, qat_seed=0,
                qat_report=None, static_threshold=None, quiet=False) -> dict:
    """Converts ``RUN_DIR/student.keras`` (through ``pitune_tf.population.load_run``) and
    writes the phone bundle beside it (``labels.txt``, ``vocab.json``, ``preprocessing.json``
    of :mod:`tflite.phone_bundle`, also embedded in every ``.tflite`` as named metadata;
    ``static_threshold`` is Eq. 8's epsilon written there, None for the individual stage's
    default); with ``qat_epochs`` > 0 also writes ``student_qat_int8.tflite``
    (:func:`export_qat`), whose report goes into ``qat_report`` (a dict, when given) and
    ``student_tflite.json``. Each file written is announced (``[convert] student_int8.tflite
    (2/3) ...``, or a bar on a terminal unless ``quiet``), as is each QAT epoch. The files
(``OUTPUT_FILES``) replace an earlier conversion's as one set
(:func:`pitune_tf.common.output_set.output_set`): a conversion that fails or is killed
leaves the earlier bundle whole."""
    from pitune_tf.common.epoch_log import StepProgress
    from pitune_tf.population import load_run

    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UserInputError(f"{out_dir} is a file, not an output directory")
    run = load_run(run_dir)
    out_dir = out_dir or run_dir
    history = _history(run)
    bundle = bundle_contents(run, history, batch_size, static_threshold)
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
            compare = {kind: paths[kind] for kind in ("int8",) if kind in paths}
            report = export_qat(run_dir, new, history, int(qat_epochs),
                                max_windows=qat_max_windows, seed=qat_seed, compare=compare,
                                metadata=bundle, quiet=quiet, progress=progress)
            paths["qat_int8"] = report["path"]
            meta_path = Path(new) / META_FILE
            meta = json.loads(meta_path.read_text())
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
    args = parser.parse_args(argv)
    if args.static_threshold is not None and not 0.0 <= args.static_threshold < 1.0:
        parser.error("--static-threshold must be in [0, 1)")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.qat_epochs < 0:
        parser.error("--qat-epochs must be >= 0")
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
