"""Runs every method of the individual stage on one user (PITuning Algorithm 1, bottom
half, and the Section 4 baselines). One ``UserRunner`` lives in each worker process."""

from __future__ import annotations

import random
import time
import zlib
from pathlib import Path

import numpy as np

from pitune_tf.common.keras import keras, tf
from pitune_tf.individual.individual_tuner import IndividualTuner
from pitune_tf.individual.lgbm_features import (
    booster_size,
    time_since_last,
    top_locations,
    train_lgbm,
    window_features,
)
from pitune_tf.individual.manage_intents import intent_shares, manage_intents
from pitune_tf.individual.oversampling import oversample_indices

PREDICT_BATCH = 256


def user_seed(seed, user) -> int:
    """A per-user seed independent of the process and of the order users are run in."""
    return (int(seed) * 1_000_003 + zlib.crc32(str(user).encode("utf-8"))) % (2**31 - 1)


def softmax(logits):
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)



def start_user_result(user, run, n_intents, static_threshold):
    """The user's forgotten sets (Eq. 8-10) and the head of its result dict.

    Shared by the Keras runner and the on-device simulator (``tflite.device``), so both
    produce the same per-user records.
    """
    sets = manage_intents(run.p_out, run.p_pop, intent_shares(user.train.label, n_intents),
                          static_threshold=static_threshold)
    out = {
        "user": user.user,
        "n_train": len(user.train), "n_val": len(user.val), "n_test": len(user.test),
        "static": sets.static, "dynamic": sets.dynamic, "forget": sets.forget,
        "retain": sets.retain,
        "y_true": np.asarray(user.test.label, np.int32),
        "timestamp": np.asarray(user.test.timestamp, np.int64),
        "methods": {},
    }
    return sets, out


