"""The individual-stage baselines that need the population teacher (Keras only): LightGBM on
teacher features (PITuning Appendix E) and the teacher tuned per user, fully (FP) or
partially (PP) (PITuning Table 3). They plug into the personalization loop as extra methods.
"""

from __future__ import annotations

import time

import numpy as np

from pitune_tf.common.keras import tf
from pitune_tf.individual.engine import user_seed
from pitune_tf.individual.keras_backend import KerasBackend
from pitune_tf.individual.lgbm_features import (
    booster_size,
    time_since_last,
    top_locations,
    train_lgbm,
    window_features,
)
from pitune_tf.individual.methods import TEACHER_METHODS
from pitune_tf.models.gpt2_backbone import set_partial_tuning as freeze_gpt2_sublayers


def set_partial_tuning(model, partial) -> int:
    """PP of Table 3 (OFA-style) on the teacher: GPT2's attention and feed-forward sublayers
    frozen (:func:`pitune_tf.models.gpt2_backbone.set_partial_tuning`), or trainable again
    with ``partial=False`` (FP). The event-reconstruction parts of the population stage (mask
    embedding, reconstruction MLP) play no part in intent prediction on the device and are
    frozen in both. Returns the number of frozen GPT2 sublayers."""
    for name in ("masking", "reconstruction_head"):
        if getattr(model, name, None) is not None:
            getattr(model, name).trainable = False
    return freeze_gpt2_sublayers(model.backbone.gpt2.transformer, partial)


class TeacherMethods:
    """``lgbm``, ``fp`` and ``pp`` for a :class:`~pitune_tf.individual.engine.
    PersonalizationEngine` (``extra_methods=TeacherMethods(run, config).as_dict()``).

    The teacher is loaded on first use; each of FP / PP has its own Keras backend (its
    variable list is fixed when its step is first traced), both starting from the population
    teacher's weights.
    """

    def __init__(self, run, config):
        self.run = run
        self.config = config
        self._backends = {}

    def as_dict(self) -> dict:
        """``{name: method}`` of ``TEACHER_METHODS`` (``pitune_tf.individual.methods``)."""
        return {name: getattr(self, name) for name in TEACHER_METHODS}

    def backend(self, partial) -> KerasBackend:
        key = "pp" if partial else "fp"
        if key not in self._backends:
            teacher = self.run.teacher
            set_partial_tuning(teacher, partial)  # before the backend's first trace
            self._backends[key] = KerasBackend(
                teacher, int(self.run.vocabs.n_intents),
                learning_rate=self.config.fp_learning_rate)
            set_partial_tuning(teacher, False)
        return self._backends[key]

    def describe(self, partial) -> dict:
        """Table 3's columns of the FP (``partial=False``) or PP teacher."""
        backend = self.backend(partial)
        set_partial_tuning(backend.network, partial)
        row = backend.describe()
        set_partial_tuning(backend.network, False)
        return row

    def lgbm(self, engine, user, sets):
        cfg = self.config
        teacher = self.backend(partial=False)
        t0, t1 = time_since_last(user.event_timestamp, user.event_intent, engine.n_intents)
        top = top_locations(np.asarray(user.train.location)[:, -1])

        def features(windows, event_index):
            probs = engine.probs(windows, teacher)
            return window_features(probs, np.asarray(windows.location)[:, -1], windows.timestamp,
                                   t0[event_index], t1[event_index], top)

        x_train = features(user.train, user.train_event_index)
        x_val = features(user.val, user.val_event_index) if len(user.val) else None
        x_test = features(user.test, user.test_event_index)
        booster = train_lgbm(x_train, user.train.label, x_val, user.val.label, engine.n_intents,
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
        return np.asarray(scores, np.float32).reshape(len(user.test), engine.n_intents), info

    def _tuned_teacher(self, engine, user, partial):
        backend = self.backend(partial)
        backend.reset()
        teacher = backend.network
        frozen = set_partial_tuning(teacher, partial)
        # the teacher may keep GPT2's dropout (paper preset): seed TF per user so that a
        # user's result does not depend on the users its process ran before
        tf.random.set_seed(user_seed(self.config.seed, user.user))
        info = engine.fit(user.train, user.val, user_seed(self.config.seed, user.user),
                          backend=backend)
        scores = engine.probs(user.test, backend)
        info.update(parameters=int(teacher.count_params()), trainable_parameters=int(
            sum(int(np.prod(v.shape)) for v in teacher.trainable_variables)), frozen_layers=frozen)
        set_partial_tuning(teacher, False)
        backend.reset()
        return scores, info

    def fp(self, engine, user, sets):
        return self._tuned_teacher(engine, user, partial=False)

    def pp(self, engine, user, sets):
        return self._tuned_teacher(engine, user, partial=True)
