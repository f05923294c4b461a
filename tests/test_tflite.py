"""TFLite export of the student: parity with the Keras student and its Keras training steps,
weights round-trips, and the runtime shim's checks. One tiny real student is converted once
per module (the conversion dominates the run time)."""

import numpy as np
import pytest

from pitune_tf.common.keras import keras, tf
from tflite.errors import (
    InputSpecError,
    SignatureError,
    UnsupportedOpError,
    WeightsFileError,
)

HISTORY = 6
BATCH = 4
SIZES = {"location": 5, "weekday": 8, "slot": 25, "event": 12, "intent": 9}


def tiny_student():
    from pitune_tf.models import build_student
    from pitune_tf.population import PopulationConfig

    keras.utils.set_random_seed(0)
    config = PopulationConfig(
        backbone="random:1x16", history=HISTORY, student_layers=1, student_width=16,
        student_heads=2, attention_units=[8], head_units=8, reconstruction=False, seed=0,
    )
    # the default student: with the copy term (RepeatMixture), as every default run builds it
    event_intent = np.random.default_rng(0).integers(0, SIZES["intent"], SIZES["event"])
    return build_student(config, SIZES, event_intent=event_intent)


def copy_of(student):
    """A separate Keras student with the same weights (the Keras side of a parity test)."""
    other = type(student).from_config(student.get_config())
    other.build_model()
    other.set_weights(student.get_weights())
    return other


def windows(n, seed=0):
    """n left-padded random windows (features dict) and labels."""
    rng = np.random.default_rng(seed)
    feats = {k: rng.integers(1, SIZES[k], (n, HISTORY)).astype(np.int32)
             for k in ("location", "weekday", "slot", "event")}
    mask = np.ones((n, HISTORY), np.float32)
    for i in range(n):
        pad = int(rng.integers(0, HISTORY - 1))
        mask[i, :pad] = 0.0
        for k in ("location", "weekday", "slot", "event"):
            feats[k][i, :pad] = 0
    feats["mask"] = mask
    labels = rng.integers(2, SIZES["intent"], n).astype(np.int32)
    return feats, labels


def flat(variables):
    return np.concatenate([np.asarray(v).reshape(-1) for v in variables])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tflite.export import export_student

    student = tiny_student()
    out = tmp_path_factory.mktemp("tflite")
    paths = export_student(student, out, history=HISTORY, batch_size=BATCH, quantized=False)
    return student, paths["fp32"]


@pytest.fixture(params=["litert", "tf"])
def runtime(request, exported):
    from tflite.runtime import Runtime

    return Runtime(exported[1], backend=request.param)


def test_infer_matches_keras_student(exported, runtime):
    student, _ = exported
    x, _ = windows(7)
    expected = student(x, training=False).numpy()  # [7, N]
    out = runtime.infer(x)
    rel = np.abs(out["logits"] - expected).max() / np.abs(expected).max()
    assert rel < 1e-5
    np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(expected).numpy(), atol=1e-6)
    one = runtime.infer({k: v[:1] for k, v in x.items()})["logits"]  # one window in
    np.testing.assert_allclose(one, out["logits"][:1], rtol=1e-5, atol=1e-6)


def test_train_steps_match_keras_adam(exported, runtime):
    """Two train steps (a partial, padded batch then a full one) give the Keras tuner's
    losses and weights: same cross-entropy, same Adam math."""
    from pitune_tf.individual.tuning_loss_model import TuningLossModel

    student, _ = exported
    keras_student = copy_of(student)
    tuner = TuningLossModel(keras_student, SIZES["intent"], mode="finetune")
    tuner.compile(optimizer=keras.optimizers.Adam(0.01))
    for n, seed in ((3, 1), (BATCH, 2)):
        x, y = windows(n, seed)
        expected = float(tuner.train_on_batch(x, y, return_dict=True)["loss"])
        loss = runtime.train(x, y, learning_rate=0.01)
        assert loss == pytest.approx(expected, rel=1e-5)
    # atol 1e-5 = 0.1% of the learning rate: Adam turns a gradient that is zero up to
    # round-off (~1e-9, either sign) into a step of up to ~1e-5 on either path.
    np.testing.assert_allclose(runtime.get_weights(), flat(keras_student.trainable_variables),
                               rtol=0, atol=1e-5)
    runtime.reset()


