"""Per-epoch validation of a fine-tuning fit, with best-epoch model selection."""

from __future__ import annotations

import json
from pathlib import Path

from nextitnet.evaluation import predict
from nextitnet.training import save_weights
from pitune_tf.common.atomic import write_json
from pitune_tf.common.keras import keras

CURVE_METRICS = ("hr@5", "mrr@5", "hr@20", "accuracy", "f1")


class ValidationMonitor(keras.callbacks.Callback):
    """Scores the validation split after every epoch (Figure 4) and keeps the best epoch's
    weights in ``stage/best.weights.h5`` (model selection on the validation split, never
    the test split). Its state lives in ``stage/state.json``, so a resumed fit keeps its
    curve.

    Args:
        model: UAFModel. The network scored (not the learner around it).
        split: dict with "source" [n, L] and "target" [n]. The validation split.
        score_fn: callable (logits [n, C], targets [n]) -> dict of metric -> float.
        metric: str. The key of ``score_fn``'s result that selects the best epoch.
        stage: str or Path. The mode's folder.
    """

    def __init__(self, model, split, score_fn, metric, stage):
        super().__init__()
        self.uaf = model
        self.split = split
        self.score_fn = score_fn
        self.metric = metric
        self.stage = Path(stage)
        state_file = self.stage / "state.json"
        self.state = json.loads(state_file.read_text()) if state_file.is_file() else {"curve": {}, "best": None}

    def on_epoch_end(self, epoch, logs=None):
        logits, _ = predict(self.uaf, self.split["source"])
        scores = self.score_fn(logits, self.split["target"])
        value = scores[self.metric]
        self.state["curve"][str(epoch + 1)] = value
        self.state.setdefault("scores", {})[str(epoch + 1)] = scores
        best = self.state["best"]
        if best is None or value > best["value"]:
            self.state["best"] = {"epoch": epoch + 1, "value": value}
            save_weights(self.uaf, self.stage / "best.weights.h5")
        write_json(self.stage / "state.json", self.state)
        print(f"  epoch {epoch + 1}: validation {self.metric} = {value:.4f}")

    def curve(self) -> list[float]:
        """The selection metric per epoch."""
        return [self.state["curve"][k] for k in sorted(self.state["curve"], key=int)]

    def curves(self) -> dict[str, list[float]]:
        """{metric: [value per epoch]} for the metrics of ``CURVE_METRICS`` that were scored."""
        scores = self.state.get("scores", {})
        epochs = sorted(scores, key=int)
        keys = [k for k in CURVE_METRICS if epochs and k in scores[epochs[0]]]
        return {k: [scores[e][k] for e in epochs] for k in keys}
