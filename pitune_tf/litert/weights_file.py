"""The personalized-weights file of a student on the phone: a header (magic ``PTWT``, format
version, number of float32 weights, CRC-32 of the data), then the weights as little-endian
float32. A truncated, corrupt or foreign file is refused with :class:`WeightsFileError`."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from pitune_tf.common.atomic import atomic_path
from pitune_tf.common.errors import not_found
from pitune_tf.common.types import PathLike
from pitune_tf.litert.errors import WeightsFileError

_MAGIC = b"PTWT"
_VERSION = 1
_HEADER = struct.Struct("<4sIQI")  # magic, version, number of float32 weights, crc32 of the data


def write_weights_file(path: PathLike, weights: np.ndarray) -> None:
    """Writes ``weights`` (float32, flat) to ``path`` atomically."""
    data = np.asarray(weights).astype("<f4").tobytes()
    header = _HEADER.pack(_MAGIC, _VERSION, np.asarray(weights).size, zlib.crc32(data))
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(header + data)


def read_weights_file(path: PathLike, num_weights: int) -> np.ndarray:
    """Reads and verifies a weights file; :class:`WeightsFileError` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(not_found("weights file", path))
    blob = path.read_bytes()
    if len(blob) < _HEADER.size:
        raise WeightsFileError(f"{path}: truncated weights file ({len(blob)} bytes)")
    magic, version, count, crc = _HEADER.unpack_from(blob)
    if magic != _MAGIC:
        raise WeightsFileError(f"{path}: not a student weights file (bad magic {magic!r})")
    if version != _VERSION:
        raise WeightsFileError(f"{path}: weights file version {version}, expected {_VERSION}")
    if count != num_weights:
        raise WeightsFileError(
            f"{path}: holds {count} weights but the model has {num_weights} (another model?)"
        )
    data = blob[_HEADER.size :]
    if len(data) != 4 * count:
        raise WeightsFileError(
            f"{path}: truncated or padded weights file ({len(data)} data bytes, "
            f"expected {4 * count})"
        )
    if zlib.crc32(data) != crc:
        raise WeightsFileError(f"{path}: corrupt weights file (checksum mismatch)")
    weights = np.frombuffer(data, "<f4").astype(np.float32)
    if not np.all(np.isfinite(weights)):
        raise WeightsFileError(f"{path}: weights contain NaN or infinite values")
    return weights