@pytest.mark.parametrize("part", ["head", "top1"])
def test_part_train_steps_match_keras_and_leave_the_rest(exported, runtime, part):
    """``train_<part>``: two steps equal the Keras tuner's over the same part
    (``train_part``), and every weight outside the part stays the shipped one."""
    from pitune_tf.individual.tuning_loss_model import TuningLossModel
    from pitune_tf.models.train_parts import part_variables

    student, _ = exported
    assert runtime.train_parts == ("head", "top1", "all")
    keras_student = copy_of(student)
    tuner = TuningLossModel(keras_student, SIZES["intent"], mode="finetune", train_part=part)
    tuner.compile(optimizer=keras.optimizers.Adam(0.01))
    shipped = runtime.get_weights()
    for n, seed in ((3, 1), (BATCH, 2)):
        x, y = windows(n, seed)
        expected = float(tuner.train_on_batch(x, y, return_dict=True)["loss"])
        assert runtime.train(x, y, learning_rate=0.01, part=part) == pytest.approx(expected, rel=1e-5)
    after = runtime.get_weights()
    np.testing.assert_allclose(after, flat(keras_student.trainable_variables), rtol=0, atol=1e-5)
    trained = {id(v) for v in part_variables(keras_student, part)}
    in_part = np.concatenate([np.full(int(np.prod(v.shape)), id(v) in trained)
                              for v in keras_student.trainable_variables])
    np.testing.assert_array_equal(after[~in_part], shipped[~in_part])  # the frozen rest
    assert not np.allclose(after[in_part], shipped[in_part])
    runtime.reset()


def test_unlearn_step_matches_keras(exported, runtime):
    from pitune_tf.individual.tuning_loss_model import TuningLossModel

    student, _ = exported
    keras_student, original = copy_of(student), copy_of(student)
    retain = np.ones(SIZES["intent"], np.float32)
    retain[[0, 1, 4]] = 0.0
    forget = np.zeros(SIZES["intent"], np.float32)
    forget[4] = 1.0
    tuner = TuningLossModel(keras_student, SIZES["intent"], mode="unlearn", lam=0.5)
    tuner.compile(optimizer=keras.optimizers.Adam(0.01))
    tuner.set_intent_masks(retain, forget)
    x, _ = windows(BATCH, 3)
    original_logits = original(x, training=False).numpy()  # M_o of PITuning Eq. 11
    expected = tuner.train_on_batch(x, original_logits, return_dict=True)
    terms = runtime.unlearn(x, original_logits, retain, forget, lam=0.5, learning_rate=0.01)
    for name in ("loss", "retain_ce", "forget_ce"):
        assert terms[name] == pytest.approx(float(expected[name]), rel=1e-5, abs=1e-7)
    np.testing.assert_allclose(runtime.get_weights(), flat(keras_student.trainable_variables),
                               rtol=0, atol=1e-5)  # see test_train_steps_match_keras_adam
    runtime.reset()


def test_get_set_weights_round_trip_and_reset(exported, runtime):
    student, _ = exported
    shipped = flat(student.trainable_variables)
    np.testing.assert_array_equal(runtime.get_weights(), shipped)
    noisy = shipped + np.random.default_rng(0).normal(0, 0.1, shipped.shape).astype(np.float32)
    runtime.set_weights(noisy)
    np.testing.assert_array_equal(runtime.get_weights(), noisy)  # exact
    x, y = windows(BATCH)
    runtime.train(x, y, learning_rate=0.05)
    assert not np.array_equal(runtime.get_weights(), noisy)
    runtime.reset()
    np.testing.assert_array_equal(runtime.get_weights(), shipped)


