"""Builtin-ops-only checks: read a ``.tflite`` flatbuffer's op list, and turn the converter's
"needs Flex ops" failure into an :class:`UnsupportedOpError` that names each op and the layer
it comes from."""

from __future__ import annotations

import re

from tensorflow.lite.python import schema_py_generated as schema

from tflite.errors import UnsupportedOpError

# 'tf.FusedBatchNormGradV3' op is neither a custom op nor a flex op
_NEITHER = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
# loc(callsite(fused["FusedBatchNormV3:", "model/layer_normalization/FusedBatchNormV3@__inference..
_LOC = re.compile(r'fused\["(\w+):", "([^"@]+)@[^"]*"\]')
# the converter's summary: "\ttf.Erfc(tensor<...>) -> ..." after "Some ops are not supported"
_SUMMARY = re.compile(r"^\s*tf\.(\w+)\(", re.MULTILINE)
# 'train': (signature named in "failed while converting: 'train'")
_SIGNATURE = re.compile(r"failed while converting: '(\w+)'")


def model_ops(model_content: bytes) -> list[str]:
    """Names of the operator codes a ``.tflite`` flatbuffer uses, sorted.

    Builtin ops by their builtin name (``"FULLY_CONNECTED"``), custom ops by their custom code
    (Flex ops appear as ``"FlexErfc"`` and the like).
    """
    builtin_names = {
        value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
    }
    model = schema.Model.GetRootAsModel(bytearray(model_content), 0)
    names = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            names.add((code.CustomCode() or b"").decode("utf-8", "replace") or "CUSTOM")
        else:
            names.add(builtin_names.get(builtin, f"BUILTIN_{builtin}"))
    return sorted(names)


def check_builtin_only(model_content: bytes, signature=None) -> list[str]:
    """Raises :class:`UnsupportedOpError` if the flatbuffer uses any non-builtin (Flex or
    custom) op; returns the op names otherwise."""
    ops = model_ops(model_content)
    builtin_names = _builtin_names()
    custom = [op for op in ops if op not in builtin_names]
    if custom:
        tf_names = [op[len("Flex"):] if op.startswith("Flex") else op for op in custom]
        raise UnsupportedOpError(tf_names, signature=signature)
    return ops


def unsupported_op_error(error: Exception, signature=None) -> UnsupportedOpError | None:
    """The :class:`UnsupportedOpError` hidden in a converter failure, or None when the failure
    is about something else.

    Names each op and, where the converter's locations say, the layer path it comes from
    (``FusedBatchNormGradV3 (gradient_tape/model/layer_normalization)``).
    """
    text = str(error)
    ops = set(_NEITHER.findall(text))
    if "Some ops are not supported by the native TFLite runtime" in text:
        ops |= set(_SUMMARY.findall(text))
    if not ops:
        return None
    origins = {}
    for op, path in _LOC.findall(text):
        if op in ops:
            layer = path.rsplit("/", 1)[0] if "/" in path else path
            origins.setdefault(op, set()).add(layer)
    detail = "; ".join(
        f"{op} from {', '.join(sorted(origins[op]))}" for op in sorted(origins)
    )
    if signature is None:
        found = _SIGNATURE.findall(text)
        signature = found[0] if found else None
    return UnsupportedOpError(sorted(ops), signature=signature, detail=detail)


def _builtin_names() -> set[str]:
    return {
        name
        for name in vars(schema.BuiltinOperator)
        if not name.startswith("_") and name != "CUSTOM"
    }
