"""UAF on NextItNet: dilated-CNN recommender with user-specific adaptive fine-tuning.

Networks (one class per file, exported here): ``nextitnet_backbone``, ``residual_block``,
``adapter``, ``policy_network``, ``target_head``, ``uaf_model``; objectives: ``losses``,
``gates``, ``pretrainer``, ``uaf_learner``; data: ``data``; a run (``uaf_runner.run_uaf``,
called by ``python -m trainers.uaf``): ``uaf_config``, ``pretraining``, ``fine_tuning``,
``validation_monitor``, ``training``, ``epoch_batches``, ``evaluation``, ``reports``,
``analysis``.
"""
# ruff: noqa: I001  (the environment module must come first)

from pitune_tf.common import _env  # noqa: F401  (Keras 2 before tensorflow)

from nextitnet.adapter import Adapter
from nextitnet.negative_sampler import NegativeSampler
from nextitnet.nextitnet_backbone import NextItNet
from nextitnet.policy_network import PolicyNetwork
from nextitnet.pretrainer import NextItNetPretrainer
from nextitnet.residual_block import ResidualBlock
from nextitnet.target_head import TargetHead
from nextitnet.uaf_learner import UAFLearner
from nextitnet.uaf_model import MODES, UAFModel

__all__ = [
    "MODES",
    "Adapter",
    "NegativeSampler",
    "NextItNet",
    "NextItNetPretrainer",
    "PolicyNetwork",
    "ResidualBlock",
    "TargetHead",
    "UAFLearner",
    "UAFModel",
]
