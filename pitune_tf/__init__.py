"""pitune-tf: PITuning (KDD 2024) and UAF (TKDE) in TensorFlow/Keras.

On-device user-intent prediction: a GPT2-based teacher is tuned on the population's event
logs and distilled into a small student (``train``), which ships to phones as a TFLite model
that trains on the device (``export``) and is personalized for each user by unlearning and
fine-tuning (``personalize``). UAF (``UAFRecommender``) adapts a NextItNet per user across
domains. Every name below is imported on first use: ``import pitune_tf`` loads no TensorFlow.

Your own data -> train -> predictions -> phone bundle -> personalization::

    import pitune_tf
    from pitune_tf.data.synthetic import generate

    # Your own log: a CSV or Parquet file of events under your column names. A tiny
    # synthetic log stands in for it here (columns uid, ts, app, intent, location).
    columns = {"user_id": "uid", "timestamp": "ts", "event": "app"}
    log = generate("tiny", seed=0).population.rename(columns=columns)
    log.to_csv("my_log.csv", index=False)
    schema = pitune_tf.Schema(columns=columns)

    metrics = pitune_tf.train("runs/mine", "my_log.csv", schema=schema, preset="tiny")
    print("student test Prec_w", round(metrics["student"]["test"]["prec_w"], 4))

    predictor = pitune_tf.NextIntentPredictor.from_run("runs/mine")
    print(predictor.predict_next("my_log.csv", top_k=3, schema=schema).head(6))

    files = pitune_tf.export("runs/mine", quantized=False)  # student.tflite, labels.txt, ...
    summary = pitune_tf.personalize("runs/mine", ["none", "finetune", "pituning"],
                                    backend="litert")  # through student.tflite's signatures
    print(summary["table"])

The same from the command line: ``python -m trainers.pipeline --out runs/demo`` (the whole
journey on embedded synthetic data), ``trainers.population``, ``tflite.convert``,
``trainers.individual``, ``pitune_tf.predict``, ``trainers.uaf``; each takes ``--help``.

Documentation: the ``docs/`` folder of the repository (an MkDocs site: ``pip install -e
".[docs]" && mkdocs serve``), starting with ``docs/index.md``.
"""

from typing import TYPE_CHECKING

from pitune_tf.common import environment  # noqa: F401  (Keras 2 before tensorflow)
from pitune_tf.common.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time _EXPORTS, on first use
    from nextitnet.uaf_recommender import UAFRecommender
    from pitune_tf.api import export, personalize, train
    from pitune_tf.common.errors import DataError, UserInputError
    from pitune_tf.data.features import encode_events
    from pitune_tf.data.io import read_events, write_events
    from pitune_tf.data.schema import ReadStats, Schema
    from pitune_tf.data.splits import split_windows
    from pitune_tf.data.vocabularies import Vocabularies
    from pitune_tf.data.windows import Windows, make_windows
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.stage import run_individual
    from pitune_tf.metrics.numpy_metrics import intent_metrics, rank_metrics
    from pitune_tf.models.factory import build_student, build_teacher
    from pitune_tf.models.intent_predictor import IntentPredictor
    from pitune_tf.population.population_config import PopulationConfig
    from pitune_tf.population.population_stage import run_population
    from pitune_tf.population.run_directory import Run, load_run
    from pitune_tf.prediction.next_intent_predictor import NextIntentPredictor

__version__ = "0.1.0"

_EXPORTS = {
    # the user's journey
    "train": "pitune_tf.api",
    "personalize": "pitune_tf.api",
    "export": "pitune_tf.api",
    "NextIntentPredictor": "pitune_tf.prediction.next_intent_predictor",
    "UAFRecommender": "nextitnet.uaf_recommender",
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
    "train",
    "personalize",
    "export",
    "NextIntentPredictor",
    "UAFRecommender",
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
