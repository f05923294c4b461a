"""The distillation phase of the population stage (PITuning Sec. 3.2.5): the on-device
student built and trained on its loss model (:mod:`pitune_tf.population.distillation_loss`)."""

from __future__ import annotations

from pitune_tf.common.keras import keras
from pitune_tf.models.factory import build_student
from pitune_tf.population.distillation_loss import Distiller
from pitune_tf.population.training_loop import fit_phase, make_optimizer


def distill_student(config, vocabs, teacher, train, val, out_dir, event_intent=None, repeat_init=None):
    """Distills the teacher into a new student (PITuning Eq. 6-7); returns the student.
    ``event_intent`` [N_E]: each event id's catalogue intent (the copy term, when
    ``config.repeat_term``) and ``repeat_init`` [N_I] its starting logits.

    The student is float32 whatever ``config.precision`` (it ships to phones as a float32
    TFLite model); ``config.jit`` XLA-compiles the distillation steps."""
    keras.utils.set_random_seed((config.seed + 1) % 2**32)  # seeds are in [0, 2^32 - 1]
    student = build_student(config, vocabs.sizes, event_intent=event_intent, repeat_init=repeat_init)
    distiller = Distiller(student, teacher, alpha=config.alpha,
                          temperature=config.temperature, name="distiller")
    distiller.compile(optimizer=make_optimizer(config.student_learning_rate, config.clipnorm),
                      jit_compile=config.jit)
    fit_phase(distiller, distiller.train_variables(), config, "student", config.epochs("student"),
              train, val, out_dir, network=student, monitor="val_hard_loss")
    return student
