"""Errors of the TFLite export and runtime; all are user-facing (:class:`UserInputError`)."""

from __future__ import annotations

import re

from pitune_tf.common.errors import UserInputError
from pitune_tf.litert.errors import (  # noqa: F401  (re-exported: the runtime shim's errors)
    InputSpecError,
    SignatureError,
    WeightsFileError,
)


class UnsupportedOpError(UserInputError):
    """The model needs an op outside TFLite's builtin set (a Flex / SELECT_TF op).

    Args:
        ops: list of str. The offending TensorFlow op names (e.g. ``"FusedBatchNormGradV3"``).
        signature: str or None. The signature that needs them, when known.
        detail: str. Extra text (where the op comes from, how to avoid it).
    """

    def __init__(self, ops, signature=None, detail=""):
        self.ops = sorted(set(ops))
        self.signature = signature
        where = f" in signature {signature!r}" if signature else ""
        names = ", ".join(self.ops) if self.ops else "(unnamed)"
        message = (
            f"the model needs ops outside TFLite's builtin set{where}: {names}. Phones running "
            "stock LiteRT (and every interpreter here) cannot run Flex/SELECT_TF ops"
        )
        hint = ("; every model trained with the project's options converts, so this is a bug of "
                "pitune-tf when the model is one of them: please report it with the run's "
                "config.json. A custom layer must be built from builtin ops (tests/test_tflite.py "
                "shows how to check one)")
        super().__init__(message + (f" ({detail})" if detail else "") + hint)


class ConversionError(UserInputError):
    """The TFLite converter failed for a reason other than an op outside the builtin set:
    its first error, as one line (the whole log: ``--verbose``)."""

    def __init__(self, error, signature=None):
        text = str(error)
        found = re.findall(r"error: (.+)", text)
        first = next((line.strip() for line in found if line.strip()), None)
        first = first or next((line.strip() for line in text.splitlines() if line.strip()),
                              type(error).__name__)
        where = f" (signature {signature!r})" if signature else ""
        super().__init__(f"the TFLite converter failed{where}: {first[:300]} (--verbose shows "
                         "the converter's log)")
