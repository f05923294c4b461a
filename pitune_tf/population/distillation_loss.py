"""The student's loss model: the teacher distilled into the on-device student, L_D
(PITuning Eq. 6-7, Sec. 3.2.5, Appendix A)."""

from __future__ import annotations

from pitune_tf.common.keras import tf
from pitune_tf.common.loss_model import LossModel
from pitune_tf.losses import distillation_loss
from pitune_tf.metrics.batch_accuracy import batch_accuracy


class Distiller(LossModel):
    """Trains ``student`` on L_D = alpha * KL(softmax(M_t/eps) || softmax(M_s/eps)) * eps^2
    + (1 - alpha) * CE(M_s, L) (PITuning Eq. 6-7).

    The teacher is called with ``training=False`` under ``tf.stop_gradient``; gradients are
    taken over the student's trainable variables only. Returned: ``loss``, ``soft_loss``,
    ``hard_loss``, ``accuracy`` (of the student, batch mean).

    Args:
        student: keras Model, features -> logits M_s.
        teacher: keras Model, features -> logits M_t (never updated).
        alpha: float. alpha of PITuning Eq. 7 (Table 4: 0.5).
        temperature: float. eps of PITuning Eq. 6 (Table 4: 1).

    Example:

    >>> distiller = Distiller(student, teacher, alpha=0.5, temperature=1.0)
    >>> distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> distiller.fit(dataset_of_features_and_labels, epochs=1)
    """

    dense_gradients = True  # the same Adam step on any number of replicas (LossModel)

    def __init__(self, student, teacher, alpha=0.5, temperature=1.0, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.alpha = alpha
        self.temperature = temperature

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def train_variables(self):
        return self.student.trainable_variables

    def compute_losses(self, data, training):
        features, labels = data
        teacher_logits = tf.stop_gradient(self.teacher(features, training=False))  # M_t
        student_logits = self.student(features, training=training)  # M_s
        terms = distillation_loss(
            labels, student_logits, teacher_logits, self.alpha, self.temperature
        )
        return {**terms, "accuracy": batch_accuracy(labels, student_logits)}
