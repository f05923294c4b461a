"""What the Table 2 baselines trained on the population share: the population pool (the
cloud's training windows), their pretraining, and the per-user stage (fine-tuning with the
engine's early stopping, as every method of the individual stage)."""

from __future__ import annotations

import numpy as np

from pitune_tf.common.keras import keras, tf
from pitune_tf.individual.engine import train_epoch, user_seed
from pitune_tf.individual.keras_backend import KerasBackend, latency_ms, trainable_count
from pitune_tf.population.data_preparation import run_windows


def train_epochs(step, windows, epochs, batch_size, seed, extra=None) -> list:
    """``epochs`` shuffled epochs of ``step(features, labels, weight) -> loss`` over
    ``windows``, each the engine's :func:`~pitune_tf.individual.engine.train_epoch` (numpy
    batches of exactly ``batch_size`` rows, the last padded with weight 0) with one
    generator seeded by ``seed``; ``extra``: name -> array [n] of per-row inputs added to
    each batch's features (e.g. CLOVER's user group). Returns the epochs' mean losses."""
    rng = np.random.default_rng(seed)
    return [train_epoch(step, windows, batch_size, rng, extra) for _ in range(int(epochs))]


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
        self._infer_ms = None  # Table 3's single-window time, measured once per process
        self.pretrain_losses = []

    def build_network(self) -> keras.Model:
        """The untrained network: features dict -> logits ``[batch, n_intents]``."""
        raise NotImplementedError

    def pool(self):
        """The population pool: the run's population training windows, a seeded subset of
        at most ``baseline_pretrain_windows``."""
        train, _, _ = run_windows(self.run)
        return train.subsample(self.config.baseline_pretrain_windows, self.config.seed)

    def pretrain(self, backend, pool) -> None:
        """Cloud side: ``baseline_pretrain_epochs`` epochs of cross-entropy on the pool, with
        ``backend``'s own step (Adam at ``learning_rate``: the step the device runs later,
        traced once)."""
        cfg = self.config
        self.pretrain_losses = train_epochs(backend.train, pool, cfg.baseline_pretrain_epochs,
                                            cfg.batch_size, cfg.seed)

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
            backend = KerasBackend(network, self.n_intents, learning_rate=self.config.learning_rate)
            self.pretrain(backend, pool)
            tuned = self.tuned_network(network)
            if tuned is network:  # the pretrained weights are what the device starts from
                backend.shipped_weights = backend.get_weights()
                backend.reset()  # and a fresh optimizer
            else:
                backend = KerasBackend(tuned, self.n_intents, learning_rate=self.config.learning_rate)
            self._backend = backend
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
        backend.reset()
        return scores, info
