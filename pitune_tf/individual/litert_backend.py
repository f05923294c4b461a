"""The LiteRT backend of the personalization loop: the student's ``.tflite`` signatures only
(``infer``, ``train``, ``unlearn``, ``get_weights``, ``set_weights``, ``reset``), exactly what
a phone runs."""

from __future__ import annotations

import time

import numpy as np

from pitune_tf.common.errors import UserInputError
from pitune_tf.data.windows import FEATURE_KEYS
from pitune_tf.individual.engine import TuningBackend


class LiteRTBackend(TuningBackend):
    """A :class:`pitune_tf.litert.runtime.Runtime` behind the
    :class:`~pitune_tf.individual.engine.TuningBackend` interface.

    The training batch B is fixed in the model's ``train`` / ``unlearn`` signatures
    (:attr:`batch_size`); the learning rates and lambda are passed with every step.

    Args:
        runtime: tflite.runtime.Runtime. The training model (``student.tflite``).
        n_intents: int. The run's number of intent ids (checked against the model's).
        learning_rate: float. Fine-tuning rate.
        unlearn_learning_rate: float. Unlearning rate (PITuning Eq. 11).
        lam: float. lambda of PITuning Eq. 11.
    """

    objectives = ("ce",)

    def __init__(self, runtime, n_intents, learning_rate=1e-3, unlearn_learning_rate=1e-3,
                 lam=1.0, train_part="all"):
        if runtime.n_intents != int(n_intents):
            raise UserInputError(
                f"the model outputs {runtime.n_intents} intents but the run has {n_intents}: "
                "was it converted from this run?"
            )
        if runtime.batch_size is None:
            raise UserInputError(f"{runtime.path}: an inference-only model cannot be tuned "
                                 "(use student.tflite)")
        self.runtime = runtime
        self.train_parts = runtime.train_parts
        self.set_train_part("all" if train_part == "auto" else train_part)
        self.n_intents = int(n_intents)
        self.batch_size = runtime.batch_size
        self.learning_rate = learning_rate
        self.unlearn_learning_rate = unlearn_learning_rate
        self.lam = lam

    def set_train_part(self, part) -> None:
        """What the next fine-tuning steps train: the ``train_<part>`` signature."""
        if part not in self.train_parts:
            raise UserInputError(f"{self.runtime.path}: no train part {part!r} (the model "
                                 f"trains {', '.join(self.runtime.train_parts)}; convert it again "
                                 "with this version for the train_<part> signatures)")
        self.train_part = part

    def logits(self, windows) -> np.ndarray:
        if len(windows) == 0:
            return np.zeros((0, self.n_intents), np.float32)
        return self.runtime.infer(windows.features())["logits"]

    def train(self, features, labels, weight, objective="ce") -> float:
        if objective != "ce":
            raise UserInputError(f"the on-device model trains cross-entropy only, not {objective!r}")
        return self.runtime.train(features, labels, sample_weight=weight,
                                  learning_rate=self.learning_rate, part=self.train_part)

    def unlearn(self, features, original_logits, weight, retain_mask, forget_mask) -> dict:
        return self.runtime.unlearn(features, original_logits, retain_mask, forget_mask,
                                    lam=self.lam, sample_weight=weight,
                                    learning_rate=self.unlearn_learning_rate)

    def get_weights(self):
        return self.runtime.get_weights()

    def set_weights(self, weights) -> None:
        self.runtime.set_weights(weights)

    def reset(self) -> None:
        self.runtime.reset()

    def describe(self) -> dict:
        return {"parameters": self.runtime.num_weights,
                "trainable_parameters": self.runtime.num_weights,
                "infer_ms": single_window_ms(self.runtime)}


def single_window_ms(runtime, repeats=50) -> float:
    """Median ``infer`` latency of one window (ms)."""
    x = {k: np.ones((1, runtime.history), np.float32 if k == "mask" else np.int32)
         for k in FEATURE_KEYS}
    runtime.infer(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runtime.infer(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)
