"""Predictions from a finished run: each user's next intents after the newest event.

- ``next_intent_predictor``: ``NextIntentPredictor``, ``format_predictions``.
- ``command_line``: ``python -m pitune_tf.predict`` (parsing, then one call of the predictor).
"""

from typing import TYPE_CHECKING

from pitune_tf.common.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers see; at run time _EXPORTS, on first use
    from pitune_tf.prediction.next_intent_predictor import NextIntentPredictor, format_predictions

# The predictor loads TensorFlow: imported on first use, so that the command line's --help
# (``pitune_tf.prediction.command_line``) starts fast.
_EXPORTS = {
    "NextIntentPredictor": "pitune_tf.prediction.next_intent_predictor",
    "format_predictions": "pitune_tf.prediction.next_intent_predictor",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["NextIntentPredictor", "format_predictions"]
