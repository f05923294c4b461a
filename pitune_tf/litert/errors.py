"""The LiteRT runtime shim's errors: each a :class:`UserInputError` (one ``error:`` line)."""

from __future__ import annotations

from pitune_tf.common.errors import UserInputError


class SignatureError(UserInputError):
    """A model lacks a signature, or a signature lacks or mis-shapes an input or output."""


class InputSpecError(UserInputError):
    """An input given to a signature has the wrong name, shape or dtype."""


class WeightsFileError(UserInputError):
    """A weights file is missing, truncated, corrupt or made for another model."""
