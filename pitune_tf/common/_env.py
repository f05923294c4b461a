"""Process-wide environment for the project: import this before tensorflow.

Every entry point (``pitune_tf``, ``nextitnet``, ``trainers``, ``tflite``, ``bench``,
``scripts``) and the test suite imports this module first. It selects the Keras 2 API
from ``tf-keras`` (a ``TFGPT2Model`` inside a Keras 3 model silently does not train)
and quiets TensorFlow's C++ start-up log.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
