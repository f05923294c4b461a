"""PITuning's tables and figures from one command (``python -m trainers.experiments pituning``).

- ``pituning_suite``: the suite's settings (``SUITE_PRESETS``), the population and
  individual runs it builds and reuses, the trivial baselines.
- ``pituning_experiments``: the registry of experiments (Table 2, Figures 1, 4, 7-10).
- ``run_pituning_suite``: runs them and writes ``<name>.csv``, ``<name>.png``, ``index.md``
  (``pitune_tf.common.experiment_suite``).
"""

from __future__ import annotations

from pitune_tf.experiments.pituning_suite import SUITE_PRESETS, PITuningSuite


def run_pituning_suite(run_dir, out_dir, preset="demo", seeds=3, first_seed=None, only=None, workers=1) -> dict:
    """Runs PITuning's experiments on the population run ``run_dir`` into ``out_dir``;
    returns ``{name: "ran" | "reused"}``.

    Args:
        run_dir: str or Path. A finished population run.
        out_dir: str or Path. The experiments folder.
        preset: str. A key of ``SUITE_PRESETS`` (tiny, demo, full).
        seeds: int. Seeds of each individual-level setting (mean ± std).
        first_seed: int or None. The first seed (default: the run's seed).
        only: list of experiment names or None (all).
        workers: int. Processes of the individual stage.
    """
    from pitune_tf.common.experiment_suite import run_suite
    from pitune_tf.experiments.pituning_experiments import registry

    registry.select(only)  # unknown names fail before any work
    suite = PITuningSuite(run_dir, out_dir, preset=preset, seeds=seeds, first_seed=0, workers=workers)
    suite.first_seed = int(suite.run.config.seed) if first_seed is None else int(first_seed)
    return run_suite(registry, suite, out_dir, only)


__all__ = ["SUITE_PRESETS", "PITuningSuite", "run_pituning_suite"]
