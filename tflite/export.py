"""The student as TFLite files: a SavedModel converted to a builtin-ops-only flatbuffer (every
op outside TFLite's builtin set named in one error), and the files of one export
(``student.tflite`` with every signature of :class:`tflite.student_module.StudentModule`,
the int8 and fp16 inference models, ``student_tflite.json``), each checked to load through
:class:`tflite.runtime.Runtime`."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path

from pitune_tf.common.atomic import atomic_path, write_json
from pitune_tf.common.environment import is_verbose
from pitune_tf.common.keras import tf
from pitune_tf.litert.runtime import Runtime
from pitune_tf.models.train_parts import signature_flops
from tflite.errors import ConversionError
from tflite.metadata import embed_metadata
from tflite.ops_check import check_builtin_only, model_ops, unsupported_op_error
from tflite.student_module import StudentModule

MODEL_FILES = {
    "fp32": "student.tflite",
    "int8": "student_int8.tflite",
    "fp16": "student_fp16.tflite",
    "qat_int8": "student_qat_int8.tflite",
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


def inference_signatures(module) -> tuple:
    """The signatures of the int8 and fp16 files, whose weights are constants: ``infer``,
    and ``infer_step`` for a streaming student."""
    return tuple(n for n in ("infer", "infer_step") if n in module.signature_names)


def export_module(module, out_dir, quantized=True, metadata=None, progress=None) -> dict:
    """Writes ``student.tflite`` (every signature) and, when ``quantized``, the int8 and fp16
    inference models (:func:`inference_signatures`) into ``out_dir``, each with the named ``metadata`` entries (dict name ->
    bytes or str, :func:`tflite.metadata.embed_metadata`) when given; returns {kind: path}.
    ``module``: a :class:`tflite.student_module.StudentModule`; ``progress``: an optional
    :class:`pitune_tf.common.epoch_log.StepProgress` told of each file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    with tempfile.TemporaryDirectory(prefix="pitune_tflite_") as tmp:
        saved = Path(tmp) / "saved_model"
        tf.saved_model.save(module, str(saved), signatures=module.concrete_signatures())
        builds = {"fp32": (module.signature_names, True, None)}
        if quantized:
            builds["int8"] = (inference_signatures(module), False, "int8")
            builds["fp16"] = (inference_signatures(module), False, "fp16")
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
    module = StudentModule(
        student, history=history, batch_size=batch_size, optimizer=optimizer, clipnorm=clipnorm
    )
    paths = export_module(module, out_dir, quantized=quantized, metadata=metadata,
                          progress=progress)
    files = {}
    for kind, path in paths.items():
        required = module.signature_names if kind == "fp32" else inference_signatures(module)
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
        "state_size": module.state_size,  # infer_step's state (None: no infer_step)
        "optimizer": optimizer,
        "clipnorm": clipnorm,
        "files": files,
        # matmul FLOPs of one call (infer: a window; infer_step: an event; train*: a batch)
        "signature_flops": signature_flops(student, module.history, module.batch_size)
        if hasattr(getattr(student, "backbone", None), "blocks") else {},
        # what each training signature updates (train: all; train_<part>: that part)
        "train_signatures": {name: {"trainable_weights": module.trainable_weights_of(name)}
                             for name in module.signature_names if name.startswith("train")},
        "metadata": sorted(metadata or ()),
    }
    write_json(Path(out_dir) / META_FILE, {**(meta or {}), **info})
    return paths
