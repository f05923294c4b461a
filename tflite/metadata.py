"""Named metadata entries inside a ``.tflite`` flatbuffer (the schema's ``Model.metadata``
field: a name and the index of a buffer holding the bytes).

The phone bundle's ``labels.txt``, ``preprocessing.json`` and ``vocab.json`` are embedded
this way, so a model file carries what an app needs to build its windows and name its
outputs. Interpreters ignore metadata they do not know. These are plain named entries, not
the TFLite Support library's ``TFLITE_METADATA`` (its schema and writer are in
``tflite-support``, which does not install with this stack); on a phone, read them with the
FlatBuffers classes generated from TFLite's ``schema.fbs``, or ship the files beside the
model.
"""

from __future__ import annotations

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

RESERVED_NAMES = ("min_runtime_version", "CONVERSION_METADATA", "TFLITE_METADATA")


def embed_metadata(model_content: bytes, entries: dict) -> bytes:
    """``model_content`` with each ``entries`` item (name -> bytes or str) added as a named
    metadata buffer; an entry of the same name is replaced.

    Args:
        model_content: bytes. A ``.tflite`` flatbuffer.
        entries: dict of str -> bytes or str (str is UTF-8 encoded).

    Returns:
        bytes. The new flatbuffer (the same model: operators, signatures and buffers kept).
    """
    clash = [name for name in entries if name in RESERVED_NAMES]
    if clash:
        raise ValueError(f"metadata names reserved by TFLite: {clash}")
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
    model.metadata = [m for m in (model.metadata or []) if _name(m) not in entries]
    for name, value in entries.items():
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data, np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(model_content: bytes) -> dict[str, bytes]:
    """Every named metadata entry of a ``.tflite`` flatbuffer: name -> bytes."""
    model = schema.Model.GetRootAsModel(bytearray(model_content), 0)
    out = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        data = buffer.DataAsNumpy() if buffer.DataLength() else np.zeros(0, np.uint8)
        out[entry.Name().decode("utf-8")] = bytes(np.asarray(data, np.uint8))
    return out


def _name(entry) -> str:
    name = entry.name
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)