class UserRunner:
    """Holds the run's models in one process and tunes a fresh copy for each user.

    The student is loaded once; before each user and method its shipped weights are put
    back, the optimizer slots are zeroed and every seed is set from (seed, user), so a user's
    results do not depend on which users the process ran before (serial and parallel runs
    agree).

    Args:
        run_dir: str or Path. The population run directory.
        config: IndividualConfig.
    """

    def __init__(self, run_dir, config):
        from pitune_tf.models import load_run

        self.run_dir = Path(run_dir)
        self.config = config
        self.run = load_run(run_dir)
        self.n_intents = int(self.run.vocabs.n_intents)
        self.student = self.run.student
        self.shipped_weights = self.student.get_weights()
        self.original = keras.models.load_model(self.run_dir / "student.keras", compile=False)
        self.original.trainable = False
        self._tuners = {}
        self._infer = {}
        self._steps = {}
        self._teacher_weights = None
        keras.utils.set_random_seed(config.seed)

    # ------------------------------------------------------------------ helpers
    def _tuner(self, mode, network=None, key=None, learning_rate=None):
        """The tuner of ``mode`` over ``network`` (default the student), built and compiled
        once per process and reused for every user (its optimizer slots zeroed)."""
        key = key or mode
        if key not in self._tuners:
            cfg = self.config
            tuner = IndividualTuner(
                network if network is not None else self.student, self.n_intents,
                original=self.original if mode == "unlearn" else None,
                mode=mode, lam=cfg.lam, min_log_prob=cfg.min_log_prob, focal_gamma=cfg.focal_gamma,
            )
            if learning_rate is None:
                learning_rate = cfg.unlearn_learning_rate if mode == "unlearn" else cfg.learning_rate
            tuner.compile(optimizer=keras.optimizers.Adam(learning_rate))
            self._tuners[key] = tuner
        tuner = self._tuners[key]
        if tuner.optimizer.variables:
            tuner.reset_optimizer()
        return tuner

    def _reset(self, user):
        """Shipped weights back; Python and numpy seeds from (seed, user). The TF global seed
        is set once per process only: ``tf.random.set_seed`` clears TF's kernel caches, which
        costs ~1 s per user. Per-user tuning draws no TF random numbers (the models have no
        dropout by default; shuffling uses a per-user numpy generator)."""
        self.student.set_weights(self.shipped_weights)
        seed = user_seed(self.config.seed, user)
        random.seed(seed)
        np.random.seed(seed)

    def predict_probs(self, network, windows):
        """softmax(network(windows)) as numpy [n, n_intents] (one traced function per network)."""
        if len(windows) == 0:
            return np.zeros((0, self.n_intents), np.float32)
        key = id(network)
        if key not in self._infer:
            self._infer[key] = tf.function(lambda x: network(x, training=False),
                                           reduce_retracing=True)
        features = windows.features()
        # Tensors, not numpy arrays: a traced function is ~100x slower on numpy inputs.
        logits = [self._infer[key]({k: tf.convert_to_tensor(v[i:i + PREDICT_BATCH])
                                    for k, v in features.items()}).numpy()
                  for i in range(0, len(windows), PREDICT_BATCH)]
        return softmax(np.concatenate(logits))

    def cross_entropy(self, network, windows):
        """Mean cross-entropy of ``network`` on ``windows`` (what early stopping compares)."""
        probs = self.predict_probs(network, windows)
        return float(-np.mean(np.log(np.maximum(probs[np.arange(len(windows)), windows.label], 1e-12))))

    def _step(self, tuner):
        """``tuner.train_step`` as one traced function (per tuner, reused for every user)."""
        if id(tuner) not in self._steps:
            self._steps[id(tuner)] = tf.function(tuner.train_step, reduce_retracing=True)
        return self._steps[id(tuner)]

    def _batches(self, windows, rng):
        """One epoch of shuffled ``(features, labels, sample_weight)`` batches as tensors of
        the fixed size ``batch_size``: the last batch is padded with weight-0 rows, so each
        tuner's step is traced once (and a traced function on numpy inputs is ~100x slower)."""
        features = windows.features()
        size = self.config.batch_size
        order = rng.permutation(len(windows))
        for i in range(0, len(order), size):
            index = order[i:i + size]
            weight = np.ones(size, np.float32)
            if len(index) < size:
                weight[len(index):] = 0.0
                index = np.concatenate([index, np.full(size - len(index), index[0])])
            yield ({k: tf.convert_to_tensor(v[index]) for k, v in features.items()},
                   tf.convert_to_tensor(windows.label[index]), tf.convert_to_tensor(weight))

    def _fit(self, tuner, network, train, val, seed):
        """Fine-tunes (3.3.2): up to ``max_epochs`` epochs of ``tuner.train_step``, early
        stopping on the validation cross-entropy with the starting weights as epoch 0; the
        network ends with its best-validation weights."""
        cfg = self.config
        rng = np.random.default_rng(seed)
        step = self._step(tuner)
        has_val = len(val) > 0
        best = start = self.cross_entropy(network, val) if has_val else float("nan")
        best_epoch, best_weights = 0, network.get_weights() if has_val else None
        train_ce, epochs = [], 0
        for epoch in range(1, cfg.max_epochs + 1):
            losses, weights = [], []
            for batch in self._batches(train, rng):
                losses.append(float(step(batch)["loss"]))
                weights.append(float(batch[2].numpy().sum()))
            train_ce.append(float(np.average(losses, weights=weights)))
            epochs = epoch
            if not has_val:
                continue
            loss = self.cross_entropy(network, val)
            if loss < best:
                best, best_epoch, best_weights = loss, epoch, network.get_weights()
            elif epoch - best_epoch > cfg.patience:
                break
        if has_val:
            network.set_weights(best_weights)
        else:
            best_epoch = epochs
        return {"epochs": epochs, "best_epoch": best_epoch, "val_ce_start": start,
                "val_ce_best": best, "train_ce_first": train_ce[0], "train_ce_last": train_ce[-1]}

    def _unlearn(self, user, sets):
        """Adaptive unlearning (Eq. 11) for a fixed number of steps; no-op when F is empty."""
        cfg = self.config
        if not sets.forget or cfg.unlearn_steps == 0:
            return {"unlearn_steps": 0}
        forget = sets.forget_mask()
        before = self.predict_probs(self.student, user.train)
        tuner = self._tuner("unlearn")
        tuner.set_intent_masks(sets.retain_mask(), forget)
        step = self._step(tuner)
        rng = np.random.default_rng(user_seed(cfg.seed, user.user))
        logs, done = [], 0
        while done < cfg.unlearn_steps:  # a fixed number of steps, cycling through epochs
            for batch in self._batches(user.train, rng):
                logs.append({k: float(v) for k, v in step(batch).items()})
                done += 1
                if done == cfg.unlearn_steps:
                    break
        after = self.predict_probs(self.student, user.train)
        retain = sets.retain_mask().astype(bool)
        return {
            "unlearn_steps": cfg.unlearn_steps,
            "unlearn_loss_first": logs[0]["loss"],
            "unlearn_loss_last": logs[-1]["loss"],
            "forget_ce_last": logs[-1]["forget_ce"],
            "forget_prob_before": float((before @ forget).mean()),
            "forget_prob_after": float((after @ forget).mean()),
            "retain_max_abs_change": (
                float(np.abs(after[:, retain] - before[:, retain]).max()) if retain.any() else 0.0
            ),
        }

    # ------------------------------------------------------------------ methods
    def method_none(self, user, sets):
        return self.predict_probs(self.student, user.test), {}

    def method_finetune(self, user, sets):
        info = self._fit(self._tuner("finetune"), self.student, user.train, user.val,
                         user_seed(self.config.seed, user.user))
        return self.predict_probs(self.student, user.test), info

    def method_pituning(self, user, sets):
        info = self._unlearn(user, sets)
        info.update(self._fit(self._tuner("finetune"), self.student, user.train, user.val,
                              user_seed(self.config.seed, user.user)))
        return self.predict_probs(self.student, user.test), info

    def method_focal(self, user, sets):
        info = self._fit(self._tuner("focal"), self.student, user.train, user.val,
                         user_seed(self.config.seed, user.user))
        return self.predict_probs(self.student, user.test), info

    def method_oversample(self, user, sets):
        seed = user_seed(self.config.seed, user.user)
        index = oversample_indices(user.train.label, self.config.oversample_ratio, seed=seed)
        info = self._fit(self._tuner("finetune"), self.student, user.train.take(index), user.val, seed)
        info["train_windows_oversampled"] = int(index.size)
        return self.predict_probs(self.student, user.test), info

    def method_lgbm(self, user, sets):
        cfg = self.config
        teacher = self.run.teacher
        t0, t1 = time_since_last(user.event_timestamp, user.event_intent, self.n_intents)
        top = top_locations(np.asarray(user.train.location)[:, -1])

        def features(windows, event_index):
            probs = self.predict_probs(teacher, windows)
            return window_features(probs, np.asarray(windows.location)[:, -1], windows.timestamp,
                                   t0[event_index], t1[event_index], top)

        x_train = features(user.train, user.train_event_index)
        x_val = features(user.val, user.val_event_index) if len(user.val) else None
        x_test = features(user.test, user.test_event_index)
        booster = train_lgbm(x_train, user.train.label, x_val, user.val.label, self.n_intents,
                             num_iterations=cfg.lgbm_iterations,
                             early_stopping_rounds=cfg.lgbm_early_stopping, seed=42)
        best = booster.best_iteration or None
        scores = booster.predict(x_test, num_iteration=best, num_threads=1)
        booster.predict(x_test[:1], num_iteration=best, num_threads=1)  # warm-up
        timings = []
        for _ in range(20):
            start = time.perf_counter()
            booster.predict(x_test[:1], num_iteration=best, num_threads=1)
            timings.append(time.perf_counter() - start)
        info = {
            "lgbm_nodes": booster_size(booster),
            "lgbm_iterations": int(booster.best_iteration or booster.current_iteration()),
            "lgbm_infer_ms": float(np.median(timings) * 1e3),
            "lgbm_small_data": len(user.train) < 200,
        }
        return np.asarray(scores, np.float32).reshape(len(user.test), self.n_intents), info

    def _teacher_method(self, user, partial):
        teacher = self.run.teacher
        if self._teacher_weights is None:
            self._teacher_weights = teacher.get_weights()
        teacher.set_weights(self._teacher_weights)
        frozen = set_partial_tuning(teacher, partial)  # before the tuner's first trace
        # the teacher may keep GPT2's dropout (paper preset): seed TF per user so that a
        # user's result does not depend on the users its process ran before
        tf.random.set_seed(user_seed(self.config.seed, user.user))
        tuner = self._tuner("finetune", network=teacher, key="pp" if partial else "fp",
                            learning_rate=self.config.fp_learning_rate)
        info = self._fit(tuner, teacher, user.train, user.val, user_seed(self.config.seed, user.user))
        scores = self.predict_probs(teacher, user.test)
        info.update(parameters=int(teacher.count_params()), trainable_parameters=int(
            sum(int(np.prod(v.shape)) for v in teacher.trainable_variables)), frozen_layers=frozen)
        set_partial_tuning(teacher, False)
        teacher.set_weights(self._teacher_weights)
        return scores, info

    def method_fp(self, user, sets):
        return self._teacher_method(user, partial=False)

    def method_pp(self, user, sets):
        return self._teacher_method(user, partial=True)

    # ------------------------------------------------------------------ one user
    def run_user(self, user, methods):
        """Runs ``methods`` on ``user`` (a :class:`UserData`); returns a picklable dict."""
        sets, out = start_user_result(user, self.run, self.n_intents, self.config.static_threshold)
        for method in methods:
            self._reset(user.user)
            start = time.perf_counter()
            scores, info = getattr(self, f"method_{method}")(user, sets)
            info["seconds"] = time.perf_counter() - start
            out["methods"][method] = {"scores": scores.astype(np.float32), "info": info}
        self.student.set_weights(self.shipped_weights)
        return out


def set_partial_tuning(model, partial) -> int:
    """PP of Table 3 (OFA-style): freezes every GPT2 block's self-attention and feed-forward
    sublayers (``attn``, ``mlp``) of the teacher; layer norms, the position embedding, our
    embeddings and heads stay trainable (GPT2's unused token table ``wte`` is always frozen).
    ``partial=False`` makes them trainable again (FP). The event-reconstruction parts of the
    population stage (mask embedding, reconstruction MLP) play no part in intent prediction
    on the device and are frozen in both. Returns the number of frozen GPT2 sublayers."""
    for name in ("masking", "reconstruction_head"):
        if getattr(model, name, None) is not None:
            getattr(model, name).trainable = False
    blocks = model.backbone.gpt2.transformer.h
    for block in blocks:
        block.attn.trainable = not partial
        block.mlp.trainable = not partial
    return 2 * len(blocks) if partial else 0
