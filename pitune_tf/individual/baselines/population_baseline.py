"""What the Table 2 baselines trained on the population share: the population pool (the
cloud's training windows), their pretraining, and the per-user stage (fine-tuning with the
engine's early stopping, as every method of the individual stage)."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.best_epoch_rule import BestEpochRule
from pitune_tf.common.keras import keras, tf
from pitune_tf.common.numeric import softmax
from pitune_tf.individual.engine import mean_cross_entropy, train_epoch, user_seed
from pitune_tf.individual.keras_backend import KerasBackend, latency_ms, trainable_count
from pitune_tf.population.data_preparation import run_windows


class PopulationBaseline:
    """A Table 2 baseline as an extra method of the personalization engine: a network
    trained once on the population pool (cloud side, on first use, seeded by
    ``config.seed``), then, for each user, fine-tuned on the user's training windows with
    early stopping on the user's validation windows (``PersonalizationEngine.fit``) and
    scored on the user's test windows. Subclasses give :meth:`build_network` and may replace
    :meth:`pretrain` (e.g. meta-learning) and :meth:`tuned_network` (e.g. adapters only).

    Args:
        run: the population run (``load_run``).
        config: IndividualConfig (``baseline_*`` options: the pool's size, epochs, width).
    """

    def __init__(self, run, config):
        self.run = run
        self.config = config
        self.n_intents = int(run.vocabs.n_intents)
        self._backend = None
        self._windows = None  # the run's (train, val, test) population windows, built once
        self._infer_ms = None  # Table 3's single-window time, measured once per process
        self.pretrain_losses = []

    def build_network(self) -> keras.Model:
        """The untrained network: features dict -> logits ``[batch, n_intents]``."""
        raise NotImplementedError

    def population_windows(self) -> tuple:
        """The run's (train, val, test) population windows (``run_windows``), built once."""
        if self._windows is None:
            self._windows = run_windows(self.run)
        return self._windows

    def pool(self):
        """The population pool: the run's population training windows (a seeded subset of at
        most ``baseline_pretrain_windows``; 0: all of them, the student's data)."""
        return self.population_windows()[0].subsample(self.config.baseline_pretrain_windows,
                                                      self.config.seed)

    def pretrain_learning_rate(self) -> float:
        """Adam's rate of the pretraining: ``baseline_pretrain_learning_rate``, else the
        population student's."""
        rate = self.config.baseline_pretrain_learning_rate
        return float(self.run.config.student_learning_rate if rate is None else rate)

    def start_pretraining(self) -> BestEpochRule:
        """The early-stopping rule of the pretraining (``baseline_pretrain_patience`` epochs
        without a lower population validation cross-entropy), its state reset."""
        self._validation = self.population_windows()[1]
        self._best_weights = None
        self.pretrain_val_losses = []
        return BestEpochRule(patience=self.config.baseline_pretrain_patience)

    def end_epoch(self, backend, rule, epoch) -> bool:
        """After pretraining epoch (pass) ``epoch``: scores the population validation windows,
        keeps the weights when they improve; True when the rule stops the pretraining."""
        value = mean_cross_entropy(softmax(backend.logits(self._validation)), self._validation.label)
        self.pretrain_val_losses.append(value)
        improved, stop = rule.update(epoch, value)
        if improved:
            self._best_weights = backend.get_weights()
        return stop

    def finish_pretraining(self, backend, rule) -> None:
        """Restores the best epoch's weights (:meth:`end_epoch`)."""
        if self._best_weights is not None:
            backend.set_weights(self._best_weights)
        self.pretrain_best_epoch = rule.best_epoch
        self._best_weights = self._validation = None

    def pretrain(self, backend, pool) -> None:
        """Cloud side: at most ``baseline_pretrain_epochs`` epochs of cross-entropy on the
        pool with ``backend``'s own step (the step the device runs later, traced once),
        early stopping on the population validation windows, the best epoch kept."""
        cfg = self.config
        rule, rng = self.start_pretraining(), np.random.default_rng(cfg.seed)
        for epoch in range(1, cfg.baseline_pretrain_epochs + 1):
            self.pretrain_losses.append(train_epoch(backend.train, pool, cfg.batch_size, rng))
            if self.end_epoch(backend, rule, epoch):
                break
        self.finish_pretraining(backend, rule)

    def tuned_network(self, network) -> keras.Model:
        """The network the device tunes (default: all of it)."""
        return network

    def backend(self):
        """The Keras backend of the pretrained network (built and pretrained once)."""
        if self._backend is None:
            keras.utils.set_random_seed(self.config.seed)  # the same network whichever user comes first
            network = self.build_network()
            pool = self.pool()
            network({k: tf.convert_to_tensor(v[:2]) for k, v in pool.features().items()})  # weights
            self.pretrain(KerasBackend(network, self.n_intents, learning_rate=self.pretrain_learning_rate()),
                          pool)
            self._windows = None  # the pool's memory back
            # the device starts from the pretrained weights, with the per-user rate
            self._backend = KerasBackend(self.tuned_network(network), self.n_intents,
                                         learning_rate=self.config.learning_rate)
        return self._backend

    def __call__(self, engine, user, sets):
        backend = self.backend()
        backend.reset()
        tf.random.set_seed(user_seed(self.config.seed, user.user))
        info = engine.fit(user.train, user.val, user_seed(self.config.seed, user.user),
                          backend=backend)
        scores = engine.probs(user.test, backend)
        network = backend.network
        if self._infer_ms is None:
            one = {k: tf.convert_to_tensor(v[:1]) for k, v in user.test.features().items()}
            self._infer_ms = latency_ms(network, inputs=one)
        info.update(parameters=int(network.count_params()), trainable_parameters=trainable_count(network),
                    infer_ms=self._infer_ms)
        if self.pretrain_losses:
            info["pretrain_loss_last"] = self.pretrain_losses[-1]
            info["pretrain_epochs"] = len(getattr(self, "pretrain_val_losses", []))  # epochs or passes
            info["pretrain_best_epoch"] = getattr(self, "pretrain_best_epoch", None)
        backend.reset()
        return scores, info
