"""Ship the student to phones: TFLite conversion, runtime shim and on-device simulator."""

from pitune_tf.common import _env  # noqa: F401  (Keras 2 before tensorflow)
