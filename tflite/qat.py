"""Quantization-aware fine-tuning (QAT) of the student's dense layers with tfmot.

The student is a subclassed Keras model whose ``Dense`` layers sit inside custom layers, so
``tfmot.quantization.keras.quantize_model`` (Sequential / functional models only) cannot be
used. Instead every ``keras.layers.Dense`` found inside the student's layers is replaced, on a
fresh copy loaded from ``RUN/student.keras``, by a ``tfmot.quantization.keras.QuantizeWrapperV2``
whose :class:`KernelQuantizeConfig` fake-quantizes the kernel to 8 bits
(``LastValueQuantizer``: symmetric, per-tensor, min/max = the kernel's last range). The copy
is fine-tuned with ``pitune_tf.losses.sparse_cross_entropy`` on the run's population training
windows, then its float weights are copied into a plain (unwrapped) student, which
:func:`export_qat` exports with dynamic-range quantization as ``student_qat_int8.tflite``
(``python -m tflite.convert --qat-epochs N``) and scores against the plain int8 model.

Activations are not fake-quantized: dynamic-range models keep float activations.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import tensorflow_model_optimization as tfmot

from pitune_tf.common.epoch_log import StepProgress
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf
from pitune_tf.litert.runtime import Runtime
from pitune_tf.losses import sparse_cross_entropy
from pitune_tf.metrics import intent_metrics
from pitune_tf.population.data_preparation import run_windows
from pitune_tf.population.run_directory import load_run
from tflite.export import MODEL_FILES, export_inference

quantize_keras = tfmot.quantization.keras


class KernelQuantizeConfig(quantize_keras.QuantizeConfig):
    """Fake-quantizes a Dense kernel (8-bit symmetric per-tensor ``LastValueQuantizer``);
    no activation or output quantization."""

    def __init__(self, num_bits=8):
        self.num_bits = int(num_bits)
        self.kernel_quantizer = quantize_keras.quantizers.LastValueQuantizer(
            num_bits=self.num_bits, per_axis=False, symmetric=True, narrow_range=False
        )

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, self.kernel_quantizer)]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {"num_bits": self.num_bits}


def wrap_dense_layers(model, num_bits=8) -> list:
    """Replaces, in place, every ``keras.layers.Dense`` held by ``model``'s (nested) layers,
    as an attribute or inside a list attribute, by a ``QuantizeWrapperV2`` with
    :class:`KernelQuantizeConfig`; returns the wrappers. The wrapped Dense keeps its variables,
    so the model's float weights are the same variable objects as before."""
    wrappers = []
    seen = set()

    def wrap(dense):
        wrapper = quantize_keras.QuantizeWrapperV2(dense, KernelQuantizeConfig(num_bits))
        wrappers.append(wrapper)
        return wrapper

    def visit(layer):
        if id(layer) in seen or isinstance(layer, quantize_keras.QuantizeWrapper):
            return
        seen.add(id(layer))
        for name, value in list(vars(layer).items()):
            if name.startswith("_"):
                continue
            if isinstance(value, keras.layers.Dense):
                setattr(layer, name, wrap(value))
            elif isinstance(value, keras.layers.Layer):
                visit(value)
            elif isinstance(value, list):
                for i, item in enumerate(list(value)):
                    if isinstance(item, keras.layers.Dense):
                        value[i] = wrap(item)
                    elif isinstance(item, keras.layers.Layer):
                        visit(item)

    visit(model)
    return wrappers


def build_qat_student(student, num_bits=8):
    """Wraps ``student``'s Dense layers in place and builds the wrappers with one eager
    training-mode call (sets each kernel quantizer's range); returns ``(student, wrappers)``."""
    wrappers = wrap_dense_layers(student, num_bits=num_bits)
    if not wrappers:
        raise ValueError("the student has no Dense layer to quantize")
    student(student.dummy_inputs(), training=True)
    return student, wrappers


