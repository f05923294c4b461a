"""Ship the student to phones.

- ``convert``: the command line (``python -m tflite.convert``); ``run_export``: a
  population run converted (``convert_run``), the models and the bundle as one set;
- ``export``: a SavedModel to a builtin-ops-only ``.tflite``, the files of one export;
  ``student_module``: the student as a ``tf.Module`` with the phone's signatures;
  ``qat``: quantization-aware fine-tuning and ``student_qat_int8.tflite``;
- ``phone_bundle``: labels, vocabularies and preprocessing beside the models;
  ``metadata``: those files embedded in a ``.tflite``; ``ops_check``: builtin ops only;
  ``errors``: what a conversion or the runtime reports;
- ``runtime``: the LiteRT runtime's public name (:mod:`pitune_tf.litert.runtime`).
"""

from pitune_tf.common import environment  # noqa: F401  (Keras 2 before tensorflow)
