"""The Keras backend of the personalization loop: a network tuned in place by
:class:`~pitune_tf.individual.tuning_loss_model.TuningLossModel` steps."""

from __future__ import annotations

import logging
import time

import numpy as np

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf
from pitune_tf.individual.engine import TuningBackend
from pitune_tf.individual.tuning_loss_model import TuningLossModel
from pitune_tf.models.train_parts import train_parts

PREDICT_BATCH = 256


class KerasBackend(TuningBackend):
    """A Keras network (the student, or the teacher for Table 3's FP / PP) behind the
    :class:`~pitune_tf.individual.engine.TuningBackend` interface.

    The shipped weights are kept at construction; :meth:`reset` puts them back and zeros the
    optimizers. One tuner per objective (and one traced step each) is built on first use and
    reused for every user, each with its own Adam.

    Args:
        network: keras.Model. Features dict -> logits ``[batch, n_intents]``.
        n_intents: int.
        learning_rate: float. Adam's rate for fine-tuning (``ce``, ``focal``).
        unlearn_learning_rate: float. Adam's rate for unlearning (PITuning Eq. 11).
        lam, min_log_prob, focal_gamma: the objectives' constants (TuningLossModel).
        train_part: str. What fine-tuning trains (``pitune_tf.models.train_parts``; ``auto``:
            ``all`` until :meth:`set_train_part` sets a user's).
    """

    objectives = ("ce", "focal")

    def __init__(self, network, n_intents, learning_rate=1e-3, unlearn_learning_rate=1e-3,
                 lam=1.0, min_log_prob=None, focal_gamma=2.0, train_part="all"):
        self.network = network
        try:
            self.train_parts = train_parts(network)
        except ValueError:  # no decoder blocks (the teacher of FP / PP): all of it
            self.train_parts = ("all",)
        self.set_train_part("all" if train_part == "auto" else train_part)
        self.n_intents = int(n_intents)
        self.learning_rate = learning_rate
        self.unlearn_learning_rate = unlearn_learning_rate
        self.tuner_options = {"lam": lam, "focal_gamma": focal_gamma}
        if min_log_prob is not None:
            self.tuner_options["min_log_prob"] = min_log_prob
        # a fixed variable order: Keras' get_weights lists trainable variables first, so
        # freezing a layer (PP) would reorder it
        self._variables = list(network.weights)
        self.shipped_weights = self.get_weights()
        self._tuners = {}
        self._steps = {}
        self._infer = tf.function(lambda x: network(x, training=False), reduce_retracing=True)

    def set_train_part(self, part) -> None:
        """What the next fine-tuning steps train (unlearning always trains all, as on the
        phone)."""
        if part not in self.train_parts:
            raise UserInputError(f"train_part {part!r}: the student trains "
                                 f"{', '.join(self.train_parts)}")
        self.train_part = part

    def _tuner(self, mode):
        """The tuner of ``mode`` (and of the current train part) and its traced step, built
        once each."""
        part = None if mode == "unlearn" or self.train_part == "all" else self.train_part
        key = (mode, part)
        if key not in self._tuners:
            tuner = TuningLossModel(self.network, self.n_intents, mode=mode, train_part=part,
                                    **self.tuner_options)
            rate = self.unlearn_learning_rate if mode == "unlearn" else self.learning_rate
            tuner.compile(optimizer=keras.optimizers.Adam(rate))
            self._tuners[key] = tuner
            self._steps[key] = tf.function(tuner.train_batch, reduce_retracing=True)
        return self._tuners[key], self._steps[key]

    def logits(self, windows) -> np.ndarray:
        if len(windows) == 0:
            return np.zeros((0, self.n_intents), np.float32)
        features = windows.features()
        # Tensors, not numpy arrays: a traced function is ~100x slower on numpy inputs.
        return np.concatenate([
            self._infer({k: tf.convert_to_tensor(v[i:i + PREDICT_BATCH])
                         for k, v in features.items()}).numpy()
            for i in range(0, len(windows), PREDICT_BATCH)
        ])

    @staticmethod
    def _tensors(features, target, weight):
        return ({k: tf.convert_to_tensor(v) for k, v in features.items()},
                tf.convert_to_tensor(target), tf.convert_to_tensor(weight))

    def train(self, features, labels, weight, objective="ce") -> float:
        _, step = self._tuner("focal" if objective == "focal" else "finetune")
        return float(step(self._tensors(features, labels, weight))["loss"])

    def unlearn(self, features, original_logits, weight, retain_mask, forget_mask) -> dict:
        tuner, step = self._tuner("unlearn")
        tuner.set_intent_masks(retain_mask, forget_mask)
        terms = step(self._tensors(features, np.asarray(original_logits, np.float32), weight))
        return {k: float(v) for k, v in terms.items()}

    def get_weights(self):
        return keras.backend.batch_get_value(self._variables)

    def set_weights(self, weights) -> None:
        keras.backend.batch_set_value(list(zip(self._variables, weights)))

    def reset(self) -> None:
        self.set_weights(self.shipped_weights)
        for tuner in self._tuners.values():
            if tuner.optimizer.variables:
                tuner.reset_optimizer()

    def describe(self) -> dict:
        return {"parameters": int(self.network.count_params()),
                "trainable_parameters": trainable_count(self.network),
                "infer_ms": latency_ms(self.network)}


def trainable_count(model) -> int:
    """Number of trainable parameters of ``model`` (Table 3's trainable column)."""
    return int(sum(int(np.prod(v.shape)) for v in model.trainable_variables))


def latency_ms(model, repeats=50, inputs=None) -> float:
    """Median single-window inference time (ms) of a traced call of ``model`` on ``inputs``
    (one window's features; default: an ``IntentPredictor``'s ``dummy_inputs``); NaN (with a
    warning) if the model cannot be traced here, so the tables are still written."""
    x = model.dummy_inputs(batch_size=1) if inputs is None else inputs
    infer = tf.function(lambda inputs: model(inputs, training=False), autograph=False)
    try:
        infer(x)
    except Exception as err:  # noqa: BLE001  (timing is a report column, not a result)
        logging.getLogger(__name__).warning("could not time %s: %s", model.name,
                                            str(err).splitlines()[0])
        return float("nan")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        infer(x).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)
