"""The experiment harness (``pitune_tf.common.experiment_suite``), the suites' helpers, and
``python -m trainers.experiments`` (end to end on tiny presets: slow)."""

import json

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.experiment_suite import (
    Registry,
    TrivialCheck,
    mean_std,
    run_suite,
)
from pitune_tf.common.tables import frame_table


def _toy_registry(calls):
    registry = Registry("Toy paper")

    def plot(frame, path, context):
        calls.append(("plot", path.name))
        path.write_bytes(b"png")

    @registry.register("toy_table", "Table 1: toy", plot=plot, note="a note")
    def toy_table(context):
        calls.append(("run", "toy_table"))
        rows = pd.DataFrame({"method": ["a", "a", "b"], "seed": [0, 1, 0], "score": [0.5, 0.7, 0.2]})
        return mean_std(rows, ["method"], ["score"])

    @registry.register("toy_other", "Figure 2: other")
    def toy_other(context):
        calls.append(("run", "toy_other"))
        return pd.DataFrame({"x": [1], "y": [context["y"]]})

    return registry


def test_mean_std_numbers_and_markdown():
    rows = pd.DataFrame({"method": ["a", "b", "a"], "score": [0.5, 0.2, 0.7], "other": [1.0, 2.0, 3.0]})
    frame = mean_std(rows, ["method"], ["score", "missing"])
    assert list(frame.columns) == ["method", "score_mean", "score_std", "n_seeds"]
    assert frame["method"].tolist() == ["a", "b"]  # first-seen order
    assert frame["score_mean"].tolist() == pytest.approx([0.6, 0.2])
    assert frame["score_std"].iloc[0] == pytest.approx(np.std([0.5, 0.7], ddof=1))  # 0.1414
    assert np.isnan(frame["score_std"].iloc[1]) and frame["n_seeds"].tolist() == [2, 1]
    text = frame_table(frame).splitlines()
    assert text[0] == "| method | score | n_seeds |"
    assert text[2] == "| a | 0.6000 ± 0.1414 | 2 |" and text[3] == "| b | 0.2000 | 1 |"


def test_run_suite_writes_csv_png_index_and_skips_finished(tmp_path):
    calls = []
    registry = _toy_registry(calls)
    status = run_suite(registry, {"y": 3}, tmp_path)
    assert status == {"toy_table": "ran", "toy_other": "ran"}
    assert calls == [("run", "toy_table"), ("plot", "toy_table.png"), ("run", "toy_other")]
    assert pd.read_csv(tmp_path / "toy_other.csv")["y"].tolist() == [3]
    index = (tmp_path / "index.md").read_text()
    assert index.startswith("# Toy paper: experiments")
    assert "## Table 1: toy" in index and "a note" in index and "![Table 1: toy](toy_table.png)" in index
    assert "| a | 0.6000 ± 0.1414 | 2 |" in index and "## Figure 2: other" in index
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind
    calls.clear()
    (tmp_path / "toy_table.png").unlink()
    assert run_suite(registry, {"y": 4}, tmp_path) == {"toy_table": "reused", "toy_other": "reused"}
    assert calls == [("plot", "toy_table.png")]  # the missing figure redrawn, nothing rerun
    assert pd.read_csv(tmp_path / "toy_other.csv")["y"].tolist() == [3]
    calls.clear()
    (tmp_path / "toy_table.csv").unlink()  # a rerun draws its figure again over the old one
    assert run_suite(registry, {"y": 4}, tmp_path) == {"toy_table": "ran", "toy_other": "reused"}
    assert calls == [("run", "toy_table"), ("plot", "toy_table.png")]


def test_run_suite_only_and_unknown_names(tmp_path):
    calls = []
    registry = _toy_registry(calls)
    assert run_suite(registry, {"y": 1}, tmp_path, only=["toy_other"]) == {"toy_other": "ran"}
    index = (tmp_path / "index.md").read_text()
    assert "## Not run" in index and "- `toy_table`: Table 1: toy" in index
    with pytest.raises(UserInputError, match="unknown experiment.*nope"):
        registry.select(["nope"])


