"""Convert a run's student to TFLite for phones: ``student.tflite`` (infer / train / unlearn /
get_weights / set_weights / reset, builtin ops only), ``student_int8.tflite`` (dynamic-range
quantized) and ``student_fp16.tflite`` (float16 weights), both inference-only.

Commands:

    python -m tflite.convert --run runs/demo                 # writes into runs/demo/
    python -m tflite.convert --run runs/demo --out phone/ --batch-size 16 --optimizer sgd

The export fails with a clear message naming every op outside TFLite's builtin set (Flex /
SELECT_TF ops), since stock LiteRT on phones cannot run them.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from pitune_tf.atomic import atomic_path, write_json
from pitune_tf.cli import run_main
from pitune_tf.errors import UserInputError
from pitune_tf.keras import tf
from tflite.ops_check import check_builtin_only, model_ops, unsupported_op_error
from tflite.runtime import Runtime
from tflite.student_module import SIGNATURES, StudentModule

MODEL_FILES = {
    "fp32": "student.tflite",
    "int8": "student_int8.tflite",
    "fp16": "student_fp16.tflite",
}
META_FILE = "student_tflite.json"


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
        content = converter.convert()
    except Exception as err:  # the converter raises ConverterError / RuntimeError / ValueError
        keys = list(signature_keys)
        named = re.findall(r"failed while converting: '(\w+)'", str(err))
        signature = named[0] if named and named[0] in keys else keys[0] if len(keys) == 1 else None
        unsupported = unsupported_op_error(err, signature=signature)
        if unsupported is not None:
            raise unsupported from None
        raise
    check_builtin_only(content)
    return content


def export_module(module: StudentModule, out_dir, quantized=True) -> dict:
    """Writes ``student.tflite`` (every signature) and, when ``quantized``, the int8 and fp16
    inference models into ``out_dir``; returns {kind: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    with tempfile.TemporaryDirectory(prefix="pitune_tflite_") as tmp:
        saved = Path(tmp) / "saved_model"
        tf.saved_model.save(module, str(saved), signatures=module.concrete_signatures())
        builds = {"fp32": (SIGNATURES, True, None)}
        if quantized:
            builds["int8"] = (("infer",), False, "int8")
            builds["fp16"] = (("infer",), False, "fp16")
        for kind, (keys, training, quantize) in builds.items():
            content = convert_saved_model(saved, keys, training=training, quantize=quantize)
            path = out_dir / MODEL_FILES[kind]
            with atomic_path(path) as tmp_path:
                Path(tmp_path).write_bytes(content)
            paths[kind] = path
    return paths


def export_student(
    student,
    out_dir,
    history,
    batch_size=32,
    optimizer="adam",
    clipnorm=None,
    quantized=True,
    meta=None,
) -> dict:
    """Wraps the Keras student in a :class:`StudentModule`, exports it and checks that every
    written file loads through :class:`tflite.runtime.Runtime` with its signatures; writes
    ``student_tflite.json`` (shapes, sizes, ops); returns {kind: path}."""
    module = StudentModule(
        student, history=history, batch_size=batch_size, optimizer=optimizer, clipnorm=clipnorm
    )
    paths = export_module(module, out_dir, quantized=quantized)
    files = {}
    for kind, path in paths.items():
        required = SIGNATURES if kind == "fp32" else ("infer",)
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
    }
    write_json(Path(out_dir) / META_FILE, {**(meta or {}), **info})
    return paths


def convert_run(run_dir, out_dir=None, batch_size=32, optimizer="adam", clipnorm=None,
                quantized=True) -> dict:
    """Converts ``RUN_DIR/student.keras`` (through ``pitune_tf.models.load_run``)."""
    from pitune_tf.models import load_run

    run = load_run(run_dir)
    return export_student(
        run.student,
        out_dir or run_dir,
        history=_history(run),
        batch_size=batch_size,
        optimizer=optimizer,
        clipnorm=clipnorm,
        quantized=quantized,
        meta={"run": str(Path(run_dir).resolve())},
    )


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


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tflite.convert", description=__doc__.split("\n\n")[0]
    )
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
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    paths = convert_run(
        args.run,
        args.out,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        clipnorm=args.clipnorm,
        quantized=not args.no_quantized,
    )
    for kind, path in paths.items():
        print(f"{kind}: {path} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
