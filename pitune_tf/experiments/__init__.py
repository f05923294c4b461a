"""PITuning's tables and figures from one command (``python -m trainers.experiments pituning``).

- ``suite_presets``: the suite's sizes (``SUITE_PRESETS``).
- ``pituning_suite``: the population and individual runs the suite builds and reuses, the
  trivial baselines.
- ``pituning_experiments``: the registry of experiments (Table 2, Figures 1, 4-10) and
  ``run_pituning_suite``, which runs them and writes ``<name>.csv``, ``<name>.png``,
  ``index.md`` (``pitune_tf.common.experiment_suite``).
- ``journey_report``: the report of ``trainers.pipeline``'s journey.
"""

from pitune_tf.common.lazy import lazy_exports
from pitune_tf.experiments.suite_presets import SUITE_PRESETS

# The suite and its experiments load TensorFlow: imported on first use, so that
# ``python -m trainers.experiments --help`` (which reads SUITE_PRESETS) starts fast.
_EXPORTS = {
    "PITuningSuite": "pitune_tf.experiments.pituning_suite",
    "run_pituning_suite": "pitune_tf.experiments.pituning_experiments",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SUITE_PRESETS", "PITuningSuite", "run_pituning_suite"]
