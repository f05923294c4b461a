"""The streaming student (``student_span``): ``step`` / ``infer_step`` predict after each new
event from a cached state, equal to the whole window within float round-off, in Keras and
through LiteRT, over a log long enough for the window to slide past L."""

import numpy as np
import pytest

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf

HISTORY = 8
SIZES = {"location": 5, "weekday": 8, "slot": 25, "event": 12, "intent": 9}
STREAM = ("location", "weekday", "slot", "event")


def streaming_student(span=2, layers=2, use_iat=True, normalize="mean", repeat=True):
    from pitune_tf.models import build_student
    from pitune_tf.population import PopulationConfig

    keras.utils.set_random_seed(0)
    config = PopulationConfig(
        history=HISTORY, student_layers=layers, student_width=16, student_heads=2,
        student_span=span, attention_units=[8], head_units=8, use_iat=use_iat,
        attention_normalize=normalize, seed=0,
    )
    event_intent = np.random.default_rng(0).integers(0, SIZES["intent"], SIZES["event"])
    student = build_student(config, SIZES, event_intent=event_intent if repeat else None)
    rng = np.random.default_rng(1)
    for variable in student.trainable_variables:  # the position biases start at zero: move them
        if "relative_bias" in variable.name or "recency_bias" in variable.name:
            variable.assign(rng.normal(size=variable.shape).astype(np.float32))
    return student


def user_log(n, seed=0):
    """A user's n events (stream features, int32 [n] each)."""
    rng = np.random.default_rng(seed)
    return {k: rng.integers(1, SIZES[k], n).astype(np.int32) for k in STREAM}


def sliding_windows(log):
    """The left-padded window of the newest HISTORY events after each event (features
    [n, HISTORY]): what ``infer`` reads where ``infer_step`` reads one event."""
    n = len(log["event"])
    features = {k: np.zeros((n, HISTORY), np.int32) for k in STREAM}
    features["mask"] = np.zeros((n, HISTORY), np.float32)
    for t in range(n):
        start = max(0, t + 1 - HISTORY)
        width = t + 1 - start
        for k in STREAM:
            features[k][t, HISTORY - width:] = log[k][start:t + 1]
        features["mask"][t, HISTORY - width:] = 1.0
    return features


def keras_steps(student, log):
    state, logits = student.initial_state(1), []
    for t in range(len(log["event"])):
        out, state = student.step({k: tf.constant(log[k][t:t + 1]) for k in STREAM}, state)
        logits.append(out.numpy()[0])
    return np.stack(logits)


@pytest.mark.parametrize("options", [
    {}, {"normalize": "none"}, {"normalize": "softmax"}, {"use_iat": False},
    {"repeat": False, "span": 1, "layers": 3},
])
def test_step_equals_the_full_window_over_a_long_log(options):
    student = streaming_student(**options)
    log = user_log(3 * HISTORY + 5)
    full = student(sliding_windows(log), training=False).numpy()  # [n, N]
    stepped = keras_steps(student, log)
    np.testing.assert_allclose(stepped, full, rtol=1e-5, atol=1e-5)


def test_the_window_sees_only_the_receptive_field_and_the_pooled_positions():
    student = streaming_student(span=2, layers=2)  # receptive field 4, pools 4 of 8
    assert (student.pool_length, student.backbone.receptive_field) == (4, 4)
    log = user_log(2 * HISTORY)
    windows = sliding_windows(log)
    changed = {k: v.copy() for k, v in windows.items()}
    for k in STREAM:  # events older than the receptive field of the oldest pooled position
        changed[k][:, :HISTORY - 8] = (changed[k][:, :HISTORY - 8] % 3) + 1
    np.testing.assert_allclose(student(changed, training=False), student(windows, training=False),
                               rtol=1e-6, atol=1e-6)
    state = student.state_layout()
    assert state["keys"] == (2, 2, 16) and state["hidden"] == (4, 16)
    assert student.state_size == 2 * 2 * 2 * 16 + 4 * 16 + SIZES["intent"] * 4 + HISTORY


def test_a_streaming_student_round_trips_its_config():
    student = streaming_student()
    other = type(student).from_config(student.get_config())
    other.build_model()
    other.set_weights(student.get_weights())
    assert other.streaming and other.backbone.span == 2
    log = user_log(HISTORY + 3)
    np.testing.assert_allclose(keras_steps(other, log), keras_steps(student, log), atol=1e-6)