def test_trivial_check_flags_rows_below_the_best_baseline_of_their_setting(tmp_path):
    check = TrivialCheck("method", ("freq", "last"), "score", exempt=("oracle",), within=("days",))
    frame = pd.DataFrame({
        "days": [1, 1, 1, 1, 7, 7, 7],
        "method": ["freq", "last", "ours", "oracle", "freq", "last", "ours"],
        "score_mean": [0.20, 0.30, 0.25, 0.10, 0.20, 0.30, 0.35],
        "score_std": [0.0] * 7})
    # days 1: ours 0.25 < last 0.30 (oracle exempt); days 7: ours 0.35 above both
    assert check.below(frame) == [({"days": 1}, "last", 0.30, [("ours", 0.25)])]
    assert check.sentence(frame).startswith(
        "**Below the best trivial baseline on score**: days 1: ours 0.2500 (best trivial: last 0.3000)")
    assert check.sentence(frame[frame["days"] == 7]) == ""
    assert check.below(frame.drop(columns="days")) == [({}, "last", 0.30, [("ours", 0.25)])]
    assert TrivialCheck("method", ("freq",), "missing").below(frame) == []  # no such metric

    registry = Registry("Toy", trivial=check)
    registry.register("t", "Table: t")(lambda context: frame)
    run_suite(registry, None, tmp_path)
    assert "days 1: ours 0.2500" in (tmp_path / "index.md").read_text()


def test_uaf_table5_keeps_the_test_rows():
    from nextitnet.data import generate_cross_domain
    from nextitnet.experiments import UAFSuite, check_same_test_rows
    from nextitnet.uaf_config import PRESETS, UAFConfig

    suite = UAFSuite(UAFConfig(**PRESETS["tiny"]), generate_cross_domain("tiny", seed=0), "tiny", seeds=2)
    check_same_test_rows(suite)  # raises if train_fraction changed a val/test row


