"""Per-epoch validation of a UAF fit: best-epoch model selection and early stopping."""

from __future__ import annotations

from pathlib import Path

from pitune_tf.common.atomic import write_json
from pitune_tf.common.best_epoch_callback import BestEpochCallback
from pitune_tf.common.best_epoch_rule import BestEpochRule
from pitune_tf.common.weight_stores import WeightsFile

CURVE_METRICS = ("hr@5", "mrr@5", "ndcg@5", "hr@20", "accuracy", "f1", "loss")


class ValidationMonitor(BestEpochCallback):
    """Scores the validation data after every epoch (Figure 4), keeps the best epoch's
    weights of ``network`` in ``stage/best.weights.h5`` (model selection on the validation
    split, never the test split) and stops the fit when ``patience`` epochs in a row brought
    no improvement (:class:`~pitune_tf.common.best_epoch_callback.BestEpochCallback`, fault
    points ``uaf_<stage>_best:N`` and ``uaf_<stage>_scored:N``).

    Everything lives in ``stage/state.json``: the scores per epoch, the best epoch,
    ``stopped_epoch`` (early stop) and ``finished`` (:meth:`finish`: the fit returned). A
    resumed fit (:func:`nextitnet.stage_fit.fit_stage`) keeps its curve and its patience
    count, which is a function of the curve; once :attr:`done`, the caller does not fit again
    (a checkpoint saved after the stopping epoch would otherwise train on). The epoch's score goes
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
        self.network = network
        self.evaluate = evaluate
        self.metric = metric
        self.stage = Path(stage)
        self.patience = int(patience)
        self.higher_is_better = bool(higher_is_better)
        super().__init__(WeightsFile(network, self.stage / "best.weights.h5"),
                         BestEpochRule(self.patience, self.higher_is_better),
                         self.stage / "state.json", f"uaf_{self.stage.name}")
        self.state.setdefault("curve", {})

    @property
    def done(self) -> bool:
        """The fit finished or stopped early (in this process or a previous one)."""
        return bool(self.state.get("finished") or self.stopped)

    def score(self, epoch, logs):
        """Scores the validation data; records the scores."""
        scores = self.evaluate(logs or {})
        value = scores[self.metric]
        key = str(epoch)
        self.state["curve"][key] = value
        self.state.setdefault("scores", {})[key] = scores
        if logs is not None:
            logs[f"val_{self.metric}"] = value  # shown by the FitProgress after this callback
        return value

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

    def finish(self) -> None:
        """Records that the fit returned."""
        self.state["finished"] = True
        write_json(self.state_path, self.state)

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
