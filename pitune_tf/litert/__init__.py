"""Running the phone's model on this machine: the LiteRT runtime shim (``Runtime``: the
``.tflite`` signatures with their inputs checked, the weights-file format) and its errors.

A leaf both stages may use (the individual stage's LiteRT backend, predictions from a
``.tflite``); ``tflite.runtime`` is its public name beside the converter.
"""
