"""Numpy helpers shared by the evaluation code of both methods."""

from __future__ import annotations

import numpy as np


def softmax(logits) -> np.ndarray:
    """Softmax over the last axis of ``logits``, computed in float64 (max-shifted) and
    returned as float32 scores."""
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
