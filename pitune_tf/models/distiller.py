"""Distillation of the teacher into the on-device student (Sec. 3.2.5, Eq. 6-7, Appendix A)."""

from __future__ import annotations

from pitune_tf.common.keras import keras, tf
from pitune_tf.losses import distillation_loss


class Distiller(keras.Model):
    """Trains ``student`` on L_D = alpha * KL(softmax(M_t/eps) || softmax(M_s/eps)) * eps^2
    + (1 - alpha) * CE(M_s, L) (Eq. 6-7).

    The teacher runs outside the gradient tape with ``training=False``; gradients are taken
    over the student's trainable variables only. Reported: ``loss``, ``soft_loss``,
    ``hard_loss``, ``accuracy`` (of the student).

    Args:
        student: keras Model, features -> logits M_s.
        teacher: keras Model, features -> logits M_t (never updated).
        alpha: float. alpha of Eq. 7 (Table 4: 0.5).
        temperature: float. eps of Eq. 6 (Table 4: 1).
    """

    def __init__(self, student, teacher, alpha=0.5, temperature=1.0, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.alpha = alpha
        self.temperature = temperature
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "soft_loss", "hard_loss")
        }
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [*self.trackers.values(), self.accuracy]

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def _report(self, terms, labels, logits):
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        self.accuracy.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        features, labels = data
        teacher_logits = tf.stop_gradient(self.teacher(features, training=False))
        variables = self.student.trainable_variables
        with tf.GradientTape() as tape:
            student_logits = self.student(features, training=True)
            terms = distillation_loss(
                labels, student_logits, teacher_logits, self.alpha, self.temperature
            )
        grads = tape.gradient(terms["loss"], variables)
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, variables) if g is not None]
        )
        return self._report(terms, labels, student_logits)

    def test_step(self, data):
        features, labels = data
        teacher_logits = self.teacher(features, training=False)
        student_logits = self.student(features, training=False)
        terms = distillation_loss(
            labels, student_logits, teacher_logits, self.alpha, self.temperature
        )
        return self._report(terms, labels, student_logits)
