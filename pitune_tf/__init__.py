"""PITuning in TensorFlow/Keras: population-to-individual tuning for on-device intent prediction.

The public names are importable from the package root; each is imported on first use, so
``import pitune_tf`` (and every command's ``--help``) does not load TensorFlow::

    from pitune_tf import PopulationConfig, Schema, read_events, run_individual, run_population

    events = read_events("log.csv", schema=Schema(columns={"user_id": "uid"}, timezone="UTC"))
    metrics = run_population(PopulationConfig(data=["events.parquet"]), "runs/mine")
"""

from pitune_tf.common import _env  # noqa: F401  (Keras 2 before tensorflow)
from pitune_tf.common.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    # errors every command reports as one line
    "UserInputError": "pitune_tf.common.errors",
    "DataError": "pitune_tf.common.errors",
    # event logs
    "read_events": "pitune_tf.data.io",
    "write_events": "pitune_tf.data.io",
    "Schema": "pitune_tf.data.schema",
    "ReadStats": "pitune_tf.data.schema",
    "Vocabularies": "pitune_tf.data.vocabularies",
    "encode_events": "pitune_tf.data.features",
    "make_windows": "pitune_tf.data.windows",
    "Windows": "pitune_tf.data.windows",
    "split_windows": "pitune_tf.data.splits",
    # networks
    "IntentPredictor": "pitune_tf.models.intent_predictor",
    "build_teacher": "pitune_tf.models.factory",
    "build_student": "pitune_tf.models.factory",
    # the population stage (PITuning Sec. 3.2)
    "PopulationConfig": "pitune_tf.population.population_config",
    "run_population": "pitune_tf.population.population_stage",
    "load_run": "pitune_tf.population.run_directory",
    "Run": "pitune_tf.population.run_directory",
    # the individual stage (PITuning Sec. 3.3)
    "IndividualConfig": "pitune_tf.individual.individual_config",
    "run_individual": "pitune_tf.individual.stage",
    # metrics (PITuning Appendix D; UAF)
    "intent_metrics": "pitune_tf.metrics.numpy_metrics",
    "rank_metrics": "pitune_tf.metrics.numpy_metrics",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DataError",
    "IndividualConfig",
    "IntentPredictor",
    "PopulationConfig",
    "ReadStats",
    "Run",
    "Schema",
    "UserInputError",
    "Vocabularies",
    "Windows",
    "__version__",
    "build_student",
    "build_teacher",
    "encode_events",
    "intent_metrics",
    "load_run",
    "make_windows",
    "rank_metrics",
    "read_events",
    "run_individual",
    "run_population",
    "split_windows",
    "write_events",
]
