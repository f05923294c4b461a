"""Ship the student to phones: TFLite conversion, runtime shim and on-device simulator."""

from pitune_tf import _env  # noqa: F401  (Keras 2 before tensorflow)
