"""The one personalization loop of PITuning's individual stage (Section 3.3, Algorithm 1
bottom half), written once against a small backend interface.

The loop owns everything that must agree between the Keras trainer and the phone: the
forgotten set (PITuning Eq. 8-10), batching (one seeded permutation per epoch, the last
batch padded to B with weight 0), the unlearning cycle (PITuning Eq. 11), fine-tuning with
early stopping on the user's validation windows, and the per-user result record. A backend
only runs the model:

- :class:`pitune_tf.individual.keras_backend.KerasBackend`: a Keras network and its tuners;
- :class:`pitune_tf.individual.litert_backend.LiteRTBackend`: the ``student.tflite`` signatures (what a
  phone runs).

With the same options both backends take the same steps on the same batches.
"""

from __future__ import annotations

import random
import time
import zlib

import numpy as np

from pitune_tf.common.batching import index_batches
from pitune_tf.common.best_epoch_rule import BestEpochRule
from pitune_tf.common.numeric import softmax
from pitune_tf.individual.manage_intents import intent_shares, manage_intents
from pitune_tf.individual.methods import ENGINE_METHODS, STUDENT_METHODS, TRIVIAL_METHODS
from pitune_tf.individual.oversampling import oversample_indices
from pitune_tf.individual.train_part_rule import AUTO, TrainPartRule, user_features


def mean_cross_entropy(probs, labels) -> float:
    """Mean of -log probs[i, labels[i]] (probabilities floored at 1e-12): what early stopping
    and the prior's beta compare on validation windows."""
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12))))


def interpolate(start, end, alpha):
    """``(1 - alpha) * start + alpha * end`` of two models' weights: one float32 vector (the
    on-device runtime's) or a list of arrays (Keras'), in the same layout."""
    if isinstance(start, np.ndarray):
        return ((1.0 - alpha) * start + alpha * end).astype(start.dtype)
    return [((1.0 - alpha) * a + alpha * b).astype(np.asarray(a).dtype) for a, b in zip(start, end)]


def user_seed(seed, user) -> int:
    """A per-user seed independent of the process and of the order users are run in."""
    return (int(seed) * 1_000_003 + zlib.crc32(str(user).encode("utf-8"))) % (2**31 - 1)


def window_batches(windows, batch_size, rng, extra=None):
    """One epoch of ``(features, labels, weight, index)`` batches of exactly ``batch_size``
    rows: one ``rng.permutation`` per epoch, the last batch padded with weight-0 rows;
    ``extra``: name -> array [n] of per-row inputs added to the features."""
    features = {**windows.features(), **(extra or {})}
    for index, weight in index_batches(rng.permutation(len(windows)), batch_size, pad=True):
        yield ({k: np.ascontiguousarray(v[index]) for k, v in features.items()},
               windows.label[index], weight, index)


def train_epoch(step, windows, batch_size, rng, extra=None) -> float:
    """One epoch of ``step(features, labels, weight) -> loss`` over :func:`window_batches`;
    the epoch's mean loss (batches weighted by their real rows)."""
    losses, weights = [], []
    for features, labels, weight, _ in window_batches(windows, batch_size, rng, extra):
        losses.append(float(step(features, labels, weight)))
        weights.append(float(weight.sum()))
    return float(np.average(losses, weights=weights))


def start_user_result(user, run, n_intents, static_threshold):
    """The user's forgotten sets (PITuning Eq. 8-10) and the head of its result record."""
    sets = manage_intents(run.p_out, run.p_pop, intent_shares(user.train.label, n_intents),
                          static_threshold=static_threshold)
    out = {
        "user": user.user,
        "n_train": len(user.train), "n_val": len(user.val), "n_test": len(user.test),
        "static": sets.static, "dynamic": sets.dynamic, "forget": sets.forget,
        "retain": sets.retain,
        "y_true": np.asarray(user.test.label, np.int32),
        "val_y_true": np.asarray(user.val.label, np.int32),
        "timestamp": np.asarray(user.test.timestamp, np.int64),
        "methods": {},
    }
    return sets, out


