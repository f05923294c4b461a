"""CLOVER (Wei and He, "Comprehensive Fair Meta-learned Recommender System", KDD 2022,
PITuning's reference [44]; PITuning Appendix C: "a meta-learned recommendation model which
considers individual, counterfactual and group fairness through an adversarial learning
method"), a PITuning Table 2 baseline, as the individual-stage method ``clover``.

What is kept: a meta-learned recommender (a meta-learned initialization over the users'
tasks, adapted per user) whose training objective adds an adversarial fairness term: an
adversary predicts the user's group from the user representation and the recommender is
trained against it (here by gradient reversal, :class:`~pitune_tf.layers.GradientReversal`),
in every meta-training step (CLOVER's multi-task adversarial scheme); the base model is
MeLU-style (embeddings of the user's side information, an MLP; :class:`CloverNetwork`).

What is adapted: (1) first-order meta-learning, Reptile
(:func:`~pitune_tf.individual.baselines.reptile.reptile`), instead of CLOVER's MAML-style
local / global updates; (2) logs have no sensitive attribute, so the group is the user's
activity: ``1`` when the user has at least the median number of windows in the pool, else
``0`` (active against inactive users); (3) only the group-fairness adversary is
implemented (not CLOVER's individual and counterfactual terms); (4) the per-user adaptation
is the engine's fine-tuning with cross-entropy only (a single user is one group); the
adversary's weight is ``clover_adversary_weight``.
"""

from __future__ import annotations

import numpy as np

from pitune_tf.common.keras import keras
from pitune_tf.common.loss_model import LossModel
from pitune_tf.individual.baselines.clover_network import CloverNetwork
from pitune_tf.individual.baselines.meta_baseline import MetaLearnedBaseline
from pitune_tf.losses import sparse_cross_entropy


def activity_groups(users) -> np.ndarray:
    """Per row, its user's group: 1 when the user has at least the median number of rows
    among the users (active), else 0. ``users``: array [n] of user ids."""
    users = np.asarray(users).astype(str)
    _, inverse, counts = np.unique(users, return_inverse=True, return_counts=True)
    return (counts >= np.median(counts)).astype(np.int32)[inverse]


class AdversarialFairnessTuner(LossModel):
    """``loss = CE(intent) + adversary_weight * CE(group | GRL(u))`` on a batch
    ``(features with "group", labels[, sample_weight])`` (CLOVER's recommendation loss plus
    its adversarial group-fairness term; the gradient reversal inside the network makes one
    step train the adversary to find the group and the recommender to hide it).

    Args:
        network: CloverNetwork.
        adversary_weight: float.
    """

    def __init__(self, network, adversary_weight=0.5, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.adversary_weight = float(adversary_weight)

    def train_variables(self):
        return self.network.trainable_variables

    def compute_losses(self, data, training):
        x, target, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        features = {k: v for k, v in x.items() if k != "group"}
        out = self.network.forward(features, training=training)
        ce = sparse_cross_entropy(target, out["logits"], sample_weight=sample_weight)
        adversary = sparse_cross_entropy(x["group"], out["group_logits"], sample_weight=sample_weight)
        return {"loss": ce + self.adversary_weight * adversary, "ce": ce, "adversary_ce": adversary}

    def get_config(self):
        return {"adversary_weight": self.adversary_weight}


class Clover(MetaLearnedBaseline):
    """The ``clover`` extra method (see the module docstring)."""

    def build_network(self):
        sizes = self.run.vocabs.sizes
        return CloverNetwork(int(sizes["location"]), int(sizes["slot"]), int(sizes["event"]),
                             self.n_intents, width=self.config.baseline_width, name="clover")

    def inner_tuner(self, network):
        return AdversarialFairnessTuner(network, self.config.clover_adversary_weight)

    def task_inputs(self, pool) -> dict:
        return {"group": activity_groups(pool.user)}
