"""The best-epoch Keras callback: :class:`~pitune_tf.common.best_epoch_rule.BestEpochRule`
over a ``fit``, the best epoch's weights kept and the state persisted, so that a resumed fit
keeps and stops at the epochs an uninterrupted one would."""

from __future__ import annotations

import json
from pathlib import Path

from pitune_tf.common.atomic import write_json
from pitune_tf.common.fault import fault_point
from pitune_tf.common.keras import keras


class BestEpochCallback(keras.callbacks.Callback):
    """Keeps the weights of a network at its best epoch by a validation value and stops the
    fit early (:class:`~pitune_tf.common.best_epoch_rule.BestEpochRule`).

    After each epoch N: :meth:`score` gives the epoch's value (None: the epoch is not scored,
    nothing changes); on an improvement ``weights.save(N)`` writes the weights, then the fault
    point ``<fault_name>_best:N``; then :attr:`state` (the rule's state and what a subclass
    records in it) is written atomically to ``state_path``, then ``<fault_name>_scored:N``;
    last the previous best epoch's weights are discarded. In this order the state on disk
    always names weights on disk. A callback made on an existing ``state_path`` (a resumed
    fit) continues from it. :meth:`restore` puts the best weights back.

    Args:
        weights: the weight store of the network whose best weights are kept:
            ``save(epoch)``, ``load(epoch)``, ``discard(epoch)``
            (:class:`~pitune_tf.common.weight_stores.CheckpointWeights`,
            :class:`~pitune_tf.common.weight_stores.WeightsFile`).
        rule: BestEpochRule. Its patience and direction; its state is read from
            ``state_path`` when that file exists.
        state_path: Path. The JSON state file.
        fault_name: str. Names the fault points (``teacher``, ``uaf_soft``).
        monitor: str or None. The log scored by the default :meth:`score`, e.g.
            ``"val_intent_loss"``.
    """

    def __init__(self, weights, rule, state_path, fault_name, monitor=None):
        super().__init__()
        self.weights = weights
        self.rule = rule
        self.state_path = Path(state_path)
        self.fault_name = fault_name
        self.monitor = monitor
        self.state = {}
        if self.state_path.is_file():
            self.state = json.loads(self.state_path.read_text())
            self.rule.load_state(self.state)
        self.state.update(self.rule.state)

    @property
    def stopped(self) -> bool:
        """Whether the fit stopped early (in this process or a previous one)."""
        return self.rule.stopped

    def score(self, epoch, logs):
        """The value of epoch ``epoch`` (1-based): ``logs[monitor]`` as a float, None when
        absent."""
        value = (logs or {}).get(self.monitor)
        return None if value is None else float(value)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        value = self.score(done, logs)
        if value is None:
            return
        previous = self.rule.best_epoch
        improved, stop = self.rule.update(done, value)
        if improved:
            self.weights.save(done)
            fault_point(f"{self.fault_name}_best:{done}")
        if stop:
            self.model.stop_training = True
        self.state.update(self.rule.state)
        write_json(self.state_path, self.state)
        fault_point(f"{self.fault_name}_scored:{done}")
        if improved and previous:  # the older best is no longer needed
            self.weights.discard(previous)

    def restore(self) -> int:
        """Loads the best epoch's weights into the network; returns that epoch (0: none
        kept, the weights stay those of the last epoch)."""
        if self.rule.best_epoch:
            self.weights.load(self.rule.best_epoch)
        return self.rule.best_epoch