def finetune(model, windows, epochs=1, batch_size=128, learning_rate=2e-4, seed=0,
             quiet=False) -> list:
    """Adam on ``sparse_cross_entropy`` over ``windows`` for ``epochs`` seeded shuffles;
    returns the mean loss of each epoch, each also shown as ``[qat] epoch e/E: loss ... (s)``
    (a bar on a terminal unless ``quiet``: :class:`pitune_tf.common.epoch_log.StepProgress`)."""
    optimizer = keras.optimizers.Adam(learning_rate)
    features = {k: tf.constant(v) for k, v in windows.features().items()}
    labels = tf.constant(windows.label)
    variables = model.trainable_variables

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = sparse_cross_entropy(y, model(x, training=True))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        return loss

    rng = np.random.default_rng(seed)
    losses = []
    progress = StepProgress("qat", int(epochs), quiet=quiet)
    for epoch in range(int(epochs)):
        started = time.perf_counter()
        order = rng.permutation(len(windows))
        total, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            x = {k: tf.gather(v, index) for k, v in features.items()}
            total += float(step(x, tf.gather(labels, index))) * len(index)
            count += len(index)
        losses.append(total / max(count, 1))
        progress.end(f"epoch {epoch + 1}/{int(epochs)}: loss {losses[-1]:.4f} "
                     f"({time.perf_counter() - started:.1f} s)")
    return losses


def quantization_aware_finetune(run_dir, epochs=1, max_windows=5000, seed=0, population=None,
                                learning_rate=None, batch_size=None, return_info=False,
                                quiet=False):
    """QAT fine-tuning of a copy of ``RUN/student.keras``; returns a plain (unwrapped) student
    holding the fine-tuned float weights (``(student, info)`` with ``return_info``).

    Args:
        run_dir: a population run directory.
        epochs: int. Fine-tuning epochs over the (subsampled) training windows.
        max_windows: int. At most this many training windows (0 = all).
        seed: int. Subsampling, shuffling and Keras seeds.
        population: optional canonical event table overriding the run's data.
        learning_rate: float or None (0.1 x the run's ``student_learning_rate``).
        batch_size: int or None (the run's ``batch_size``).
        quiet: bool. Epoch lines rather than a bar (:func:`finetune`).
    """
    keras.utils.set_random_seed(seed)
    run = load_run(run_dir)
    config = run.config
    # every population window of the run (subsampled to max_windows below, not as training did)
    train, val, test = run_windows(run, population, cap_train=False)
    train = train.subsample(max_windows, seed)
    if len(train) == 0:
        raise UserInputError(f"{run_dir}: no population training windows to fine-tune on")
    qat_student = keras.models.load_model(run.run_dir / "student.keras", compile=False)
    float_variables = list(qat_student.weights)  # same objects after wrapping
    _, wrappers = build_qat_student(qat_student)
    losses = finetune(
        qat_student,
        train,
        epochs=epochs,
        batch_size=int(batch_size or config.batch_size),
        learning_rate=float(learning_rate or 0.1 * config.student_learning_rate),
        seed=seed,
        quiet=quiet,
    )
    plain = keras.models.load_model(run.run_dir / "student.keras", compile=False)
    plain.set_weights([v.numpy() for v in float_variables])
    if not return_info:
        return plain
    info = {"losses": losses, "n_train": len(train), "wrapped_dense": len(wrappers),
            "splits": (train, val, test), "qat_student": qat_student}
    return plain, info


def tflite_prec_w(path, windows) -> float:
    """Weighted precision (prec_w) of a TFLite model's ``infer`` on ``windows``."""
    logits = Runtime(path, required=("infer",)).infer(windows.features(), batch_size=256)["logits"]
    return intent_metrics(windows.label, logits)["prec_w"]


def export_qat(run_dir, out_dir, history, epochs, max_windows=5000, seed=0, population=None,
               compare=None, metadata=None, quiet=False, progress=None) -> dict:
    """QAT fine-tuning (:func:`quantization_aware_finetune`), then
    ``student_qat_int8.tflite`` in ``out_dir``; returns {"path", "losses", "n_train", "n_test",
    "prec_w": {kind: value}} with the prec_w on (at most ``max_windows``) population test windows
    of the QAT model and of each TFLite file in ``compare`` ({kind: path}). ``quiet``: epoch
    lines instead of a bar (:class:`pitune_tf.common.epoch_log.StepProgress`); ``progress``
    as in :func:`tflite.export.export_module`."""
    student, info = quantization_aware_finetune(
        run_dir, epochs=epochs, max_windows=max_windows, seed=seed, population=population,
        return_info=True, quiet=quiet,
    )
    path = export_inference(student, Path(out_dir) / MODEL_FILES["qat_int8"], history, "int8",
                            metadata=metadata, progress=progress)
    test = info["splits"][2].subsample(max_windows, seed)
    prec_w = {}
    if len(test):
        for kind, other in {**(compare or {}), "qat_int8": path}.items():
            prec_w[kind] = tflite_prec_w(other, test)
    return {"path": path, "losses": info["losses"], "n_train": info["n_train"],
            "n_test": len(test), "wrapped_dense": info["wrapped_dense"], "prec_w": prec_w}
