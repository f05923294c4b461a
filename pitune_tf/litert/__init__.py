"""Running the phone's model on this machine: the LiteRT runtime shim (``runtime.Runtime``:
the ``.tflite`` signatures with their inputs checked), the personalized-weights file format
(``weights_file``) and their errors (``errors``).

A leaf both stages may use (the individual stage's LiteRT backend, predictions from a
``.tflite``); ``tflite.runtime`` is its public name beside the converter.
"""
