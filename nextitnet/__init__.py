"""UAF on NextItNet: dilated-CNN recommender with user-specific adaptive fine-tuning.

Networks (one class per file, exported here): ``nextitnet_backbone``, ``residual_block``,
``adapter``, ``policy_network``, ``target_head``, ``uaf_model``; objectives: ``losses``,
``gates`` and the loss models ``pretraining_loss`` (``NextItNetPretrainer``, UAF Eq. 5) and
``fine_tuning_loss`` (``UAFLearner``, UAF Eq. 8, 13-15); data: ``data``; a run
(``uaf_run.run_uaf``, called by ``python -m trainers.uaf``): ``uaf_config``, its stages
``pretraining_stage`` and ``fine_tuning_stage``, ``validation_monitor``, ``stage_fit``,
``epoch_batches``, ``fit_progress`` (what a run prints), ``evaluation``, ``reports``,
``analysis``; a finished run's mode reloaded: ``uaf_recommender``.
"""
# ruff: noqa: I001  (the environment module must come first)

from pitune_tf.common import environment  # noqa: F401  (Keras 2 before tensorflow)

from pitune_tf.common.lazy import lazy_exports

# The networks are imported on first use (TensorFlow loads then), so that the light modules
# (``nextitnet.modes``, ``nextitnet.uaf_config``, ``nextitnet.data``) start fast.
_EXPORTS = {
    "MODES": "nextitnet.modes",
    "Adapter": "nextitnet.adapter",
    "NegativeSampler": "nextitnet.negative_sampler",
    "NextItNet": "nextitnet.nextitnet_backbone",
    "NextItNetPretrainer": "nextitnet.pretraining_loss",
    "PolicyNetwork": "nextitnet.policy_network",
    "ResidualBlock": "nextitnet.residual_block",
    "TargetHead": "nextitnet.target_head",
    "UAFLearner": "nextitnet.fine_tuning_loss",
    "UAFModel": "nextitnet.uaf_model",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
