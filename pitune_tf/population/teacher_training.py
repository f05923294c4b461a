"""The teacher phase of the population stage (PITuning Sec. 3.2.1-3.2.4): the teacher built,
trained on its loss model (:mod:`pitune_tf.population.teacher_loss`) and saved."""

from __future__ import annotations

from pitune_tf.common.console import status
from pitune_tf.common.keras import keras
from pitune_tf.common.precision import dtype_policy, wrap_optimizer
from pitune_tf.models.factory import build_teacher
from pitune_tf.models.teacher_io import load_teacher, save_teacher
from pitune_tf.population.teacher_loss import PopulationTrainer
from pitune_tf.population.training_loop import fit_phase, make_optimizer


def train_teacher(config, vocabs, train, val, out_dir, event_intent=None, repeat_init=None):
    """Trains the teacher with L_pop (PITuning Eq. 5), saves ``out_dir/teacher``; returns it.

    The teacher trains under ``config.precision``'s dtype policy (float32 logits and
    losses) and, with ``config.jit``, XLA-compiled steps; the teacher returned computes
    in float32 (its float32 weights reloaded), as a resumed run's.

    A run directory that already holds ``teacher/`` loads it instead (a resumed run).
    ``event_intent`` [N_E]: each event id's catalogue intent (the copy term, when
    ``config.repeat_term``) and ``repeat_init`` [N_I] its starting logits.
    """
    if (out_dir / "teacher").is_dir():
        status("[teacher] already trained: loading it")
        return load_teacher(out_dir / "teacher", dropout=config.dropout)
    keras.utils.set_random_seed(config.seed)
    with dtype_policy(config.precision):  # --precision: the teacher's layers only
        teacher = build_teacher(config, vocabs.sizes, event_intent=event_intent, repeat_init=repeat_init)
    trainer = PopulationTrainer(teacher, reconstruction=config.reconstruction,
                                passes=config.reconstruction_passes, name="population")
    optimizer = make_optimizer(config.teacher_learning_rate, config.clipnorm)
    trainer.compile(optimizer=wrap_optimizer(optimizer, config.precision),
                    jit_compile=config.jit)
    fit_phase(trainer, trainer.train_variables(), config, "teacher", config.epochs("teacher"),
              train, val, out_dir, network=teacher, monitor="val_intent_loss")
    save_teacher(teacher, out_dir / "teacher")
    if config.precision != "float32":  # distill from the float32 teacher a resumed run loads
        return load_teacher(out_dir / "teacher", dropout=config.dropout)
    return teacher
