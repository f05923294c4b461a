"""Quantization-aware fine-tuning (tflite.qat, tfmot) of the student's dense layers and the
``student_qat_int8.tflite`` export, on a tiny untrained run."""

import json

import numpy as np
import pytest

from pitune_tf.common.keras import keras, tf

pytest.importorskip("tensorflow_model_optimization")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(run_dir, population events): the run's config would regenerate the "demo" world, so
    the tests pass the tiny world the run's vocabularies were fitted on."""
    from individual_fixtures import make_tiny_run

    from pitune_tf.data.synthetic import generate

    run_dir = make_tiny_run(tmp_path_factory.mktemp("run"), n_users=4, with_teacher=False)
    population = generate("tiny", seed=0, n_individual_users=4, n_days=8,
                          events_per_day=(8, 12)).population
    return run_dir, population


def features(run_dir, population, n=64):
    from pitune_tf.population import load_run
    from pitune_tf.population.data_preparation import run_windows

    train = run_windows(load_run(run_dir), population, cap_train=False)[0]
    return train.take(np.arange(min(n, len(train)))).features()


def fake_quant_symmetric(kernel, num_bits=8):
    """tfmot's symmetric LastValueQuantize (wide range): two's complement range
    [min(lo, hi / r), max(hi, lo * r)] with r = -(2^b - 2) / 2^b, then FakeQuantWithMinMaxVars."""
    ratio = -((1 << num_bits) - 2) / (1 << num_bits)
    lo, hi = float(kernel.min()), float(kernel.max())
    return tf.quantization.fake_quant_with_min_max_vars(
        kernel, min(lo, hi / ratio), max(hi, lo * ratio), num_bits=num_bits, narrow_range=False)


def test_wrapped_student_uses_fake_quantized_kernels(tiny):
    """The wrapped student computes exactly the float student with 8-bit fake-quantized Dense
    kernels (symmetric, per-tensor, last-value range): not the float output, and off it by no
    more than that quantization."""
    from tflite.qat import build_qat_student

    run_dir, population = tiny
    x = features(run_dir, population)
    load = lambda: keras.models.load_model(run_dir / "student.keras", compile=False)  # noqa: E731
    qat, reference, plain = load(), load(), load()
    variables = list(qat.weights)
    expected_float = plain(x, training=False).numpy()
    _, wrappers = build_qat_student(qat)
    assert len(wrappers) >= 5  # qkv, attn_out, mlp_in, mlp_out, head hidden, attention weight
    # each wrapper holds its Dense's kernel variable (layer.kernel is now the quantized tensor)
    kernels = {id(v) for w in wrappers for v in w.trainable_weights if "kernel" in v.name}
    assert len(kernels) == len(wrappers)
    assert len(qat.trainable_variables) == len(plain.trainable_variables)  # kernels still train
    for var, ref in zip(variables, reference.weights):
        if id(var) in kernels:
            ref.assign(fake_quant_symmetric(var.numpy()))
    out_train = qat(x, training=True).numpy()
    out_infer = qat(x, training=False).numpy()  # the last-value ranges, kept in variables
    expected_quant = reference(x, training=False).numpy()
    np.testing.assert_allclose(out_train, expected_quant, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out_infer, expected_quant, rtol=0, atol=1e-5)
    diff = np.abs(out_infer - expected_float).max()
    assert diff > 1e-6  # the fake-quantized kernels are used
    assert diff < 0.05 * np.abs(expected_float).max()


def test_qat_finetune_changes_float_weights(tiny):
    from tflite.qat import quantization_aware_finetune

    run_dir, population = tiny
    original = keras.models.load_model(run_dir / "student.keras", compile=False)
    student, info = quantization_aware_finetune(run_dir, epochs=2, max_windows=300,
                                                population=population, return_info=True)
    assert info["n_train"] <= 300 and len(info["losses"]) == 2
    assert all(np.isfinite(info["losses"]))
    assert type(student) is type(original)
    assert [w.shape for w in student.weights] == [w.shape for w in original.weights]
    moved = [np.abs(a - b).max() for a, b in zip(student.get_weights(), original.get_weights())]
    assert max(moved) > 0


def test_qat_int8_export_infers(tiny, tmp_path, capsys):
    from tflite.export import MODEL_FILES, export_inference
    from tflite.qat import export_qat
    from tflite.runtime import Runtime

    run_dir, population = tiny
    plain = keras.models.load_model(run_dir / "student.keras", compile=False)
    int8 = export_inference(plain, tmp_path / MODEL_FILES["int8"], history=6, quantize="int8")
    report = export_qat(run_dir, tmp_path, history=6, epochs=1, max_windows=300,
                        population=population, compare={"int8": int8}, quiet=True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("[qat]")] == ["[qat] epoch 1/1"]
    assert f"loss {report['losses'][0]:.4f} (" in lines[-1]
    path = report["path"]
    assert path.name == "student_qat_int8.tflite" and path.is_file()
    assert set(report["prec_w"]) == {"int8", "qat_int8"}
    assert all(0.0 <= v <= 1.0 for v in report["prec_w"].values())
    x = features(run_dir, population, n=5)
    runtime = Runtime(path, required=("infer",))
    out = runtime.infer(x)
    assert out["logits"].shape == (5, plain.n_intents)
    assert np.isfinite(out["logits"]).all()
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    json.dumps({k: v for k, v in report.items() if k != "path"})  # the report is JSON-able


def test_cli_rejects_negative_qat_epochs(tiny, capsys):
    from tflite.convert import main

    assert main(["--run", str(tiny[0]), "--qat-epochs", "-1"]) == 2  # one error line
    assert capsys.readouterr().err.splitlines() == [
        "error: --qat-epochs must be a whole number in [0, 1000000], got -1"]