def test_the_default_student_does_not_stream_and_a_too_long_span_is_refused():
    from pitune_tf.population import PopulationConfig

    student = streaming_student(span=None)
    assert not student.streaming
    with pytest.raises(ValueError, match="streaming"):
        student.state_layout()
    with pytest.raises(UserInputError, match="student_span"):
        PopulationConfig(history=8, student_layers=2, student_span=4)


def litert_steps(runtime, log):
    """The probabilities [n, N] after each event of ``log``, one ``infer_step`` per event."""
    state, stepped = runtime.initial_state(), []
    for t in range(len(log["event"])):
        out = runtime.infer_step({k: log[k][t:t + 1] for k in STREAM}, state)
        state = out["state"]
        stepped.append(out["probabilities"][0])
    return np.stack(stepped)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tflite.export import export_student

    student = streaming_student()
    out = tmp_path_factory.mktemp("tflite_stream")
    paths = export_student(student, out, history=HISTORY, batch_size=4)
    return student, paths["fp32"]


def test_litert_infer_step_equals_infer_over_a_sliding_log(exported):
    from tflite.ops_check import check_builtin_only
    from tflite.runtime import Runtime

    student, path = exported
    check_builtin_only(path.read_bytes())
    runtime = Runtime(path, backend="litert")
    assert "infer_step" in runtime.signatures and runtime.state_size == student.state_size
    log = user_log(3 * HISTORY + 5, seed=2)
    full = runtime.infer(sliding_windows(log))["probabilities"]
    np.testing.assert_allclose(litert_steps(runtime, log), full, rtol=1e-5, atol=1e-6)
    two = runtime.infer_step({k: log[k][:2] for k in STREAM}, runtime.initial_state(2))
    assert two["state"].shape == (2, student.state_size)  # a batch of users at once


@pytest.mark.parametrize("kind", ["fp16", "int8"])
def test_the_inference_files_step_too(exported, kind):
    """student_fp16.tflite and student_int8.tflite (constant weights) carry infer_step, equal
    to their own infer over a sliding log within float round-off (int8: its dynamic-range
    kernels quantize each row's activations alike, one event's or a window's)."""
    from tflite.export import MODEL_FILES
    from tflite.runtime import Runtime

    student, path = exported
    runtime = Runtime(path.parent / MODEL_FILES[kind], backend="litert", required=("infer", "infer_step"))
    assert runtime.state_size == student.state_size
    log = user_log(2 * HISTORY + 3, seed=4)
    full = runtime.infer(sliding_windows(log))["probabilities"]
    np.testing.assert_allclose(litert_steps(runtime, log), full, rtol=1e-5, atol=1e-6)


def test_litert_train_step_of_a_streaming_student_matches_keras(exported):
    """The position biases (the blocks' relative ones, the IAT's recency one) train on the
    phone."""
    from tflite.runtime import Runtime
    from tflite.student_module import flat_weights

    student, path = exported
    runtime = Runtime(path, backend="litert")
    runtime.reset()
    x = sliding_windows(user_log(4, seed=3))
    labels = np.array([2, 3, 4, 5], np.int32)
    before = runtime.get_weights()
    np.testing.assert_allclose(before, flat_weights(student), atol=0)
    runtime.train(x, labels, learning_rate=1e-2)
    moved = runtime.get_weights() - before
    names = [v.name for v in student.trainable_variables]
    sizes = [int(np.prod(v.shape)) for v in student.trainable_variables]
    offset = dict(zip(names, np.cumsum([0] + sizes[:-1])))
    for key in ("relative_bias", "recency_bias"):
        bias = next(name for name in names if key in name)
        assert np.abs(moved[offset[bias]:offset[bias] + sizes[names.index(bias)]]).max() > 0
    runtime.reset()


def test_the_export_records_the_state_and_each_signatures_flops(exported):
    """student_tflite.json: infer_step's state size, and per signature the matmul FLOPs of
    one call, infer_step's a fraction of infer's (one position of L)."""
    import json

    student, path = exported
    meta = json.loads((path.parent / "student_tflite.json").read_text())
    assert meta["state_size"] == student.state_size
    flops = meta["signature_flops"]
    assert {"infer", "infer_step", "train", "train_head", "train_top1", "unlearn"} <= set(flops)
    assert flops["infer_step"] < flops["infer"] / 2
    assert flops["train_head"] < flops["train_top1"] < flops["train"] == flops["unlearn"]
