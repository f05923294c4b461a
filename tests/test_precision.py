"""--precision and --jit: mixed-precision teachers keep float32 logits and losses; config and
command line."""

import numpy as np
import pytest

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.keras import keras, tf
from pitune_tf.common.precision import dtype_policy, wrap_optimizer
from pitune_tf.models import build_teacher
from pitune_tf.population import PopulationTrainer, preset

SIZES = {"location": 6, "slot": 25, "event": 9, "intent": 5}
L = 6


def _config(**changes):
    return preset("tiny").replace(backbone="random:1x16", history=L, attention_units=[8, 4],
                                  head_units=8, reconstruction_units=8, **changes)


def _batch(n=8):
    rng = np.random.default_rng(0)
    features = {k: rng.integers(2, 6, (n, L)).astype(np.int32)
                for k in ("location", "weekday", "slot", "event")}
    features["mask"] = np.ones((n, L), np.float32)
    return features, rng.integers(2, SIZES["intent"], n).astype(np.int32)


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_teacher_trains_with_float32_logits_and_loss(precision):
    with dtype_policy(precision):
        teacher = build_teacher(_config(), SIZES)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    compute = {"mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}[precision]
    assert teacher.embedding.compute_dtype == compute.name
    assert all(v.dtype == tf.float32 for v in teacher.variables if v.dtype.is_floating)
    features, labels = _batch()
    assert teacher(features).dtype == tf.float32
    trainer = PopulationTrainer(teacher)
    trainer.compile(optimizer=wrap_optimizer(keras.optimizers.Adam(1e-2), precision))
    assert isinstance(trainer.optimizer, keras.mixed_precision.LossScaleOptimizer) == (
        precision == "mixed_float16")
    before = [v.numpy() for v in trainer.train_variables()]
    losses = trainer.train_batch((features, labels))
    for name in ("loss", "intent_loss", "reconstruction_loss"):
        assert losses[name].dtype == tf.float32 and np.isfinite(losses[name].numpy()), name
    # mixed_float16: a step whose scaled gradients overflow is skipped and the loss scale
    # halved (dynamic loss scaling starts at 2^15), so a few steps may pass before an update
    for _ in range(20):
        if any(not np.array_equal(b, v.numpy())
               for b, v in zip(before, trainer.train_variables(), strict=True)):
            break
        trainer.train_batch((features, labels))
    else:
        pytest.fail("no step updated the teacher")


@pytest.mark.slow  # XLA compiles the GPT2 step: about a minute on 2 cores
def test_jit_compiled_step_gives_the_eager_losses():
    features, labels = _batch()
    results = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        trainer = PopulationTrainer(build_teacher(_config(), SIZES), reconstruction=False)
        trainer.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
        history = trainer.fit(tf.data.Dataset.from_tensors((features, labels)).repeat(2),
                              epochs=1, verbose=0)
        results.append(history.history["loss"][0])
    assert results[1] == pytest.approx(results[0], rel=1e-4)


def test_precision_jit_and_streaming_options():
    from pitune_tf.population.command_line import build_parser, config_from_args

    config = config_from_args(build_parser().parse_args([
        "--precision", "mixed_bfloat16", "--jit", "--streaming", "--stream-chunk-events", "9",
        "--stream-eval-windows", "0", "--data", "pop", "ind"]))
    assert (config.precision, config.jit, config.streaming) == ("mixed_bfloat16", True, True)
    assert (config.stream_chunk_events, config.stream_eval_windows) == (9, 0)
    defaults = preset("demo")
    assert (defaults.precision, defaults.jit, defaults.streaming) == ("float32", False, False)
    for changes, message in (
        ({"precision": "float16"}, "precision"),
        ({"stream_chunk_events": 0}, "stream_chunk_events"),
        ({"stream_eval_windows": -1}, "stream_eval_windows"),
        ({"streaming": True, "data": ["events.parquet"]}, "POPULATION INDIVIDUAL"),
    ):
        with pytest.raises(UserInputError, match=message):
            preset("demo").replace(**changes)
