"""The student as a ``tf.Module`` whose signed methods a phone calls: infer, train, unlearn,
get_weights, set_weights, reset."""

from __future__ import annotations

import inspect

import numpy as np

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import tf
from pitune_tf.data.windows import FEATURE_KEYS, STREAM_KEYS
from pitune_tf.individual.unlearning import unlearning_terms
from pitune_tf.losses import sparse_cross_entropy
from pitune_tf.models.train_parts import ALL, part_variables, train_parts

# Every model has these; a student with decoder blocks also has ``train_<part>`` for each of
# its parts but ``all`` (``train_head``, ``train_top1``, ...), and a streaming student
# (``student_span``) ``infer_step`` (StudentModule.signature_names).
SIGNATURES = ("infer", "train", "unlearn", "get_weights", "set_weights", "reset")
OPTIMIZERS = ("adam", "sgd")


class StudentModule(tf.Module):
    """The distilled student wrapped for on-device inference and training (TFLite).

    The shape of the TF on-device training guide (a ``tf.Module`` with ``@tf.function``
    signatures returning dicts, converted with resource variables), built from TFLite builtin
    ops only so that stock LiteRT runs it: fixed batch size in the training signatures, the
    project's hand-written cross-entropy and unlearning loss (no
    ``SparseSoftmaxCrossEntropyWithLogits``), the optimizer written out on ``tf.Variable``s
    with ``assign_sub`` (Keras optimizers emit ops LiteRT lacks), and weights moved through
    signatures as one flat vector instead of raw Save/Restore ops.

    The module does not re-implement the network or the losses: ``infer``/``train``/``unlearn``
    call the student Keras model itself (``training=False``: dropout off, so a step is
    deterministic and needs no random ops) and the trainers' loss functions.

    Signatures (float32 unless noted; b any batch, B = ``batch_size``, L = ``history``,
    N = ``n_intents``, P = ``num_weights``):

    - ``infer(location, weekday, slot, event: int32 [b, L], mask [b, L])``
      -> ``{"logits": [b, N], "probabilities": [b, N]}``.
    - ``train(<features> [B, L], label: int32 [B], sample_weight [B], learning_rate [])``
      -> ``{"loss": []}``: one optimizer step of cross-entropy (PITuning 3.3.2); rows with
      ``sample_weight`` 0 are padding (a partial batch is padded, not dropped).
    - ``train_<part>(...)``, as ``train`` for each part of
      :func:`pitune_tf.models.train_parts.train_parts` but ``all`` (``head``, ``top1``, ...):
      one step over the part's variables only; the gradient of the rest is never computed,
      so the backward pass stops below the part. The parts share ``train``'s optimizer state.
    - ``unlearn(<features> [B, L], original_logits [B, N], retain_mask [N], forget_mask [N],
      lam [], sample_weight [B], learning_rate [])`` -> ``{"loss": [], ...its terms}``: one
      optimizer step of the unlearning loss (PITuning Eq. 11; ``lam`` is lambda, R and F the
      retain and forget masks, ``original_logits`` the shipped model's outputs M_o).
    - ``infer_step(location, weekday, slot, event: int32 [b], state [b, S])`` -> ``{"logits",
      "probabilities", "state": [b, S]}`` (a streaming student only,
      :attr:`IntentPredictor.streaming`): the prediction after one new event, from the state
      the previous events left (zeros before the first), at the cost of one position; equal
      to ``infer`` on the window of the newest L events within float round-off.
    - ``get_weights()`` -> ``{"weights": [P]}``; ``set_weights(weights [P])`` ->
      ``{"num_weights": int32 []}`` (also zeroes the optimizer state);
      ``reset()`` -> ``{"num_weights": int32 []}``: back to the shipped weights, optimizer
      state zeroed.

    ``train`` and ``unlearn`` each keep their own optimizer state, like the two optimizers a
    Keras trainer compiles for its two phases.

    Args:
        student: keras.Model. Features dict (keys ``location, weekday, slot, event`` int32
            [batch, L], ``mask`` float32 [batch, L]) -> logits [batch, n_intents].
        history: int. L, the window length.
        batch_size: int. B, the fixed batch of ``train`` and ``unlearn``.
        optimizer: str. ``"adam"`` (Keras ``Adam`` math) or ``"sgd"`` (plain SGD).
        beta_1: float. Adam's first-moment decay (Keras default 0.9).
        beta_2: float. Adam's second-moment decay (Keras default 0.999).
        epsilon: float. Adam's epsilon (Keras default 1e-7).
        clipnorm: float or None. Clip each gradient to this norm, as Keras' ``clipnorm``.
        min_log_prob: float or None. Floor on log q in PITuning Eq. 11's forgotten term (None: the
            default of ``pitune_tf.individual.unlearning``).
        loss_fn: callable ``(labels, logits, sample_weight) -> loss`` or None for
            ``pitune_tf.losses.sparse_cross_entropy``.
        unlearning_fn: callable ``(logits, original_logits, retain_mask, forget_mask, lam)``
            -> loss or dict of terms with ``"loss"``, or None for
            ``pitune_tf.individual.unlearning.unlearning_terms`` (loss, retain_ce, forget_ce).

    Example:

    >>> module = StudentModule(student, history=30, batch_size=16)
    >>> module.infer(**features)["probabilities"]  # [b, n_intents]
    """

    def __init__(
        self,
        student,
        history,
        batch_size=32,
        optimizer="adam",
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        clipnorm=None,
        min_log_prob=None,
        loss_fn=None,
        unlearning_fn=None,
        name=None,
    ):
        super().__init__(name=name)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        self.student = student
        self.history = int(history)
        self.batch_size = int(batch_size)
        self.optimizer = optimizer
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.min_log_prob = min_log_prob
        self.loss_fn = loss_fn or sparse_cross_entropy
        self.unlearning_fn = unlearning_fn or _default_unlearning_fn(min_log_prob)

        dummy = {k: np.ones((1, self.history), np.int32) for k in STREAM_KEYS}
        dummy["mask"] = np.ones((1, self.history), np.float32)
        self.n_intents = int(student(dummy, training=False).shape[-1])
        self._variables = list(student.trainable_variables)
        self._sizes = [int(np.prod(v.shape)) for v in self._variables]
        self.num_weights = int(sum(self._sizes))
        self.shipped_weights = tf.constant(self._flat_numpy(), name="shipped_weights")
        self._train_slots = _OptimizerSlots(self._variables, optimizer, "train")
        self.train_parts = train_parts(student) if hasattr(student, "backbone") else (ALL,)
        self._part_indices = {}  # part -> indices into self._variables
        for part in self.train_parts:
            ids = {id(v) for v in part_variables(student, part)}
            self._part_indices[part] = [i for i, v in enumerate(self._variables) if id(v) in ids]
        self.streaming = bool(getattr(student, "streaming", False))
        self.state_size = student.state_size if self.streaming else None
        self.signature_names = SIGNATURES + tuple(
            f"train_{part}" for part in self.train_parts if part != ALL) + (
            ("infer_step",) if self.streaming else ())
        self._unlearn_slots = _OptimizerSlots(self._variables, optimizer, "unlearn")
        self._unlearn_takes_weight = "sample_weight" in inspect.signature(
            self.unlearning_fn
        ).parameters

        def features(batch):
            return [tf.TensorSpec([batch, self.history], tf.int32, name=k) for k in STREAM_KEYS] + [
                tf.TensorSpec([batch, self.history], tf.float32, name="mask")
            ]

        b, n = self.batch_size, self.n_intents
        scalar = tf.TensorSpec([], tf.float32, name="learning_rate")
        self.infer = tf.function(self._infer, input_signature=features(None))
        if self.streaming:
            self.infer_step = tf.function(self._infer_step, input_signature=[
                tf.TensorSpec([None], tf.int32, name=k) for k in STREAM_KEYS] + [
                tf.TensorSpec([None, self.state_size], tf.float32, name="state")])
        self.train = tf.function(
            self._train,
            input_signature=features(b)
            + [
                tf.TensorSpec([b], tf.int32, name="label"),
                tf.TensorSpec([b], tf.float32, name="sample_weight"),
                scalar,
            ],
        )
        for part in self.train_parts:
            if part != ALL:
                setattr(self, f"train_{part}", tf.function(
                    self._part_step(part), input_signature=self.train.input_signature))
        self.unlearn = tf.function(
            self._unlearn,
            input_signature=features(b)
            + [
                tf.TensorSpec([b, n], tf.float32, name="original_logits"),
                tf.TensorSpec([n], tf.float32, name="retain_mask"),
                tf.TensorSpec([n], tf.float32, name="forget_mask"),
                tf.TensorSpec([], tf.float32, name="lam"),
                tf.TensorSpec([b], tf.float32, name="sample_weight"),
                scalar,
            ],
        )
        self.get_weights = tf.function(self._get_weights, input_signature=[])
        self.set_weights = tf.function(
            self._set_weights,
            input_signature=[tf.TensorSpec([self.num_weights], tf.float32, name="weights")],
        )
        self.reset = tf.function(self._reset, input_signature=[])

    def concrete_signatures(self, names=None) -> dict:
        """The concrete functions to save, keyed by signature name (default: every one,
        :attr:`signature_names`)."""
        names = self.signature_names if names is None else names
        return {name: getattr(self, name).get_concrete_function() for name in names}

    def trainable_weights_of(self, signature: str) -> int:
        """How many weights a training signature updates (``train``: all of them)."""
        part = ALL if signature == "train" else signature[len("train_"):]
        return int(sum(self._sizes[i] for i in self._part_indices[part]))

    # ---------------------------------------------------------------- signatures

    def _infer(self, location, weekday, slot, event, mask):
        logits = self._logits(location, weekday, slot, event, mask)  # [b, N]
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1)}

    def _infer_step(self, location, weekday, slot, event, state):
        event_features = dict(zip(STREAM_KEYS, (location, weekday, slot, event), strict=True))
        logits, state = self.student.step(event_features, state)  # [b, N], [b, S]
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1),
                "state": state}

    def _train(self, location, weekday, slot, event, mask, label, sample_weight, learning_rate,
               part=ALL):
        indices = self._part_indices[part]
        variables = [self._variables[i] for i in indices]
        with tf.GradientTape() as tape:
            logits = self._logits(location, weekday, slot, event, mask)  # [B, N]
            loss = self.loss_fn(label, logits, sample_weight=sample_weight)
        self._apply(tape.gradient(loss, variables), learning_rate, self._train_slots, indices)
        return {"loss": loss}

    def _part_step(self, part):
        def step(location, weekday, slot, event, mask, label, sample_weight, learning_rate):
            return self._train(location, weekday, slot, event, mask, label, sample_weight,
                               learning_rate, part=part)

        return step

    def _unlearn(
        self,
        location,
        weekday,
        slot,
        event,
        mask,
        original_logits,
        retain_mask,
        forget_mask,
        lam,
        sample_weight,
        learning_rate,
    ):
        with tf.GradientTape() as tape:
            logits = self._logits(location, weekday, slot, event, mask)  # [B, N]
            kwargs = {"sample_weight": sample_weight} if self._unlearn_takes_weight else {}
            terms = self.unlearning_fn(
                logits, original_logits, retain_mask, forget_mask, lam, **kwargs
            )
            terms = dict(terms) if isinstance(terms, dict) else {"loss": terms}
        self._apply(tape.gradient(terms["loss"], self._variables), learning_rate, self._unlearn_slots)
        return {name: tf.convert_to_tensor(value, tf.float32) for name, value in terms.items()}

    def _get_weights(self):
        return {"weights": tf.concat([tf.reshape(v, [-1]) for v in self._variables], axis=0)}

    def _set_weights(self, weights):
        for variable, part in zip(self._variables, tf.split(weights, self._sizes)):
            variable.assign(tf.reshape(part, variable.shape))
        self._train_slots.zero()
        self._unlearn_slots.zero()
        return {"num_weights": tf.size(weights)}

    def _reset(self):
        return self._set_weights(self.shipped_weights)

    # ---------------------------------------------------------------- helpers

    def _logits(self, location, weekday, slot, event, mask):
        features = dict(zip(FEATURE_KEYS, (location, weekday, slot, event, mask), strict=True))
        return self.student(features, training=False)

    def _apply(self, gradients, learning_rate, slots, indices=None):
        """One optimizer step: Keras ``Adam`` / ``SGD`` update rules with ``assign_sub``, on
        the variables at ``indices`` (default: all) with their ``gradients``."""
        indices = range(len(self._variables)) if indices is None else indices
        gradients = [tf.convert_to_tensor(g) for g in gradients]  # IndexedSlices -> dense
        if self.clipnorm is not None:
            gradients = [tf.clip_by_norm(g, self.clipnorm) for g in gradients]
        variables = [self._variables[i] for i in indices]
        if self.optimizer == "sgd":
            for variable, gradient in zip(variables, gradients):
                variable.assign_sub(learning_rate * gradient)
            return
        slots.step.assign_add(1.0)
        alpha = (
            learning_rate
            * tf.sqrt(1.0 - tf.pow(self.beta_2, slots.step))
            / (1.0 - tf.pow(self.beta_1, slots.step))
        )
        moments = [(slots.m[i], slots.v[i]) for i in indices]
        for variable, gradient, (m, v) in zip(variables, gradients, moments):
            m.assign_add((gradient - m) * (1.0 - self.beta_1))
            v.assign_add((tf.square(gradient) - v) * (1.0 - self.beta_2))
            variable.assign_sub((m * alpha) / (tf.sqrt(v) + self.epsilon))

    def _flat_numpy(self) -> np.ndarray:
        return flat_weights(self.student)