class TuningBackend:
    """What the personalization loop needs from a runtime (a Keras network, a TFLite
    interpreter). Arrays in and out are numpy.

    Attributes:
        n_intents: int. Width of the logits.
        objectives: tuple of str. The training objectives :meth:`train` accepts
            (``"ce"``; ``"focal"`` where the runtime has it).
    """

    n_intents: int
    objectives: tuple = ("ce",)

    def logits(self, windows) -> np.ndarray:
        """Logits [n, n_intents] of the current weights on ``windows``."""
        raise NotImplementedError

    def train(self, features, labels, weight, objective="ce") -> float:
        """One optimizer step on a full batch (rows of weight 0 are padding); returns the
        loss before the step."""
        raise NotImplementedError

    def unlearn(self, features, original_logits, weight, retain_mask, forget_mask) -> dict:
        """One PITuning Eq. 11 step; returns ``loss``, ``retain_ce``, ``forget_ce``."""
        raise NotImplementedError

    train_parts: tuple = ("all",)  # what fine-tuning can train (pitune_tf.models.train_parts)

    def set_train_part(self, part) -> None:
        """What the next fine-tuning steps train (one of :attr:`train_parts`)."""
        raise NotImplementedError

    def get_weights(self):
        raise NotImplementedError

    def set_weights(self, weights) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the shipped weights, every optimizer state zeroed."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Table 3's columns: ``parameters``, ``trainable_parameters``, ``infer_ms``."""
        raise NotImplementedError