def test_cli_errors(tmp_path, capsys):
    from pitune_tf.common.cli import run_main
    from trainers.experiments import main

    assert run_main(main, ["uaf", "--preset", "tiny", "--seeds", "0", "--out", str(tmp_path / "u")]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err
    assert run_main(main, ["uaf", "--preset", "tiny", "--modes", "soft,nope", "--out", str(tmp_path / "u")]) == 2
    assert "nope" in capsys.readouterr().err
    assert run_main(main, ["uaf", "--preset", "tiny", "--only", "table9", "--out", str(tmp_path / "u")]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert run_main(main, ["pituning", "--run", str(tmp_path / "missing")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()  # nothing written on bad input


@pytest.mark.slow
def test_uaf_suite_end_to_end_tiny(tmp_path):
    from trainers.experiments import main

    out = tmp_path / "uaf"
    argv = ["uaf", "--preset", "tiny", "--seeds", "2", "--modes", "mostpop,random-items,finetune-all,random,soft",
            "--out", str(out)]
    assert main(argv) == 0
    for name in ("uaf_table2", "uaf_table3", "uaf_table4", "uaf_table5", "uaf_table7", "uaf_fig3", "uaf_fig4"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.png").is_file(), name
    table2 = pd.read_csv(out / "uaf_table2.csv")
    assert table2["mode"].tolist() == ["mostpop", "random-items", "finetune-all", "random", "soft"]
    assert (table2["n_seeds"] == 2).all() and table2["mrr@5_std"].notna().all()
    assert set(pd.read_csv(out / "uaf_table4.csv")["model"]) >= {"UAF-Soft", "UAF-Soft-GRU"}
    # seed 1's main run reused its own backbone for Table 5 (one pretraining per seed)
    assert not (out / "runs/fraction0.1/seed1/pretrain").exists()
    assert json.loads((out / "runs/fraction0.1/seed1/config.json").read_text())["config"]["train_fraction"] == 0.1
    index = (out / "index.md").read_text()
    assert "UAF Table 2" in index and "![UAF Figure 3" in index and "±" in index
    before = (out / "uaf_table2.csv").read_text()
    assert main(argv) == 0  # everything reused
    assert (out / "uaf_table2.csv").read_text() == before


@pytest.mark.slow
def test_pituning_suite_end_to_end_tiny(tmp_path):
    from pitune_tf.population import preset, run_population
    from trainers.experiments import main

    run = tmp_path / "run"
    run_population(preset("tiny"), run)
    out = tmp_path / "exp"
    assert main(["pituning", "--run", str(run), "--preset", "tiny", "--seeds", "1", "--out", str(out)]) == 0
    for name in ("pituning_table2", "pituning_fig1", "pituning_fig4", "pituning_fig5", "pituning_fig6",
                 "pituning_fig7", "pituning_fig8", "pituning_fig9", "pituning_fig10"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.png").is_file(), name
    table2 = pd.read_csv(out / "pituning_table2.csv")
    assert table2["method"].tolist()[:2] == ["most_frequent", "last_event_intent"]
    assert table2["method"].tolist()[-1] == "oracle" and "pituning" in set(table2["method"])
    assert {"lsat", "eodrec", "metabert4rec", "clover", "tallrec", "p5", "instructrec",
            "ofa (repeat term)"} <= set(table2["method"])  # OFA takes RUN's repeat term, named
    fig9 = pd.read_csv(out / "pituning_fig9.csv")
    assert sorted(set(fig9["train_days"])) == [2, 7]
    assert "## PITuning Figure 10" in (out / "index.md").read_text()


def test_mpda_retrieval_hand_computed():
    from pitune_tf.data import Windows
    from pitune_tf.individual.mpda import MPDA, _unit

    def windows(n):
        z = np.zeros((n, 2), np.int32)
        return Windows(z, z, z, z, z.astype(np.float32), np.arange(n, dtype=np.int32),
                       np.array(["u"] * n), np.arange(n, dtype=np.int64))

    pool_probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.5, 0.5]])
    local_probs = np.array([[1.0, 0.0], [0.0, 1.0]])

    class Engine:
        @staticmethod
        def probs(w):
            return local_probs

    mpda = MPDA(run=None, neighbours=2, ratio=1.0)
    mpda._pool = (windows(4), _unit(pool_probs))
    # cosine: local 0 -> pool 0 (1.0), 2 (0.994); local 1 -> pool 1 (1.0), 3 (0.707)
    assert set(mpda.retrieve(Engine, windows(2)).tolist()) == {0, 1}  # capped at 1 x 2 windows
    mpda.ratio = 3.0
    found = mpda.retrieve(Engine, windows(2)).tolist()
    assert set(found[:2]) == {0, 1} and found[2:] == [2, 3]  # most similar first, no repeats


def test_every_fig4_ablation_changes_what_it_names():
    """Each ablation differs from the full PITuning row: a population change or an
    individual setting away from its default (a setting equal to the default silently
    repeats the PITuning row)."""
    import dataclasses

    from pitune_tf.experiments.pituning_experiments import ABLATIONS
    from pitune_tf.individual.individual_config import IndividualConfig

    defaults = IndividualConfig()
    for label, (population, method, individual) in ABLATIONS.items():
        if label == "PITuning":
            continue
        changed = {k: v for k, v in individual.items() if getattr(defaults, k) != v}
        assert population or changed or method != "pituning", label
        dataclasses.replace(defaults, **individual).validate()


def test_suite_reruns_an_individual_run_made_for_another_user_count(tmp_path, monkeypatch):
    """A cached individual run is reused only for the same config and the same --users."""
    import dataclasses

    import pitune_tf.individual.stage as stage
    import pitune_tf.population as population
    from pitune_tf.experiments.pituning_suite import PITuningSuite

    monkeypatch.setattr(population, "load_run", lambda path: None)
    calls = []

    def fake_run_individual(run_dir, config, out, n_users, workers, progress, **_):
        calls.append(n_users)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({
            "config": dataclasses.asdict(config), "n_users": n_users,
            "methods": {"none": {"pooled": {}}}}))

    monkeypatch.setattr(stage, "run_individual", fake_run_individual)
    suite = PITuningSuite(tmp_path / "run", tmp_path / "out", preset="tiny", seeds=1)
    suite.individual(tmp_path / "run", "main", 0, ("none",))
    suite.individual(tmp_path / "run", "main", 0, ("none",))
    assert calls == [3]  # the tiny preset's users; the second call reuses the run
    suite.settings = {**suite.settings, "users": 5}
    suite.individual(tmp_path / "run", "main", 0, ("none",))
    assert calls == [3, 5]


def test_fig4_algorithm_1_row_runs_the_paper_profile_of_both_stages(tmp_path, monkeypatch):
    """Fig. 4's "Algorithm 1 as written" row trains a population run of RUN's config with
    the paper's choices (those of trainers.population --preset paper) and runs the individual
    stage with trainers.individual --preset paper; the PITuning row keeps our defaults."""
    import dataclasses

    import pitune_tf.individual.stage as stage
    import pitune_tf.population as population
    from pitune_tf.common.config import resolve_config
    from pitune_tf.experiments.pituning_experiments import ALGORITHM_1, fig4
    from pitune_tf.experiments.pituning_suite import METRICS, PITuningSuite
    from pitune_tf.individual.individual_config import PRESETS, IndividualConfig
    from pitune_tf.population.population_config import PAPER_CHOICES, preset

    run_config = preset("tiny")
    monkeypatch.setattr(population, "load_run",
                        lambda path: type("Run", (), {"config": run_config})())
    trained, tuned = {}, {}
    monkeypatch.setattr(population, "run_population",
                        lambda config, path, **_: trained.setdefault(path.name, config))

    def fake_run_individual(run_dir, config, out, n_users, workers, progress, **_):
        tuned[out.parent.name] = config
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({
            "config": dataclasses.asdict(config), "n_users": n_users,
            "methods": {m: {"pooled": dict.fromkeys(METRICS, 0.5)} for m in config.methods}}))

    monkeypatch.setattr(stage, "run_individual", fake_run_individual)
    suite = PITuningSuite(tmp_path / "run", tmp_path / "out", preset="tiny", seeds=1)
    frame = fig4(suite)
    assert ALGORITHM_1 == "Algorithm 1 as written (paper profile)"
    assert ((frame["variant"] == ALGORITHM_1) & (frame["method"] == "pituning")).sum() == 1

    algorithm1 = trained["algorithm1"]  # the population half, hand-listed (PITuning 4.1.4, Eq. 3-5)
    assert (algorithm1.repeat_term, algorithm1.attention_normalize, algorithm1.clipnorm) == (
        False, "none", 0.0)
    assert (algorithm1.teacher_learning_rate, algorithm1.student_learning_rate) == (0.01, 0.01)
    assert (algorithm1.use_iat, algorithm1.reconstruction, algorithm1.reconstruction_passes,
            algorithm1.alpha, algorithm1.temperature) == (True, True, "two", 0.5, 1.0)
    paper = preset("paper")
    assert {k: getattr(algorithm1, k) for k in PAPER_CHOICES} == {
        k: getattr(paper, k) for k in PAPER_CHOICES}  # the choices of --preset paper
    assert algorithm1.backbone == run_config.backbone  # at RUN's sizes
    assert algorithm1.to_dict() == run_config.replace(
        **suite.settings["population"], **PAPER_CHOICES).to_dict()

    individual = tuned["ablation_algorithm1"]  # the individual half, hand-listed
    assert (individual.learning_rate, individual.unlearn_learning_rate, individual.lam) == (
        0.01, 0.01, 1.0)
    assert (individual.prior_after_tuning, individual.refit, individual.unlearn_select,
            individual.unlearn_gate) == (False, False, "none", False)
    paper_individual = resolve_config(IndividualConfig, PRESETS, "paper")
    assert {k: getattr(individual, k) for k in PRESETS["paper"]} == {
        k: getattr(paper_individual, k) for k in PRESETS["paper"]}
    full = tuned["ablation_full"]  # the PITuning row: our defaults
    assert (full.learning_rate, full.prior_after_tuning, full.refit, full.unlearn_select) == (
        3e-4, False, False, "none")
    assert tuned["ablation_full_select"].unlearn_select == "after_finetune"


def test_ofa_states_the_repeat_term_it_takes_from_run():
    from pitune_tf.experiments.pituning_experiments import OFA_POPULATION, ofa_label, ofa_population
    from pitune_tf.population.population_config import preset

    changes = ofa_population(preset("tiny"))
    assert changes == {**OFA_POPULATION, "repeat_term": True} and ofa_label(changes) == "ofa (repeat term)"
    changes = ofa_population(preset("paper_small"))
    assert changes["repeat_term"] is False and ofa_label(changes) == "ofa"
