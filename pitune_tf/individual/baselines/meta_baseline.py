"""The meta-learned Table 2 baselines' cloud side: Reptile over the population's users with
an SGD inner step (MetaBert4Rec, CLOVER)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf
from pitune_tf.individual.baselines.population_baseline import PopulationBaseline
from pitune_tf.individual.baselines.reptile import meta_iterations, reptile, user_tasks
from pitune_tf.individual.tuning_loss_model import TuningLossModel


class MetaLearnedBaseline(PopulationBaseline):
    """A :class:`PopulationBaseline` whose pretraining is first-order meta-learning
    (:func:`~pitune_tf.individual.baselines.reptile.reptile`): tasks are the pool's users, the
    inner step SGD at ``meta_inner_learning_rate`` for ``meta_inner_steps`` steps, the outer
    step ``meta_step_size``; at most ``baseline_pretrain_epochs`` passes of inner steps over the
    pool, early stopping on the population validation windows after each pass (the best kept). The device then adapts from the meta-learned weights (the engine's fine-tuning).
    Subclasses may replace :meth:`inner_tuner` (the inner objective) and
    :meth:`task_inputs` (per-row inputs besides the window)."""

    def inner_tuner(self, network):
        return TuningLossModel(network, self.n_intents, mode="finetune")

    def task_inputs(self, pool) -> dict:
        return {}

    def pretrain(self, backend, pool) -> None:
        cfg = self.config
        network = backend.network
        tuner = self.inner_tuner(network)
        tuner.compile(optimizer=keras.optimizers.SGD(cfg.meta_inner_learning_rate))
        traced = tf.function(tuner.train_batch, reduce_retracing=True)

        def step(features, labels, weight):
            batch = ({k: tf.convert_to_tensor(v) for k, v in features.items()},
                     tf.convert_to_tensor(labels), tf.convert_to_tensor(weight))
            return traced(batch)["loss"]

        tasks = user_tasks(pool, self.task_inputs(pool))
        iterations = meta_iterations(len(pool), cfg.baseline_pretrain_epochs, cfg.meta_inner_steps,
                                     cfg.batch_size)
        rule = self.start_pretraining()  # early stopping after each pass, the best pass kept
        self.pretrain_losses = reptile(
            step, tuner.train_variables(), tasks, iterations, cfg.meta_inner_steps, cfg.meta_step_size,
            cfg.batch_size, cfg.seed, pass_iterations=meta_iterations(len(pool), 1, cfg.meta_inner_steps,
                                                                      cfg.batch_size),
            after_pass=lambda n: self.end_epoch(backend, rule, n))
        self.finish_pretraining(backend, rule)
        self.meta_tasks = len(tasks)
