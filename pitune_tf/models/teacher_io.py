"""Saving and loading the teacher: GPT2 in Hugging Face format plus PITuning's layers.

Layout of ``TEACHER_DIR``::

    backbone/config.json, backbone/tf_model.h5   # the (tuned) GPT2, HF TF format
    teacher.json                                 # IntentPredictor arguments
    layers.npz                                   # weights of every non-GPT2 layer, by name
                                                 # (the repeat mixture's learned logits too)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pitune_tf.common.atomic import atomic_path, write_json
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.json_files import read_json
from pitune_tf.models import gpt2_checkpoint
from pitune_tf.models.gpt2_backbone import GPT2Backbone
from pitune_tf.models.intent_predictor import IntentPredictor


def _own_layers(model):
    names = ("embedding", "attention", "head", "masking", "reconstruction_head", "repeat")
    return {name: getattr(model, name) for name in names if getattr(model, name) is not None}


def save_teacher(model: IntentPredictor, directory) -> None:
    """Writes the teacher into ``directory`` atomically (see the module docstring)."""
    with atomic_path(directory) as tmp:
        tmp = Path(tmp)
        tmp.mkdir(parents=True)
        gpt2_checkpoint.save_backbone(model.backbone.gpt2, tmp / "backbone")
        config = model.get_config()
        config.pop("backbone")
        config.pop("name", None)
        config.pop("trainable", None)
        config["tuning"] = model.backbone.tuning
        write_json(tmp / "teacher.json", config)
        arrays = {
            f"{name}/{i}": weight
            for name, layer in _own_layers(model).items()
            for i, weight in enumerate(layer.get_weights())
        }
        np.savez(tmp / "layers.npz", **arrays)


def load_teacher(directory, dropout=None) -> IntentPredictor:
    """The teacher saved by :func:`save_teacher`, built and with its weights."""
    directory = Path(directory)
    for name in ("teacher.json", "layers.npz", "backbone"):
        if not (directory / name).exists():
            raise UserInputError(f"teacher directory is missing {directory / name}")
    config = read_json(directory / "teacher.json")
    tuning = config.pop("tuning", "full")
    gpt2 = gpt2_checkpoint.load_local(directory / "backbone", dropout=dropout)
    model = IntentPredictor(
        backbone=GPT2Backbone(gpt2, tuning=tuning, name="gpt2_backbone"), name="teacher",
        **config,
    )
    model.build_model()
    with np.load(directory / "layers.npz") as arrays:
        for name, layer in _own_layers(model).items():
            count = len(layer.weights)
            if name == "repeat" and f"{name}/0" not in arrays.files:
                continue  # a teacher saved before its repeat logits were: their initial values
            layer.set_weights([arrays[f"{name}/{i}"] for i in range(count)])
    return model
