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

import math

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
    if hasattr(student.backbone, "position_embedding"):  # none in a streaming student
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


def forward_graph(student, history):
    """The graph of ``student``'s forward pass on one window of ``history`` events."""
    from pitune_tf.common.keras import tf
    from pitune_tf.data.windows import STREAM_KEYS

    specs = {k: tf.TensorSpec([1, history], tf.int32, name=k) for k in STREAM_KEYS}
    specs["mask"] = tf.TensorSpec([1, history], tf.float32, name="mask")
    return tf.function(lambda f: student(f, training=False)).get_concrete_function(specs).graph


def step_graph(student):
    """The graph of a streaming ``student``'s :meth:`IntentPredictor.step` on one event."""
    from pitune_tf.common.keras import tf
    from pitune_tf.data.windows import STREAM_KEYS

    specs = {k: tf.TensorSpec([1], tf.int32, name=k) for k in STREAM_KEYS}
    state = tf.TensorSpec([1, student.state_size], tf.float32, name="state")
    return tf.function(lambda f, s: student.step(f, s)).get_concrete_function(specs, state).graph


def matmul_flops(graph) -> dict:
    """2 m k n of every MatMul / BatchMatMul op of ``graph``, summed by part of the student:
    ``block_i`` (decoder block i) or ``head`` (everything else: IAT, intent head, ...)."""
    parts: dict[str, int] = {}
    for op in graph.get_operations():
        if op.type == "MatMul":
            a = op.inputs[0].shape.as_list()
            k = a[0] if op.get_attr("transpose_a") else a[1]
        elif op.type.startswith("BatchMatMul"):
            a = op.inputs[0].shape.as_list()
            k = a[-2] if op.get_attr("adj_x") else a[-1]
        elif op.type == "Einsum":
            raise ValueError(f"{op.name}: Einsum is not counted; extend matmul_flops")
        else:
            continue
        scope = [s for s in op.name.split("/") if s.startswith("block_")]
        part = scope[0] if scope else "head"
        parts[part] = parts.get(part, 0) + int(2 * k * math.prod(op.outputs[0].shape.as_list()))
    return parts


def step_flops(student, history) -> dict:
    """The matmul FLOPs of one window: ``forward`` (``infer``), ``by_part`` (decoder block /
    head) and ``steps``: per train part, a training step's estimate, the forward pass plus
    twice the forward FLOPs of the weights the part updates (the backward pass stops below
    it; element-wise ops and embedding gathers are left out)."""
    by_part = matmul_flops(forward_graph(student, history))
    forward = sum(by_part.values())
    blocks = sorted((p for p in by_part if p != "head"), key=lambda p: int(p.split("_")[1]))

    def trained(part):  # forward FLOPs of the weights a train part updates
        if part == ALL:
            return forward
        k = 0 if part == HEAD else int(part[len("top"):])
        return by_part.get("head", 0) + sum(by_part[b] for b in blocks[len(blocks) - k:])

    return {"forward": forward, "by_part": by_part,
            "steps": {p: forward + 2 * trained(p) for p in train_parts(student)}}


def signature_flops(student, history, batch_size) -> dict:
    """The matmul FLOPs of one call of each phone signature (:func:`step_flops`): ``infer``
    per window, ``infer_step`` per event (a streaming student), and ``train`` /
    ``train_<part>`` / ``unlearn`` per step of ``batch_size`` windows."""
    flops = step_flops(student, history)
    out = {"infer": flops["forward"]}
    if getattr(student, "streaming", False):
        out["infer_step"] = sum(matmul_flops(step_graph(student)).values())
    for part, step in flops["steps"].items():
        out["train" if part == ALL else f"train_{part}"] = batch_size * step
    out["unlearn"] = out["train"]
    return out
