"""The personalization engine of a population run on a backend (``--backend``): the Keras
student with every Keras-only method (the teacher's, MPDA, the Table 2 baselines), or the
``student.tflite`` signatures only (what a phone runs)."""

from __future__ import annotations

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras
from pitune_tf.individual.baselines import table2_methods
from pitune_tf.individual.engine import PersonalizationEngine
from pitune_tf.individual.keras_backend import KerasBackend
from pitune_tf.individual.litert_backend import LiteRTBackend
from pitune_tf.individual.methods import BACKENDS, KERAS, LITERT
from pitune_tf.individual.mpda import MPDA
from pitune_tf.individual.teacher_methods import TeacherMethods
from pitune_tf.litert.runtime import Runtime


def build_engine(run, config, backend=KERAS, model=None, litert_backend="auto"):
    """The personalization engine of ``run`` on ``backend``.

    Args:
        run: the population run (``load_run``).
        config: IndividualConfig.
        backend: str. ``"keras"`` (the student in Keras; the teacher-based baselines too) or
            ``"litert"`` (the ``model`` file's signatures only).
        model: str or Path. The ``student.tflite`` for ``backend="litert"``.
        litert_backend: str. The interpreter (``pitune_tf.litert.runtime.Runtime``'s ``backend``).
    """
    n_intents = int(run.vocabs.n_intents)
    if backend == KERAS:
        keras.utils.set_random_seed(config.seed)
        student = KerasBackend(run.student, n_intents, learning_rate=config.learning_rate,
                               unlearn_learning_rate=config.unlearn_learning_rate,
                               lam=config.lam, min_log_prob=config.min_log_prob,
                               focal_gamma=config.focal_gamma, train_part=config.train_part)
        teacher_methods = TeacherMethods(run, config)
        mpda = MPDA(run, neighbours=config.mpda_neighbours, ratio=config.mpda_ratio)
        engine = PersonalizationEngine(student, run, config,
                                       extra_methods={**teacher_methods.as_dict(), "mpda": mpda,
                                                      **table2_methods(run, config)})
        engine.teacher_methods = teacher_methods  # Table 3's FP / PP rows
        return engine
    if backend == LITERT:
        if model is None:
            raise UserInputError("--backend litert needs --model (a student.tflite)")
        runtime = Runtime(model, backend=litert_backend)
        if runtime.history != int(run.config.history):
            raise UserInputError(f"the model's window length is {runtime.history}, the run's "
                                 f"{run.config.history}: was it converted from this run?")
        student = LiteRTBackend(runtime, n_intents, learning_rate=config.learning_rate,
                                unlearn_learning_rate=config.unlearn_learning_rate,
                                lam=config.lam, train_part=config.train_part)
        return PersonalizationEngine(student, run, config, batch_size=runtime.batch_size)
    raise UserInputError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