def test_weights_file_round_trip_and_bad_files_keep_weights(exported, runtime, tmp_path):
    shipped = runtime.get_weights()
    x, y = windows(BATCH)
    runtime.train(x, y, learning_rate=0.05)
    tuned = runtime.get_weights()
    path = tmp_path / "me.weights"
    runtime.save_weights(path)
    runtime.reset()
    runtime.load_weights(path)
    np.testing.assert_array_equal(runtime.get_weights(), tuned)

    runtime.reset()
    blob = path.read_bytes()
    truncated, corrupt = tmp_path / "truncated.weights", tmp_path / "corrupt.weights"
    truncated.write_bytes(blob[:-10])
    corrupt.write_bytes(blob[:40] + bytes([blob[40] ^ 0xFF]) + blob[41:])
    for bad, message in ((truncated, "truncated"), (corrupt, "checksum"),
                         (tmp_path / "missing.weights", "not found")):
        with pytest.raises(WeightsFileError, match=message):
            runtime.load_weights(bad)
        np.testing.assert_array_equal(runtime.get_weights(), shipped)  # kept


def test_wrong_inputs_give_clear_errors(runtime):
    x, y = windows(2)
    bad_dtype = dict(x, event=x["event"].astype(np.int64))
    with pytest.raises(InputSpecError, match="'event': dtype int64, expected int32"):
        runtime.infer(bad_dtype)
    bad_shape = dict(x, mask=x["mask"][:, :-1])
    with pytest.raises(InputSpecError, match=r"'mask': shape \[2, 5\], expected \[any, 6\]"):
        runtime.infer(bad_shape)
    with pytest.raises(InputSpecError, match="lack slot"):
        runtime.infer({k: v for k, v in x.items() if k != "slot"})
    with pytest.raises(InputSpecError, match="1 to 4 windows"):
        runtime.train(*windows(BATCH + 1))
    with pytest.raises(InputSpecError, match="label"):
        runtime.train(x, y.astype(np.float32))
    with pytest.raises(InputSpecError, match="float32"):
        runtime.set_weights(np.zeros(3, np.float32))


def test_missing_signature_is_named(tmp_path):
    from tflite.export import convert_saved_model
    from tflite.runtime import Runtime

    class InferOnly(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, HISTORY], tf.int32, name=k)
                                      for k in ("location", "weekday", "slot", "event")]
                     + [tf.TensorSpec([None, HISTORY], tf.float32, name="mask")])
        def infer(self, location, weekday, slot, event, mask):
            logits = tf.one_hot(event[:, -1], SIZES["intent"]) * tf.reduce_sum(mask)
            return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    module = InferOnly()
    tf.saved_model.save(module, str(tmp_path / "sm"),
                        signatures={"infer": module.infer.get_concrete_function()})
    path = tmp_path / "infer_only.tflite"
    path.write_bytes(convert_saved_model(tmp_path / "sm", ["infer"], training=False))
    Runtime(path, required=("infer",))  # an inference model loads
    with pytest.raises(SignatureError, match="missing signature.*train.*unlearn"):
        Runtime(path)
    with pytest.raises(SignatureError, match="no signature 'train'"):
        Runtime(path, required=("infer",)).call("train")


def test_flex_op_fails_export_naming_the_op(tmp_path):
    from tflite_fixtures import save_flex_op_model

    from tflite.export import convert_saved_model

    save_flex_op_model(tmp_path / "sm")
    with pytest.raises(UnsupportedOpError, match="'train'.*Erf"):
        convert_saved_model(tmp_path / "sm", ["train"])


def test_op_list_is_builtin_only(exported):
    from tflite.ops_check import check_builtin_only

    ops = check_builtin_only(exported[1].read_bytes())
    assert {"FULLY_CONNECTED", "ASSIGN_VARIABLE", "READ_VARIABLE"} <= set(ops)
    assert not [op for op in ops if op.startswith("Flex")]