class PersonalizationEngine:
    """Runs the individual-stage methods for one user at a time on a backend.

    Before each method the backend is reset to the shipped weights and the Python and numpy
    seeds are set from (seed, user), so a user's result does not depend on which users the
    process ran before (serial and parallel runs agree).

    Args:
        backend: TuningBackend. The model being personalized (the student).
        run: the population run (``load_run``): P_out, P_pop, vocabularies.
        config: IndividualConfig.
        batch_size: int or None. The training batch B (default ``config.batch_size``; a
            TFLite model fixes its own).
        extra_methods: dict of name -> callable(engine, user, sets) -> (scores, info), for
            methods outside the loop (the teacher-based baselines of the Keras trainer).
    """

    unlearn_chosen = True  # whether pituning unlearns for the current user (train_part "auto")

    def __init__(self, backend, run, config, batch_size=None, extra_methods=None):
        self.backend = backend
        self.run = run
        self.config = config
        self.batch_size = int(batch_size or config.batch_size)
        self.n_intents = int(run.vocabs.n_intents)
        self.extra_methods = dict(extra_methods or {})
        self._shipped = None  # (user, val probs, test probs) of the shipped model (shipped_guard)
        # train_part "auto": the rule choosing each user's part and whether unlearning runs
        self.rule = TrainPartRule.load(config.train_part_rule) if config.train_part == AUTO else None
        if self.rule is not None:
            self.rule.check_parts(backend.train_parts, config.train_part_rule)

    @property
    def methods(self) -> tuple:
        """The methods this engine can run: the loop's own (``ENGINE_METHODS``, focal where
        the backend trains that objective) and the extra methods."""
        trainable = [m for m in ENGINE_METHODS if m != "focal" or "focal" in self.backend.objectives]
        return tuple(trainable) + tuple(self.extra_methods)

    # ------------------------------------------------------------------ helpers
    def probs(self, windows, backend=None) -> np.ndarray:
        """softmax of the backend's logits, float32 [n, n_intents]."""
        backend = backend or self.backend
        if len(windows) == 0:
            return np.zeros((0, backend.n_intents), np.float32)
        return softmax(backend.logits(windows))

    def cross_entropy(self, windows, backend=None) -> float:
        """Mean cross-entropy on ``windows`` (what early stopping compares)."""
        return mean_cross_entropy(self.probs(windows, backend), windows.label)

    def batches(self, windows, rng):
        """One epoch of :func:`window_batches` of exactly B rows."""
        return window_batches(windows, self.batch_size, rng)

    def train_epoch(self, windows, rng, objective="ce", backend=None) -> float:
        """One shuffled epoch of ``backend.train`` steps on ``windows`` (:func:`train_epoch`);
        its mean loss."""
        backend = backend or self.backend
        return train_epoch(lambda features, labels, weight: backend.train(
            features, labels, weight, objective), windows, self.batch_size, rng)

    def fit(self, train, val, seed, objective="ce", backend=None) -> dict:
        """Fine-tuning (3.3.2): up to ``max_epochs`` epochs, early stopping on the validation
        cross-entropy with the starting weights as epoch 0; the backend ends with its
        best-validation weights. It stops after more than ``patience`` epochs without a
        lower cross-entropy (:class:`~pitune_tf.common.best_epoch_rule.BestEpochRule` with
        patience ``patience + 1``)."""
        cfg = self.config
        backend = backend or self.backend
        rng = np.random.default_rng(seed)
        has_val = len(val) > 0
        start = self.cross_entropy(val, backend) if has_val else float("nan")
        rule = BestEpochRule(patience=cfg.patience + 1)
        best_weights = None
        if has_val:
            rule.update(0, start)
            best_weights = backend.get_weights()
        train_ce, epochs = [], 0
        val_curve = [start] if has_val else []
        for epoch in range(1, cfg.max_epochs + 1):
            train_ce.append(self.train_epoch(train, rng, objective, backend))
            epochs = epoch
            if not has_val:
                continue
            loss = self.cross_entropy(val, backend)
            val_curve.append(loss)
            improved, stop = rule.update(epoch, loss)
            if improved:
                best_weights = backend.get_weights()
            elif stop:
                break
        if has_val:
            backend.set_weights(best_weights)
        return {"epochs": epochs, "best_epoch": rule.best_epoch if has_val else epochs,
                "val_ce_start": start, "val_ce_best": rule.best_value if has_val else start,
                "train_ce_first": train_ce[0], "train_ce_last": train_ce[-1],
                "val_ce_curve": val_curve}

    def unlearn(self, user, sets) -> dict:
        """Adaptive unlearning (PITuning Eq. 11) for ``unlearn_steps`` steps, cycling through
        shuffled epochs; no-op when F is empty. The original model's logits M_o are the
        shipped model's, computed once before the first step. With ``unlearn_gate`` and
        validation windows, the weights after the first k steps are kept, k (0 = the shipped
        weights) the one with the lowest validation cross-entropy."""
        cfg = self.config
        if not sets.forget or cfg.unlearn_steps == 0:
            return {"unlearn_steps": 0}
        forget, retain = sets.forget_mask(), sets.retain_mask()
        gate = cfg.unlearn_gate and len(user.val) > 0
        if gate:  # the number of steps kept is chosen on validation, 0 (the shipped model) included
            best_weights, shipped_ce = self.backend.get_weights(), self.cross_entropy(user.val)
            kept = BestEpochRule()  # steps as its epochs; patience 0: never stops
            kept.update(0, shipped_ce)
        original = self.backend.logits(user.train)  # [n_train, N]
        before = softmax(original)
        rng = np.random.default_rng(user_seed(cfg.seed, user.user))
        logs = []
        while len(logs) < cfg.unlearn_steps:  # a fixed number of steps, cycling epochs
            for features, _, weight, index in self.batches(user.train, rng):
                logs.append(self.backend.unlearn(features, original[index], weight, retain,
                                                 forget))
                if gate and kept.update(len(logs), self.cross_entropy(user.val))[0]:
                    best_weights = self.backend.get_weights()
                if len(logs) == cfg.unlearn_steps:
                    break
        after = self.probs(user.train)  # after every step (what unlearning does)
        keep = retain.astype(bool)
        moved = (after - before).mean(axis=0)  # [N] mean probability change per intent
        info = {
            "unlearn_steps": cfg.unlearn_steps,
            "unlearn_loss_first": logs[0]["loss"],
            "unlearn_loss_last": logs[-1]["loss"],
            "forget_ce_last": logs[-1]["forget_ce"],
            "forget_prob_before": float((before @ forget).mean()),
            "forget_prob_after": float((after @ forget).mean()),
            "retain_max_abs_change": (
                float(np.abs(after[:, keep] - before[:, keep]).max()) if keep.any() else 0.0
            ),
            "forget_size": int(forget.sum()), "retain_size": int(retain.sum()),
            "unlearn_moved_intent": int(np.argmax(np.abs(moved))),
            "unlearn_moved_by": float(moved[np.argmax(np.abs(moved))]),
        }
        if gate:  # the steps kept are chosen on validation, never on test rows
            self.backend.set_weights(best_weights)
            info.update(val_ce_shipped=shipped_ce, val_ce_unlearned=kept.best_value,
                        unlearn_kept=bool(kept.best_epoch > 0),
                        unlearn_kept_steps=kept.best_epoch)
        return info

    def user_frequencies(self, labels) -> np.ndarray:
        """P_in [n_intents]: the user's training intent frequencies, smoothed toward P_pop
        with ``prior_pseudo_count`` pseudo-windows."""
        p_pop = np.asarray(self.run.p_pop, np.float64)
        k = float(self.config.prior_pseudo_count)
        counts = np.bincount(labels, minlength=self.n_intents).astype(np.float64)
        return (counts + k * p_pop) / max(counts.sum() + k, 1e-12)

    def prior_bias(self, labels) -> np.ndarray:
        """``log P_in - log P_pop`` [n_intents]: the user's training intent frequencies
        (:meth:`user_frequencies`) against the population's; 0 on intents the population
        never has (reserved ids)."""
        p_pop = np.asarray(self.run.p_pop, np.float64)
        p_in = self.user_frequencies(labels)
        bias = np.zeros(self.n_intents)
        known = (p_pop > 0) & (p_in > 0)
        bias[known] = np.log(p_in[known]) - np.log(p_pop[known])
        return bias

    def choose_prior_beta(self, logits, labels, bias) -> float:
        """The beta of ``prior_betas`` with the lowest cross-entropy of
        ``softmax(logits + beta * bias)`` on the user's validation windows (ties: the
        smaller beta); ``prior_default_beta`` without validation windows."""
        if len(labels) == 0:
            return float(self.config.prior_default_beta)
        losses = [mean_cross_entropy(softmax(logits + beta * bias), labels)
                  for beta in self.config.prior_betas]
        return float(self.config.prior_betas[int(np.argmin(losses))])

    # ------------------------------------------------------------------ methods
    def trivial_scores(self, method, user, event_index) -> np.ndarray:
        """The trivial baselines' scores on the windows that predict the user's events
        ``event_index`` (``user.test_event_index`` or ``user.val_event_index``):

        - ``most_frequent``: the user's own intent frequencies (P_in, smoothed toward P_pop)
          for every window, so the user's most frequent training intent ranks first;
        - ``last_event_intent``: the intent of the window's last event ranks first; the
          others follow P_in, which also breaks ties for ranking.
        """
        p_in = self.user_frequencies(user.train.label).astype(np.float32)
        scores = np.tile(p_in[None, :], (len(event_index), 1))
        if method == "most_frequent":
            return scores
        scores *= 1e-3
        last = user.event_intent[np.asarray(event_index, np.int64) - 1]  # [n]
        scores[np.arange(len(event_index)), last] += 1.0
        return scores / scores.sum(axis=1, keepdims=True)

    def method_most_frequent(self, user, sets):
        """Trivial baseline (:meth:`trivial_scores`)."""
        return self.trivial_scores("most_frequent", user, user.test_event_index), {}

    def method_last_event_intent(self, user, sets):
        """Trivial baseline (:meth:`trivial_scores`)."""
        return self.trivial_scores("last_event_intent", user, user.test_event_index), {}

    def val_scores(self, method, user, info):
        """The method's probabilities on the user's validation windows, from the model the
        method ended with (its prior shift included): the numbers to choose settings on
        without touching test rows. None for methods outside the loop."""
        if method in TRIVIAL_METHODS:
            return self.trivial_scores(method, user, user.val_event_index)
        if method not in STUDENT_METHODS or len(user.val) == 0:
            return None
        if "_val_scores" in info:  # refit: the model chosen on validation, before it saw them;
            return info.pop("_val_scores")  # shipped_guard: the kept model's
        return self.current_val_probs(user, info)

    def current_val_probs(self, user, info):
        """The current model's probabilities on the user's validation windows, its prior
        shift (``prior_beta`` in ``info``) included."""
        logits = self.backend.logits(user.val)
        if "prior_beta" in info:
            logits = logits + info["prior_beta"] * self.prior_bias(user.train.label)
        return softmax(logits)

    def method_none(self, user, sets):
        return self.probs(user.test), {}

    def choose_prior(self, user) -> dict:
        """The prior shift of the current model: beta of ``prior_betas`` chosen on the
        user's validation windows for logits + beta * (log P_in - log P_pop)."""
        bias = self.prior_bias(user.train.label)
        beta = self.choose_prior_beta(self.backend.logits(user.val), user.val.label, bias)
        return {"prior_beta": beta, "prior_bias_max": float(bias.max()),
                "prior_bias_min": float(bias.min())}

    def prior_labels(self, user, info) -> np.ndarray:
        """The labels P_in counts in a tuned model's test scores: the windows it was trained
        on, i.e. the training windows', and the validation windows' too once it was refit on
        them (``refit_epochs`` in ``info``). Beta is chosen before, with the training
        windows' P_in; ``prior`` itself is never refit and keeps the training windows' (on
        the demo users' validation holdout, counting the validation labels there lowered
        Prec_m 0.3787 -> 0.3769)."""
        if info.get("refit_epochs"):
            return np.concatenate([user.train.label, user.val.label])
        return user.train.label

    def prior_scores(self, user):
        """Test probabilities of the current model with its logits shifted by
        beta * (log P_in - log P_pop), beta chosen on the user's validation windows; and
        what was chosen."""
        info = self.choose_prior(user)
        bias = self.prior_bias(user.train.label)
        return softmax(self.backend.logits(user.test) + info["prior_beta"] * bias), info

    def tuned_scores(self, user, info, train=None, start=None, objective="ce"):
        """The tuned model's test probabilities. With ``prior_after_tuning``, its logits
        shifted as in :meth:`prior_scores` (beta 0, the plain model, is in the grid, so the
        validation loss never rises). With ``refit`` (and an epoch k >= 1 kept by early
        stopping), the model is then retrained from ``start`` (the weights fine-tuning
        started from; None: the shipped ones) on ``train`` (default the user's training
        windows) + the validation windows for k epochs, with ``objective``: every choice was
        made on validation first (epoch, beta, the unlearned start), then the validation
        windows become training data, the newest the user has before the test days. With
        ``shrink_to_shipped``, first of all the weights are shrunk toward the shipped ones
        (:meth:`choose_shrink`; after a refit, the refit weights by the same alpha)."""
        cfg = self.config
        shrink = self.choose_shrink(user) if cfg.shrink_to_shipped and len(user.val) else None
        prior = self.choose_prior(user) if cfg.prior_after_tuning else {}
        best_epoch = int(info.get("best_epoch", 0))
        if cfg.refit and len(user.val) and best_epoch > 0:
            info["_val_scores"] = self.current_val_probs(user, prior)  # what validation metrics report
            self.backend.reset()  # fresh optimizers
            if start is not None:
                self.backend.set_weights(start)
            train = user.train if train is None else train
            both = type(train).concatenate([train, user.val])  # Windows
            rng = np.random.default_rng(user_seed(cfg.seed, user.user) + 1)
            info["refit_train_ce"] = [self.train_epoch(both, rng, objective) for _ in range(best_epoch)]
            info["refit_epochs"] = best_epoch
            if shrink is not None:  # the refit weights, shrunk by the alpha chosen before
                self.backend.set_weights(interpolate(shrink[1], self.backend.get_weights(), shrink[0]))
        if shrink is not None:
            info["shrink_alpha"] = shrink[0]
        logits = self.backend.logits(user.test)
        if prior:
            logits = logits + prior["prior_beta"] * self.prior_bias(self.prior_labels(user, info))
        info = {**info, **prior}
        probs = softmax(logits)
        if cfg.repeat_mix and len(user.val):
            probs = self.repeat_mix(user, info, probs)
        if cfg.shipped_guard:
            return self.shipped_guard(user, info, probs)
        return probs, info

    def repeat_mix(self, user, info, test_probs):
        """``repeat_mix``: the tuned model's probabilities mixed with the last event's intent,
        ``(1 - w) * model + w * last_event_intent`` (:meth:`trivial_scores`), w of
        ``repeat_mix_weights`` with the lowest validation log-loss (the first of equals; 0:
        the model as it is). On the phone: one number per user and the newest event's intent."""
        val = info.get("_val_scores")
        if val is None:
            val = self.current_val_probs(user, info)
        last_val = self.trivial_scores("last_event_intent", user, user.val_event_index)
        losses = [mean_cross_entropy((1.0 - w) * val + w * last_val, user.val.label)
                  for w in self.config.repeat_mix_weights]
        w = self.config.repeat_mix_weights[int(np.argmin(losses))]
        info["repeat_mix_weight"] = w
        info["_val_scores"] = (1.0 - w) * val + w * last_val  # what validation metrics report
        last_test = self.trivial_scores("last_event_intent", user, user.test_event_index)
        return (1.0 - w) * test_probs + w * last_test

    def choose_shrink(self, user) -> tuple:
        """``shrink_to_shipped``: sets the backend to alpha * tuned + (1 - alpha) * shipped
        weights, alpha of ``shrink_alphas`` with the lowest mean validation log-loss (the
        first of equals), and returns ``(alpha, the shipped weights)``."""
        tuned = self.backend.get_weights()
        self.backend.reset()
        shipped = self.backend.get_weights()
        losses = []
        for alpha in self.config.shrink_alphas:
            self.backend.set_weights(interpolate(shipped, tuned, alpha))
            losses.append(mean_cross_entropy(self.current_val_probs(user, {}), user.val.label))
        alpha = self.config.shrink_alphas[int(np.argmin(losses))]
        self.backend.set_weights(interpolate(shipped, tuned, alpha))
        return alpha, shipped

    def shipped_guard(self, user, info, test_probs):
        """Never below the shipped model on validation (``shipped_guard``; not in the
        paper): the tuned model is kept only if its per-window validation log-loss is lower
        than the shipped model's by more than ``shipped_guard_z`` standard errors of the
        paired difference (one-sided); otherwise the user's model is the shipped one again
        (``guard_kept`` False; the backend is reset to the shipped weights)."""
        val_tuned = info.get("_val_scores")
        if val_tuned is None and len(user.val):
            val_tuned = self.current_val_probs(user, info)
        shipped_val, shipped_test = self.shipped_probs(user)
        n = len(user.val)
        if n:
            rows = np.arange(n)
            gain = (np.log(np.maximum(val_tuned[rows, user.val.label], 1e-12))
                    - np.log(np.maximum(shipped_val[rows, user.val.label], 1e-12)))
            margin = self.config.shipped_guard_z * (gain.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf)
            keep = bool(gain.mean() > margin)
            info.update(guard_val_gain=float(gain.mean()), guard_margin=float(margin))
        else:
            keep = False
        info["guard_kept"] = keep
        if keep:
            if val_tuned is not None:
                info["_val_scores"] = val_tuned  # what validation metrics report (val_scores)
            return test_probs, info
        self.backend.reset()  # the shipped weights
        info["_val_scores"] = shipped_val  # what validation metrics report: the kept model
        for key in ("shrink_alpha", "repeat_mix_weight"):  # what the shipped model does not use
            info.pop(key, None)
        return shipped_test, info

    def shipped_probs(self, user):
        """The shipped model's probabilities on ``user``'s validation and test windows,
        computed once per user (kept until the engine meets another user); the backend's
        weights are left as they were."""
        if self._shipped is None or self._shipped[0] != user.user:
            weights = self.backend.get_weights()
            self.backend.reset()
            self._shipped = (user.user, self.probs(user.val), self.probs(user.test))
            self.backend.set_weights(weights)
        return self._shipped[1:]

    def method_prior(self, user, sets):
        """Prior correction of the shipped model, no backpropagation: logits +
        beta * (log P_in - log P_pop), beta chosen on the user's validation windows. On the
        phone it is one bias vector per user added to ``infer``'s logits."""
        return self.prior_scores(user)

    def method_finetune(self, user, sets):
        info = self.fit(user.train, user.val, user_seed(self.config.seed, user.user))
        return self.tuned_scores(user, info)

    def method_pituning(self, user, sets):
        """PITuning's individual stage (Algorithm 1, lines 9-13): adaptive unlearning of F
        (Eq. 11), then fine-tuning. With ``unlearn_select="after_finetune"`` and validation
        windows, fine-tuning also runs from the shipped weights when unlearning moved them,
        and the run with the lower validation cross-entropy after fine-tuning is kept
        (``unlearn_kept_after_finetune``): unlearning is meant to help the fine-tuned model,
        so it is judged there, on validation windows only. With ``train_part="auto"`` the
        rule may skip the unlearning for the user (``unlearn_chosen`` False: one fine-tuning
        of the chosen part, as ``finetune``)."""
        seed = user_seed(self.config.seed, user.user)
        info = self.unlearn(user, sets) if self.unlearn_chosen else {"unlearn_steps": 0}
        moved = info["unlearn_steps"] > 0 and info.get("unlearn_kept_steps", 1) > 0
        start = self.backend.get_weights() if moved and self.config.refit else None  # unlearned
        fitted = self.fit(user.train, user.val, seed)
        info.update(fitted)
        if self.config.unlearn_select == "after_finetune" and moved and len(user.val):
            unlearned_weights = self.backend.get_weights()
            self.backend.reset()  # the shipped weights, fresh optimizers: as `finetune`
            plain = self.fit(user.train, user.val, seed)
            keep = fitted["val_ce_best"] < plain["val_ce_best"]
            if keep:
                self.backend.set_weights(unlearned_weights)
            else:
                info.update(plain)
                start = None
            info.update(unlearn_kept_after_finetune=bool(keep),
                        val_ce_finetuned_unlearned=fitted["val_ce_best"],
                        val_ce_finetuned_shipped=plain["val_ce_best"])
        elif info["unlearn_steps"] > 0:
            info["unlearn_kept_after_finetune"] = bool(moved)
        return self.tuned_scores(user, info, start=start)

    def method_focal(self, user, sets):
        info = self.fit(user.train, user.val, user_seed(self.config.seed, user.user), "focal")
        return self.tuned_scores(user, info, objective="focal")

    def method_oversample(self, user, sets):
        seed = user_seed(self.config.seed, user.user)
        index = oversample_indices(user.train.label, self.config.oversample_ratio, seed=seed)
        train = user.train.take(index)
        info = self.fit(train, user.val, seed)
        info["train_windows_oversampled"] = int(index.size)
        return self.tuned_scores(user, info, train=train)

    # ------------------------------------------------------------------ one user
    def run_user(self, user, methods) -> dict:
        """Runs ``methods`` on ``user`` (a :class:`UserData`); returns a picklable record."""
        sets, out = start_user_result(user, self.run, self.n_intents,
                                      self.config.static_threshold)
        self.backend.reset()  # the shipped model, whose validation loss the rule reads
        out["features"] = user_features(
            len(user.train), sets.forget, sets.retain, user.train.label, self.run.p_pop,
            self.cross_entropy(user.val) if len(user.val) else float("nan"))
        if self.rule is not None:  # train_part "auto": chosen before any training step
            part, self.unlearn_chosen = self.rule.choose(out["features"])
            self.backend.set_train_part(part)
            out.update(train_part=part, unlearn_chosen=self.unlearn_chosen)
        for method in methods:
            self.backend.reset()
            seed = user_seed(self.config.seed, user.user)
            random.seed(seed)
            np.random.seed(seed)
            start = time.perf_counter()
            if method in self.extra_methods:
                scores, info = self.extra_methods[method](self, user, sets)
            elif method in self.methods:
                scores, info = getattr(self, f"method_{method}")(user, sets)
            else:
                raise ValueError(f"method {method!r} is not available on this backend")
            info["seconds"] = time.perf_counter() - start
            out["methods"][method] = {"scores": np.asarray(scores).astype(np.float32),
                                      "info": info}
            val = self.val_scores(method, user, info)
            if val is not None:
                out["methods"][method]["val_scores"] = np.asarray(val).astype(np.float32)
        self.backend.reset()
        return out
