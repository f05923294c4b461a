"""LSAT, Long- and Short-term Adaptation-aware Tuning (Shi, Zhang, Xu, Chen, Feng, He, Tian,
"Preliminary Study on Incremental Learning for Large Language Model-based Recommender
Systems", arXiv 2312.15599, PITuning's reference [35]; PITuning Appendix C: "two adaptation
LoRA modules learn long-term and short-term user preferences separately and then integrates
them"), a PITuning Table 2 baseline, as the individual-stage method ``lsat``.

What is kept: the LM (the population run's GPT2 teacher) stays frozen; two LoRA adapters
(:class:`~pitune_tf.layers.LoRADense` on every block's fused query / key / value projection,
rank ``lora_rank``, scale ``lora_alpha / lora_rank``) are trained per user, the long-term one
on all of the user's training windows, the short-term one on the most recent
``lsat_short_share`` of them; the two are then merged into one model in weight space,
``W = W_0 + m dW_long + (1 - m) dW_short`` (LSAT's parameter merging).

What is adapted: (1) the LM reads the events through the teacher's context embedding and
predicts the intent with its IAT head (LSAT prompts a text LLM and generates the item's
title); (2) the merge weight ``m`` is chosen on the user's validation windows from
``LSAT_MERGE_WEIGHTS`` (LSAT fixes its merging rule); (3) each adapter is trained with the
engine's early stopping on the user's validation windows, like every method of the table.
"""

from __future__ import annotations

import numpy as np

from pitune_tf.common.keras import tf
from pitune_tf.individual.baselines.lora_adapters import AdapterOnly, add_lora
from pitune_tf.individual.engine import user_seed
from pitune_tf.individual.keras_backend import KerasBackend, trainable_count
from pitune_tf.models.teacher_io import load_teacher

LSAT_MERGE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # m of the long-term adapter


def recent_windows(windows, share):
    """The most recent ``share`` of ``windows`` (rows are in time order), at least one."""
    n = len(windows)
    return windows.take(slice(n - max(1, int(round(share * n))), n))


def merge_adapters(adapters, long_deltas, short_deltas, weight) -> None:
    """Folds ``weight * dW_long + (1 - weight) * dW_short`` into each adapter's base kernel
    (the adapters' own ``B`` zeroed)."""
    for layer, long, short in zip(adapters, long_deltas, short_deltas):
        layer.merge(weight * long + (1.0 - weight) * short)


class LSAT:
    """The ``lsat`` extra method of a ``PersonalizationEngine``.

    Args:
        run: the population run (its ``teacher/`` is loaded again: the LM LSAT adapts).
        config: IndividualConfig (``lora_rank``, ``lora_alpha``, ``lsat_short_share``).
    """

    def __init__(self, run, config):
        self.run = run
        self.config = config
        self._backend = None
        self.adapters = []

    def backend(self):
        """The teacher with its LoRA adapters behind a Keras backend (built once)."""
        if self._backend is None:
            teacher = load_teacher(self.run.run_dir / "teacher")  # its own copy: FP / PP tune theirs
            self.adapters = add_lora(teacher.backbone.gpt2.transformer, self.config.lora_rank,
                                     self.config.lora_alpha, seed=self.config.seed)
            network = AdapterOnly(teacher, self.adapters, name="lsat")
            network(teacher.dummy_inputs(), training=False)
            self._backend = KerasBackend(network, int(self.run.vocabs.n_intents),
                                         learning_rate=self.config.learning_rate)
        return self._backend

    def deltas(self):
        return [layer.delta().numpy() for layer in self.adapters]

    def __call__(self, engine, user, sets):
        cfg = self.config
        backend = self.backend()
        seed = user_seed(cfg.seed, user.user)
        backend.reset()
        tf.random.set_seed(seed)
        long_info = engine.fit(user.train, user.val, seed, backend=backend)
        long = self.deltas()
        backend.reset()
        short_train = recent_windows(user.train, cfg.lsat_short_share)
        short_info = engine.fit(short_train, user.val, seed, backend=backend)
        short = self.deltas()
        losses = []
        for weight in LSAT_MERGE_WEIGHTS:  # m chosen on validation (the long-term one without)
            backend.reset()
            merge_adapters(self.adapters, long, short, weight)
            losses.append(engine.cross_entropy(user.val, backend) if len(user.val) else 0.0)
        weight = LSAT_MERGE_WEIGHTS[int(np.argmin(losses))] if len(user.val) else 1.0
        backend.reset()
        merge_adapters(self.adapters, long, short, weight)
        scores = engine.probs(user.test, backend)
        info = {**long_info, "lsat_merge_weight": float(weight), "lsat_short_windows": len(short_train),
                "lsat_short_best_epoch": short_info["best_epoch"],
                "val_ce_merged": float(min(losses)) if len(user.val) else float("nan"),
                "trainable_parameters": trainable_count(backend.network)}
        backend.reset()
        return scores, info
