"""Diverging training (issue 29, family 5): a loss that becomes NaN stops the run with one
``error:`` line, the last finished epoch is kept, and the same command with a lower learning
rate resumes from it (any other change of the config is still refused).

The NaN is injected: a poison variable added to the training loss, set to NaN once the
first epoch is checkpointed (a real learning rate high enough to diverge is refused by the
range check, ``test_bad_inputs.py``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pitune_tf.common.cli import run_main
from pitune_tf.common.divergence import (
    DIVERGED_FILE,
    RATE_CHANGES,
    DivergenceGuard,
    TrainingDiverged,
    accept_new_rates,
)


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


@pytest.fixture
def poison(monkeypatch):
    """A float32 variable added to ``cls``'s training loss once ``poison.arm(cls, module,
    callback, when)`` is called: 0 until the callback class ``module.<callback>`` ends an
    epoch of a fit it is in where ``when(callback)``, NaN from then on."""
    from pitune_tf.common.keras import tf

    value = tf.Variable(0.0, trainable=False)

    class Poison:
        variable = value

        @staticmethod
        def arm(cls, module, callback, when=lambda callback: True):
            original = cls.compute_losses

            def compute_losses(self, data, training):
                losses = dict(original(self, data, training))
                if training:
                    losses["loss"] = losses["loss"] + value
                return losses

            monkeypatch.setattr(cls, "compute_losses", compute_losses)
            base = getattr(module, callback)

            class Poisoning(base):
                def on_epoch_end(self, epoch, logs=None):
                    super().on_epoch_end(epoch, logs)
                    if when(self):
                        value.assign(float("nan"))  # from the next epoch on

            monkeypatch.setattr(module, callback, Poisoning)

    yield Poison
    value.assign(0.0)


def test_population_student_divergence_keeps_its_epoch_and_resumes_with_a_lower_rate(
        tmp_path, capsys, poison, monkeypatch):
    from pitune_tf.common import resumable_fit as fit_module
    from pitune_tf.population import distillation_loss
    from trainers.population import main

    out = tmp_path / "run"
    argv = ["--preset", "tiny", "--student-epochs", "2", "--out", str(out)]
    poison.arm(distillation_loss.Distiller, fit_module, "EpochCheckpoint",
               when=lambda callback: callback.phase == "student")
    assert run_main(main, argv) == 2
    [line] = error_lines(capsys)
    assert "student training diverged in epoch 2" in line and "loss is nan" in line
    assert "keeps epoch 1" in line and "--student-learning-rate" in line
    # the teacher and the student's epoch 1 kept; no NaN saved, nothing written as finished
    assert (out / "teacher").is_dir() and not (out / "metrics.json").exists()
    checkpoints = out / ".checkpoints" / "student"
    assert (checkpoints / "ckpt-1.index").exists() and not (checkpoints / "ckpt-2.index").exists()
    assert json.loads((checkpoints / DIVERGED_FILE).read_text())["epoch"] == 2
    monkeypatch.undo()  # the loss is healthy again

    # another change than the learning rate: still a different config
    assert run_main(main, [*argv, "--alpha", "0.7"]) == 2
    assert "different config" in error_lines(capsys)[0]
    # a lower rate: accepted, resumed after epoch 1, finished with finite scores
    assert run_main(main, [*argv, "--student-learning-rate", "1e-3"]) == 0
    captured = capsys.readouterr()
    assert "resuming it with student_learning_rate 0.001 (was 0.002)" in captured.err + captured.out
    assert "[student] resuming after epoch 1/2" in captured.err + captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(metrics["student"]["test"]["prec_w"])
    assert json.loads((out / "config.json").read_text())["student_learning_rate"] == 1e-3
    assert not (out / ".checkpoints").exists()


def test_uaf_pretraining_divergence_is_one_error_and_resumes_with_a_lower_rate(
        tmp_path, capsys, poison, monkeypatch):
    from nextitnet import pretraining_loss, stage_fit
    from trainers.uaf import main

    out = tmp_path / "uaf"
    argv = ["--preset", "tiny", "--mode", "soft", "--pretrain-epochs", "2", "--quiet",
            "--out", str(out)]
    poison.arm(pretraining_loss.NextItNetPretrainer, stage_fit, "FitProgress")
    assert run_main(main, argv) == 2
    [line] = error_lines(capsys)
    assert "UAF pretrain training diverged in epoch 2" in line and "--learning-rate" in line
    assert (out / "pretrain" / DIVERGED_FILE).is_file()
    assert not (out / "pretrain" / "backbone.weights.h5").exists()  # no NaN backbone
    monkeypatch.undo()
    assert run_main(main, [*argv, "--learning-rate", "5e-4"]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["learning_rate"] == 5e-4
    assert not (out / "pretrain" / DIVERGED_FILE).exists()
    metrics = json.loads((out / "modes" / "soft" / "metrics.json").read_text())
    assert all(np.isfinite(v) for v in metrics["test"].values() if isinstance(v, float))


def test_divergence_guard_stops_at_the_first_non_finite_loss(tmp_path):
    """Unit: the guard raises on a NaN or infinite loss (validation too), at an epoch's end
    and every ``check_every`` steps, and writes the marker; finite logs pass."""
    from pitune_tf.common.keras import keras

    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    guard = DivergenceGuard("toy", "--rate", tmp_path, check_every=2)
    guard.set_model(model)
    guard.on_epoch_begin(3)
    guard.on_train_batch_end(0, {"loss": float("nan")})  # not a checked step
    guard.on_epoch_end(3, {"loss": 1.0, "val_loss": 2.0, "accuracy": float("nan")})
    with pytest.raises(TrainingDiverged, match="toy training diverged in epoch 4, step 2: "
                       "loss is inf .*keeps epoch 3: run the same command with a lower --rate"):
        guard.on_train_batch_end(1, {"loss": float("inf")})
    with pytest.raises(TrainingDiverged, match="val_loss is nan"):
        guard.on_epoch_end(3, {"loss": 1.0, "val_loss": float("nan")})
    assert json.loads((tmp_path / DIVERGED_FILE).read_text())["epoch"] == 4


def test_only_a_diverged_run_accepts_new_rates_and_only_them(tmp_path):
    saved = {"config": {"learning_rate": 0.1, "seed": 0}, "task": "x"}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    lower = {"config": {"learning_rate": 0.01, "seed": 0}, "task": "x"}
    assert accept_new_rates(tmp_path, lower, ("learning_rate",)) == {}  # it did not diverge
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / DIVERGED_FILE).write_text("{}")
    other = {"config": {"learning_rate": 0.01, "seed": 1}, "task": "x"}
    assert accept_new_rates(tmp_path, other, ("learning_rate",)) == {}  # the seed changed too
    assert json.loads((tmp_path / "config.json").read_text()) == saved
    assert accept_new_rates(tmp_path, lower, ("learning_rate",)) == {
        "learning_rate": (0.1, 0.01)}
    assert json.loads((tmp_path / "config.json").read_text()) == lower
    assert not (tmp_path / "pretrain" / DIVERGED_FILE).exists()
    # the rates it trained with are kept, in order, with where it diverged
    (tmp_path / "pretrain" / DIVERGED_FILE).write_text(json.dumps({"epoch": 3}))
    lowest = {"config": {"learning_rate": 0.001, "seed": 0}, "task": "x"}
    assert accept_new_rates(tmp_path, lowest, ("learning_rate",)) == {"learning_rate": (0.01, 0.001)}
    assert json.loads((tmp_path / RATE_CHANGES).read_text()) == [
        {"rates": {"learning_rate": [0.1, 0.01]}, "diverged": [{"folder": "pretrain"}]},
        {"rates": {"learning_rate": [0.01, 0.001]}, "diverged": [{"folder": "pretrain", "epoch": 3}]}]
    # a damaged record is kept aside, never overwritten
    (tmp_path / RATE_CHANGES).write_text("{not json")
    (tmp_path / "pretrain" / DIVERGED_FILE).write_text("{}")
    lower_still = {"config": {"learning_rate": 0.0001, "seed": 0}, "task": "x"}
    assert accept_new_rates(tmp_path, lower_still, ("learning_rate",)) == {"learning_rate": (0.001, 0.0001)}
    assert (tmp_path / f"{RATE_CHANGES}.damaged").read_text() == "{not json"
    assert json.loads((tmp_path / RATE_CHANGES).read_text())[0]["rates"] == {"learning_rate": [0.001, 0.0001]}
