"""The LiteRT runtime shim under its public name beside the converter; the implementation is
:mod:`pitune_tf.litert.runtime` (a leaf the stages use too)."""

from pitune_tf.litert.runtime import (  # noqa: F401  (re-exported)
    TRAINING_SIGNATURES,
    Runtime,
    available_backends,
)
from pitune_tf.litert.weights_file import read_weights_file  # noqa: F401  (re-exported)
