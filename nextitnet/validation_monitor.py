"""Per-epoch validation of a fit: best-epoch model selection and early stopping."""

from __future__ import annotations

import json
from pathlib import Path

from nextitnet.training import save_weights
from pitune_tf.common.atomic import write_json
from pitune_tf.common.fault import fault_point
from pitune_tf.common.keras import keras

CURVE_METRICS = ("hr@5", "mrr@5", "ndcg@5", "hr@20", "accuracy", "f1", "loss")


class ValidationMonitor(keras.callbacks.Callback):
    """Scores the validation data after every epoch (Figure 4), keeps the best epoch's
    weights of ``network`` in ``stage/best.weights.h5`` (model selection on the validation
    split, never the test split) and stops the fit when ``patience`` epochs in a row brought
    no improvement.

    Everything lives in ``stage/state.json``: the scores and the fit's epoch-mean training
    logs per epoch, the best epoch, ``stopped_epoch`` (early stop) and ``finished`` (the fit
    returned). A resumed fit (Keras ``BackupAndRestore``) keeps its curve and its patience
    count, which is a function of the curve; once :attr:`done`, the caller does not fit again
    (a backup saved after the stopping epoch would otherwise train on). The epoch's score goes
    into the fit's ``logs`` as ``val_<metric>`` (what ``FitProgress`` shows); :meth:`summary`
    says which epoch was kept.

    Args:
        network: keras.Model. The network whose weights are kept (not the learner around it).
        evaluate: callable (logs dict) -> dict of metric -> float. Scores the validation data.
        metric: str. The key of ``evaluate``'s result that selects the best epoch.
        stage: str or Path. The stage's folder.
        patience: int. Epochs without improvement before stopping (0: never stop early).
        higher_is_better: bool. False for a loss.
    """

    def __init__(self, network, evaluate, metric, stage, patience=0, higher_is_better=True):
        super().__init__()
        self.network = network
        self.evaluate = evaluate
        self.metric = metric
        self.stage = Path(stage)
        self.patience = int(patience)
        self.higher_is_better = bool(higher_is_better)
        state_file = self.stage / "state.json"
        self.state = json.loads(state_file.read_text()) if state_file.is_file() else {"curve": {}, "best": None}

    @property
    def done(self) -> bool:
        """The fit finished or stopped early (in this process or a previous one)."""
        return bool(self.state.get("finished") or self.state.get("stopped_epoch"))

    def _better(self, value, best) -> bool:
        if best is None:
            return True
        return value > best["value"] if self.higher_is_better else value < best["value"]

    def on_epoch_end(self, epoch, logs=None):
        scores = self.evaluate(logs or {})
        value = scores[self.metric]
        key = str(epoch + 1)
        self.state["curve"][key] = value
        self.state.setdefault("scores", {})[key] = scores
        self.state.setdefault("logs", {})[key] = {k: float(v) for k, v in (logs or {}).items()}
        if self._better(value, self.state["best"]):
            self.state["best"] = {"epoch": epoch + 1, "value": value}
            save_weights(self.network, self.stage / "best.weights.h5")
            fault_point(f"uaf_{self.stage.name}_best:{epoch + 1}")
        since_best = epoch + 1 - self.state["best"]["epoch"]
        if self.patience and since_best >= self.patience:
            self.state["stopped_epoch"] = epoch + 1
            self.model.stop_training = True
        write_json(self.stage / "state.json", self.state)
        fault_point(f"uaf_{self.stage.name}_scored:{epoch + 1}")
        if logs is not None:
            logs[f"val_{self.metric}"] = value  # shown by the FitProgress after this callback

    def summary(self) -> str:
        """``kept epoch 3 of 6 (validation mrr@5 0.2009; stopped early: 3 epochs without
        a better one)``: which epoch the fit keeps, and why it ended."""
        best = self.state.get("best")
        if best is None:
            return "no epoch scored"
        stopped = self.state.get("stopped_epoch")
        ran = len(self.state["curve"])
        end = (f"; stopped early: {stopped - best['epoch']} epochs without a better one" if stopped
               else "")
        return f"kept epoch {best['epoch']} of {ran} (validation {self.metric} {best['value']:.4f}{end})"

    def on_train_end(self, logs=None):
        self.state["finished"] = True
        write_json(self.stage / "state.json", self.state)

    def _epochs(self) -> list[str]:
        return sorted(self.state["curve"], key=int)

    def curve(self) -> list[float]:
        """The selection metric per epoch."""
        return [self.state["curve"][k] for k in self._epochs()]

    def curves(self) -> dict[str, list[float]]:
        """{metric: [value per epoch]} for the metrics of ``CURVE_METRICS`` that were scored."""
        scores = self.state.get("scores", {})
        epochs = sorted(scores, key=int)
        keys = [k for k in CURVE_METRICS if epochs and k in scores[epochs[0]]]
        return {k: [scores[e][k] for e in epochs] for k in keys}

    def train_logs(self) -> dict[str, list[float]]:
        """{name: [epoch-mean training value per epoch]} of every epoch, resumed ones included."""
        logs = self.state.get("logs", {})
        epochs = sorted(logs, key=int)
        names = list(logs[epochs[0]]) if epochs else []
        return {n: [logs[e].get(n) for e in epochs] for n in names}
