"""The best-epoch rule: model selection on a validation value with early stopping, the one
rule of the population phases, the UAF fits and the per-user fine-tuning (pure Python)."""

from __future__ import annotations


class BestEpochRule:
    """Keeps the best epoch by a validation value and says when a fit stops early.

    An epoch improves when it is the first one scored or its value is strictly better than
    the best one's (lower; higher with ``higher_is_better``). An epoch without improvement
    stops the fit once ``epoch - best epoch >= patience``; ``patience`` 0 never stops.
    The state is plain JSON (:attr:`state`), so a resumed fit continues where it stopped.

    Args:
        patience: int. Epochs after the best one without improvement before stopping
            (0: never stop).
        higher_is_better: bool. True for a score (MRR@5), False for a loss.
        state: dict or None. A :attr:`state` to continue from (a resumed fit).

    Example:
        >>> rule = BestEpochRule(patience=2)
        >>> [rule.update(epoch, value) for epoch, value in [(1, 3.0), (2, 2.0), (3, 2.5), (4, 2.6)]]
        [(True, False), (True, False), (False, False), (False, True)]
        >>> rule.state
        {'best': {'epoch': 2, 'value': 2.0}, 'stopped_epoch': 4}
    """

    def __init__(self, patience=0, higher_is_better=False, state=None):
        self.patience = int(patience)
        self.higher_is_better = bool(higher_is_better)
        self.best = None  # {"epoch": int, "value": float} of the best epoch so far
        self.stopped_epoch = None  # the epoch that stopped the fit
        if state is not None:
            self.load_state(state)

    @property
    def state(self) -> dict:
        """``{"best": {"epoch": e, "value": v} or None, "stopped_epoch": e or None}``."""
        return {"best": None if self.best is None else dict(self.best),
                "stopped_epoch": self.stopped_epoch}

    def load_state(self, state) -> None:
        """Continues from ``state`` (a :attr:`state`, e.g. read back from JSON)."""
        best = state.get("best")
        self.best = None if best is None else {"epoch": int(best["epoch"]), "value": best["value"]}
        stopped = state.get("stopped_epoch")
        self.stopped_epoch = None if stopped is None else int(stopped)

    @property
    def best_epoch(self) -> int:
        """The best epoch so far (0: none scored)."""
        return 0 if self.best is None else self.best["epoch"]

    @property
    def best_value(self):
        """The best epoch's value (None: none scored)."""
        return None if self.best is None else self.best["value"]

    @property
    def stopped(self) -> bool:
        """Whether an epoch stopped the fit."""
        return self.stopped_epoch is not None

    def better(self, value) -> bool:
        """Whether ``value`` improves on the best epoch's."""
        if self.best is None:
            return True
        return value > self.best["value"] if self.higher_is_better else value < self.best["value"]

    def update(self, epoch, value) -> tuple[bool, bool]:
        """Scores ``epoch`` with ``value``; returns ``(improved, stop)``: whether it is the new
        best epoch, and whether the fit stops after it."""
        if self.better(value):
            self.best = {"epoch": int(epoch), "value": value}
            return True, False
        if self.patience and epoch - self.best["epoch"] >= self.patience:
            self.stopped_epoch = int(epoch)
            return False, True
        return False, False
