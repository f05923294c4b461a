"""Predictions from a finished run: each user's next intents after the newest event."""

from pitune_tf.prediction.next_intent_predictor import (
    NextIntentPredictor,
    format_predictions,
)

__all__ = ["NextIntentPredictor", "format_predictions"]