def flat_weights(student) -> np.ndarray:
    """The weights vector of the ``get_weights`` / ``set_weights`` signatures and of weights
    files: ``student.trainable_variables`` in order, each flattened row-major, float32 [P]."""
    variables = list(student.trainable_variables)
    if not variables:
        return np.zeros(0, np.float32)
    return np.concatenate([v.numpy().reshape(-1) for v in variables]).astype(np.float32)


def assign_flat_weights(student, weights) -> None:
    """Assigns a weights vector laid out as :func:`flat_weights` to the Keras ``student``
    (what ``set_weights`` does inside the ``.tflite``); a wrong length is an error.

    Args:
        student: keras.Model. The student network.
        weights: float32 array [P].
    """
    variables = list(student.trainable_variables)
    sizes = [int(np.prod(v.shape)) for v in variables]
    weights = np.asarray(weights, np.float32).reshape(-1)
    if weights.size != sum(sizes):
        raise UserInputError(f"a weights vector of {weights.size} values for a student with "
                             f"{sum(sizes)} weights")
    parts = np.split(weights, np.cumsum(sizes)[:-1])
    for variable, part in zip(variables, parts, strict=True):
        variable.assign(part.reshape(variable.shape))


class _OptimizerSlots(tf.Module):
    """Adam's moments and step counter for one signature (empty for SGD)."""

    def __init__(self, variables, optimizer, name):
        super().__init__(name=f"{name}_optimizer")
        adam = optimizer == "adam"
        self.step = tf.Variable(0.0, trainable=False, name="step")
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False, name="m") for v in variables] if adam else []
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False, name="v") for v in variables] if adam else []

    def zero(self):
        self.step.assign(0.0)
        for slot in self.m + self.v:
            slot.assign(tf.zeros_like(slot))


def _default_unlearning_fn(min_log_prob=None):
    if min_log_prob is None:
        return unlearning_terms

    def terms(logits, original_logits, retain_mask, forget_mask, lam, sample_weight=None):
        return unlearning_terms(
            logits, original_logits, retain_mask, forget_mask, lam,
            min_log_prob=min_log_prob, sample_weight=sample_weight,
        )

    return terms