@pytest.mark.parametrize("name, value", [("mask", np.nan), ("mask", 2.0), ("mask", np.inf)])
def test_bad_float_inputs_are_refused_before_the_interpreter(runtime, name, value):
    from tflite.errors import InputSpecError

    x, y = windows(4, 5)
    x[name] = x[name].copy()
    x[name][0, -1] = value
    with pytest.raises(InputSpecError, match=name):
        runtime.infer(x)
    with pytest.raises(InputSpecError, match=name):
        runtime.train(x, y)


@pytest.mark.parametrize("label", [10**6, -1, 0])
def test_bad_labels_and_rates_are_refused(runtime, label):
    from tflite.errors import InputSpecError

    x, y = windows(4, 6)
    before = runtime.get_weights()
    y = y.copy()
    y[0] = label
    with pytest.raises(InputSpecError, match="label"):
        runtime.train(x, y)
    with pytest.raises(InputSpecError, match="learning_rate"):
        runtime.train(*windows(4, 6), learning_rate=float("nan"))
    np.testing.assert_array_equal(runtime.get_weights(), before)  # nothing changed


@pytest.mark.parametrize("name, value", [("sample_weight", np.nan), ("sample_weight", -1.0),
                                         ("lam", np.nan), ("lam", np.inf), ("learning_rate", -0.1)])
def test_nan_weights_rates_and_lam_never_reach_the_weights(runtime, name, value):
    """Issue 12, defect 1: a NaN ``sample_weight`` or ``lam`` (or a negative rate) passed to
    ``train`` / ``unlearn`` is refused by name before the interpreter, the weights unchanged."""
    from tflite.errors import InputSpecError

    x, y = windows(4, 8)
    before = runtime.get_weights()
    n = SIZES["intent"]
    masks = (np.ones(n, np.float32), np.zeros(n, np.float32))
    logits = np.zeros((4, n), np.float32)
    kwargs = {name: value}
    if name == "sample_weight":  # one bad row
        kwargs = {name: np.where(np.arange(4) == 0, value, 1.0).astype(np.float32)}
    if name != "lam":
        with pytest.raises(InputSpecError, match=name):
            runtime.train(x, y, **kwargs)
    with pytest.raises(InputSpecError, match=name):
        runtime.unlearn(x, logits, *masks, **kwargs)
    np.testing.assert_array_equal(runtime.get_weights(), before)


def test_rows_and_ids_are_checked(runtime):
    from tflite.errors import InputSpecError

    x, _ = windows(4, 7)
    x["slot"] = x["slot"][:3]
    with pytest.raises(InputSpecError, match="row counts"):
        runtime.infer(x)
    x, _ = windows(4, 7)
    x["event"] = np.full_like(x["event"], 10**6)
    with pytest.raises(InputSpecError, match="vocabularies"):
        runtime.infer(x)


def test_nan_weights_never_replace_a_good_file(runtime, tmp_path, monkeypatch):
    from tflite.errors import InputSpecError

    path = tmp_path / "me.weights"
    runtime.save_weights(path)
    good = path.read_bytes()
    bad = runtime.get_weights()
    bad[0] = np.nan
    monkeypatch.setattr(runtime, "get_weights", lambda: bad)
    with pytest.raises(InputSpecError, match="NaN"):
        runtime.save_weights(path)
    assert path.read_bytes() == good


def test_atomic_writes_never_delete_a_directory(tmp_path):
    from pitune_tf.common.atomic import atomic_path, write_text
    from pitune_tf.common.errors import UserInputError

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    with pytest.raises(UserInputError, match="directory"):
        write_text(folder, "x")
    assert (folder / "keep.txt").read_text() == "precious"
    with atomic_path(folder) as tmp:  # a directory replacing a directory: swapped whole
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in folder.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
