"""Figures of every run: the data behind them by hand, PNG files written (and never failing
a run), reports linking them."""

import json
import logging
import struct

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.plotting import is_png, markdown_images, rebase_images


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    return struct.unpack(">II", data[16:24])


def assert_sensible_png(path, min_side=200):
    assert is_png(path), path
    width, height = png_size(path)
    assert min_side <= width <= 6000 and min_side <= height <= 6000, (path, width, height)
    assert path.stat().st_size > 5000, path  # not an empty canvas


# ----------------------------------------------------------------------------- data by hand


def test_attention_map_rows_are_position_shares_by_hand():
    """|w| / sum|w| per window and intent, averaged over the windows where the intent has
    weight: window 1 intent 0 [0, 1, -3] -> [0, 1/4, 3/4]; window 2 [0, 2, 2] -> [0, 1/2, 1/2];
    intent 1 has weight in window 2 only ([1, 1, 2] -> [1/4, 1/4, 1/2])."""
    from pitune_tf.population.plots import attention_shares, mean_attention_map

    weights = np.array([[[0.0, 1.0, -3.0], [0.0, 0.0, 0.0]],
                        [[0.0, 2.0, 2.0], [1.0, 1.0, 2.0]]])  # [n=2, N_I=2, L=3]
    np.testing.assert_allclose(attention_shares(weights)[0], [[0, 0.25, 0.75], [0, 0, 0]])
    got = mean_attention_map(weights)
    np.testing.assert_allclose(got, [[0.0, 0.375, 0.625], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(got.sum(axis=1), 1.0)


def test_confusion_rows_and_intent_shares_by_hand():
    from pitune_tf.population.plots import intent_shares, normalized_confusion

    labels, predicted = np.array([2, 2, 2, 3]), np.array([2, 3, 3, 3])
    matrix = normalized_confusion(labels, predicted, 4)
    np.testing.assert_allclose(matrix[2], [0, 0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(matrix[3], [0, 0, 0, 1])
    assert np.isnan(matrix[0]).all()  # no true intent 0: blank row
    np.testing.assert_allclose(intent_shares(predicted, 4), [0, 0, 0.25, 0.75])


def test_per_user_gains_by_hand():
    from pitune_tf.individual.plots import per_user_gains

    per_user = pd.DataFrame({
        "user_id": ["a", "a", "a", "b", "b"],
        "method": ["none", "finetune", "oracle", "none", "finetune"],
        "prec_w": [0.5, 0.7, 0.9, 0.4, 0.3],
    })
    gains = per_user_gains(per_user, "prec_w")
    assert list(gains) == ["finetune", "oracle"]
    np.testing.assert_allclose(gains["finetune"], [0.2, -0.1])
    np.testing.assert_allclose(gains["oracle"], [0.4])


def test_epoch_history_keeps_the_epochs_before_a_resume(tmp_path):
    from pitune_tf.common.epoch_history import EpochHistory

    first = EpochHistory(tmp_path / "history.json")
    first.on_epoch_end(0, {"loss": 3.0, "val_loss": 3.5})
    first.on_epoch_end(1, {"loss": 2.0, "val_loss": 9.0})  # interrupted before its checkpoint
    resumed = EpochHistory(tmp_path / "history.json")
    resumed.on_epoch_end(1, {"loss": 2.5, "val_loss": 2.7})  # epoch 2 run again
    resumed.on_epoch_end(2, {"loss": 2.0})
    assert resumed.history(3) == {"epoch": [1, 2, 3], "loss": [3.0, 2.5, 2.0],
                                  "val_loss": [3.5, 2.7, None]}
    assert resumed.history(1) == {"epoch": [1], "loss": [3.0], "val_loss": [3.5]}


def test_markdown_links_are_relative_and_rebased(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "training_curves.png").write_bytes(b"x")
    lines = markdown_images([tmp_path / "plots" / "training_curves.png",
                             tmp_path / "plots" / "missing.png"], tmp_path)
    assert lines == ["![training curves](plots/training_curves.png)"]
    text = "a ![gains](gains.png) ![web](https://x.org/a.png) ![abs](/tmp/a.png)"
    assert rebase_images(text, "individual") == (
        "a ![gains](individual/gains.png) ![web](https://x.org/a.png) ![abs](/tmp/a.png)")


# ----------------------------------------------------------------------------- PNG files


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """The tiny run's teacher and student, and windows of its individual users."""
    from individual_fixtures import make_tiny_run

    from pitune_tf.data import encode_events, make_windows, read_events
    from pitune_tf.population import load_run

    run = load_run(make_tiny_run(tmp_path_factory.mktemp("run"), n_users=2))
    df = read_events(run.individual_data_path)
    windows = make_windows(encode_events(df, run.vocabs), history=run.config.history)
    return run, windows


def test_attention_map_of_a_model_averages_the_iat_weights(tiny_models):
    """The batched attention map equals the map of one forward pass over all windows; its
    rows are [N_I, L] shares summing to 1."""
    from pitune_tf.population.plots import attention_map, mean_attention_map

    run, windows = tiny_models
    windows = windows.take(np.arange(11))
    got = attention_map(run.student, windows, batch_size=4)
    assert got.shape == (run.vocabs.n_intents, run.config.history)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)
    weights = run.student.forward(windows.features(), return_attention=True)["attention"]
    np.testing.assert_allclose(got, mean_attention_map(weights.numpy()), rtol=1e-5, atol=1e-7)


def test_population_plots_are_written(tiny_models, tmp_path):
    from pitune_tf.population import plots

    run, test = tiny_models
    models = {"teacher": run.teacher, "student": run.student}
    rng = np.random.default_rng(0)  # the figures only read the scores' argmax
    scores = {name: rng.dirichlet(np.ones(run.vocabs.n_intents), len(test)) for name in models}
    training = {phase: {"epochs": 3, "best_epoch": 2, "monitor": monitor, "history": {
        "epoch": [1, 2, 3], "loss": [3.0, 2.5, 2.4], "val_loss": [3.1, 2.8, 2.9],
        monitor[4:]: [2.0, 1.8, 1.7], monitor: [2.1, 1.9, 1.95],
        "accuracy": [0.2, 0.3, 0.35], "val_accuracy": [0.2, 0.25, 0.24]}}
        for phase, monitor in (("teacher", "val_intent_loss"), ("student", "val_hard_loss"))}
    written = plots.write_population_plots(tmp_path / "run", training, models, test, scores,
                                           run.vocabs.intent.tokens,
                                           len(run.vocabs.intent.reserved), 64)
    assert written == plots.plot_paths(tmp_path / "run")
    for path in written:
        assert_sensible_png(path)
    assert not [p for p in (tmp_path / "run" / "plots").iterdir() if p.name.startswith(".")]


def test_individual_gains_png(tmp_path):
    from pitune_tf.individual.plots import GAINS, write_individual_plots

    rng = np.random.default_rng(0)
    rows = [{"user_id": f"u{u}", "method": m, "prec_w": rng.uniform(), "rec_m": rng.uniform()}
            for u in range(6) for m in ("none", "finetune", "pituning", "oracle")]
    written = write_individual_plots(tmp_path, pd.DataFrame(rows))
    assert written == [tmp_path / GAINS]
    assert_sensible_png(tmp_path / GAINS)
    pooled = {"prec_w": {"diff": 0.05, "low": 0.01, "high": 0.08},
              "rec_m": {"diff": -0.01, "low": -0.04, "high": 0.02}}
    summary = {"finetune": {"versus": {"none": pooled}}, "pituning": {}}  # intervals of one
    assert write_individual_plots(tmp_path / "pooled", pd.DataFrame(rows), summary) == [
        tmp_path / "pooled" / GAINS]
    assert_sensible_png(tmp_path / "pooled" / GAINS)
    none_only = pd.DataFrame(rows[:1])
    assert write_individual_plots(tmp_path / "none", none_only) == []


def test_individual_per_intent_png(tmp_path):
    from pitune_tf.individual.plots import GAINS, PER_INTENT, write_individual_plots

    rows = [{"method": m, "intent": i, "recall": r, "predicted_ratio": 2 * r}
            for m, r in (("none", 0.2), ("finetune", 0.3), ("oracle", 0.5)) for i in ("a", "b", "c")]
    per_user = pd.DataFrame([{"user_id": "u", "method": m, "prec_w": 0.5, "rec_m": 0.5}
                             for m in ("none", "finetune")])
    written = write_individual_plots(tmp_path, per_user, per_intent=pd.DataFrame(rows))
    assert written == [tmp_path / GAINS, tmp_path / PER_INTENT]
    assert_sensible_png(tmp_path / PER_INTENT)


def test_a_failing_plot_is_a_warning_not_a_failed_run(tmp_path, monkeypatch, caplog):
    from pitune_tf.individual import plots
    from pitune_tf.population.plots import write_population_plots

    def broken(*_, **__):
        raise RuntimeError("no font")

    monkeypatch.setattr(plots, "plot_gains", broken)
    per_user = pd.DataFrame({"user_id": ["a", "a"], "method": ["none", "finetune"],
                             "prec_w": [0.1, 0.2], "rec_m": [0.1, 0.2]})
    with caplog.at_level(logging.WARNING, logger="pitune_tf.common.plotting"):
        assert plots.write_individual_plots(tmp_path, per_user) == []
        # a training record without history: no curves, a warning, nothing raised
        assert write_population_plots(tmp_path, {"teacher": {"epochs": 1}}, {}, [], {}, [],
                                      2, 8) == []
    assert "gains.png not written: RuntimeError: no font" in caplog.text
    assert "training_curves.png not written: ValueError" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_uaf_curves_plot_the_selection_metric_with_integer_epochs(tmp_path):
    from nextitnet.reports import curve_panels, write_reports

    def run(curve, best):
        return {"test": {"mrr@5": 0.1, "hr@5": 0.2}, "val_metric": "mrr@5", "val_curve": curve,
                "val_curves": {"mrr@5": curve, "hr@5": [2 * v for v in curve]},
                "best_epoch": best, "utilisation": [0.5, 1.0]}

    results = {"soft": run([0.1, 0.3, 0.2], 2), "finetune-all": run([0.2, 0.25], 2)}
    panels = curve_panels(results)
    assert list(panels) == ["mrr@5", "hr@5"] and panels["mrr@5"]["soft"] == [0.1, 0.3, 0.2]
    write_reports(tmp_path, results, "recommendation", "tiny")
    for name in ("curves.png", "utilisation.png"):
        assert_sensible_png(tmp_path / name, min_side=150)
    table = (tmp_path / "table.md").read_text()
    assert "![curves](curves.png)" in table and "![utilisation](utilisation.png)" in table
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["soft"]["best_epoch"] == 2


def test_epoch_axis_ticks_whole_epochs_only():
    """A one-epoch run (the tiny preset) is ticked 1, not 0.6 and 1.2; longer runs get whole
    numbers only."""
    from pitune_tf.common.plotting import epoch_axis, pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 3)
    for ax, n in zip(axes, (1, 3, 40)):
        ax.plot(range(1, n + 1), range(n), marker="o")
        epoch_axis(ax, n, best_epoch=1)
    fig.canvas.draw()
    ticks = [[t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
             for ax in axes]
    plt.close(fig)
    assert ticks[0] == [1] and ticks[1] == [1, 2, 3]
    assert all(float(t).is_integer() for t in ticks[2]) and 2 <= len(ticks[2]) <= 11
