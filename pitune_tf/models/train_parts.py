"""Which part of the student a fine-tuning step trains: the top of the network only, so
that the backward pass stops below it (cheaper on a phone), or all of it.

Parts, from the cheapest: ``head`` (the intent head of PITuning Eq. 4, the IAT of Eq. 3,
the repeat term and the decoder's final layer norm), ``top1`` ... ``topK`` (the head and the
last k of the K decoder blocks), ``all`` (every trainable variable, embeddings and position
embeddings included: what ``train`` has always trained). UAF fine-tunes a per-user choice of
residual blocks (UAF Eq. 6); these parts are its top-down special case on the student.

One definition for both paths: the phone's ``train_<part>`` signatures
(:class:`tflite.student_module.StudentModule`) and the Keras tuner
(:class:`pitune_tf.individual.tuning_loss_model.TuningLossModel`'s ``train_part``).
"""

from __future__ import annotations

ALL = "all"
HEAD = "head"


def train_parts(student) -> tuple[str, ...]:
    """The parts of ``student`` from the cheapest: ``("head", "top1", ..., "topK", "all")``.

    Args:
        student: the student (:class:`pitune_tf.models.IntentPredictor` with a
            :class:`pitune_tf.layers.TransformerDecoder` backbone).
    """
    return (HEAD, *(f"top{k}" for k in range(1, len(_blocks(student)) + 1)), ALL)


def part_variables(student, part: str) -> list:
    """The trainable variables of ``part`` in the order of ``student.trainable_variables``
    (the order of the weights vector), so that a step over them is a step over a subset of
    ``train``'s variables.

    Args:
        student: as for :func:`train_parts`.
        part: str. One of :func:`train_parts`.
    """
    parts = train_parts(student)
    if part not in parts:
        raise ValueError(f"unknown train part {part!r}; the student has {', '.join(parts)}")
    variables = list(student.trainable_variables)
    if part == ALL:
        return variables
    blocks = _blocks(student)
    k = 0 if part == HEAD else int(part[len("top"):])
    frozen = {id(v) for v in student.embedding.trainable_variables}
    frozen.add(id(student.backbone.position_embedding))
    for block in blocks[:len(blocks) - k]:
        frozen.update(id(v) for v in block.trainable_variables)
    return [v for v in variables if id(v) not in frozen]


def _blocks(student) -> list:
    blocks = getattr(getattr(student, "backbone", None), "blocks", None)
    if blocks is None:
        raise ValueError("train parts need the student's TransformerDecoder (a model with "
                         "backbone.blocks)")
    return list(blocks)
