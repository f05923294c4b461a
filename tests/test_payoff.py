"""The payoff study (``pituning_payoff``): its worlds, its profiles and its table, on faked
stages (the real runs: the slow test in test_ledger.py's style below)."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.plotting import is_png
from pitune_tf.population.population_config import preset

# every pooled metric of each method in the fake runs: the gap closed is hand-computed
POOLED = {"most_frequent": 0.2, "last_event_intent": 0.3, "none": 0.4, "prior": 0.45,
          "finetune": 0.5, "pituning": 0.55, "oracle": 0.6}


def test_each_world_is_a_population_run_and_three_individual_profiles(tmp_path, monkeypatch):
    import pitune_tf.individual.stage as stage
    import pitune_tf.population as population
    from pitune_tf.experiments.payoff import KNOBS, knob_table, plot_knob, world_name
    from pitune_tf.experiments.pituning_suite import METRICS, PITuningSuite

    run_config = preset("tiny")
    monkeypatch.setattr(population, "load_run", lambda path: type("Run", (), {"config": run_config})())
    trained, tuned = {}, {}

    def fake_population(config, path, overwrite=False):
        trained[path.name] = config
        path.mkdir(parents=True)
        (path / "metrics.json").write_text("{}")
        (path / "config.json").write_text(json.dumps(config.to_dict()))

    def fake_individual(run_dir, config, out, n_users, workers, progress, dump_predictions=False):
        tuned[out.parent.name, out.name] = (run_dir.name, config)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({
            "config": dataclasses.asdict(config), "n_users": n_users,
            "methods": {m: {"pooled": dict.fromkeys(METRICS, POOLED[m])}
                        for m in (*config.methods, "oracle")}}))
        rows = [{"method": m, "user_id": u, "timestamp": t, "true_intent": "a", "pred_intent": "a",
                 "score_a": 0.9, "score_b": 0.1}
                for m in config.methods for u in ("u1", "u2") for t in (0, 1)]
        pd.DataFrame(rows).to_csv(out / "predictions.csv", index=False)

    monkeypatch.setattr(population, "run_population", fake_population)
    monkeypatch.setattr(stage, "run_individual", fake_individual)
    suite = PITuningSuite(tmp_path / "run", tmp_path / "out", preset="tiny", seeds=2)
    table = knob_table(suite, "users_differ")

    # the worlds: the demo world is the suite's budget run ("full") at the first seed; the
    # others are named by their options, one population run per world and seed
    budget = run_config.replace(**suite.settings["population"])
    assert trained["full"].to_dict() == budget.to_dict()
    none_world = world_name(KNOBS["users_differ"][0][1])
    assert none_world == "longtail_fraction=0.0_user_pref_sigma=0.0"
    assert trained[f"payoff_{none_world}_seed1"].to_dict() == budget.replace(
        seed=1, synthetic={"user_pref_sigma": 0.0, "longtail_fraction": 0.0}).to_dict()
    assert len(trained) == 3 * 2  # 3 worlds x 2 seeds (the first seed's demo world: "full")
    # the profiles: the paper preset, the defaults, the defaults with the shipped guard
    paper = tuned[f"payoff_{none_world}_paper", "seed0"][1]
    assert (paper.learning_rate, paper.shipped_guard) == (0.01, False)
    assert tuned[f"payoff_{none_world}_default", "seed0"][1].shipped_guard is False
    assert tuned[f"payoff_{none_world}_default_guard", "seed1"][1].shipped_guard is True

    row = table[(table["value"] == "demo") & (table["profile"] == "default + guard")
                & (table["method"] == "pituning")].iloc[0]
    assert row["gap_closed:prec_w"] == pytest.approx((0.55 - 0.4) / (0.6 - 0.4))
    assert row["prec_w_mean"] == pytest.approx(0.55) and row["n_seeds"] == 2
    assert row["vs_finetune:prec_w"].startswith("+0.0000")  # identical predictions
    # none, prior, the trivial baselines and the oracle are listed once, in the default profile
    assert set(table[table["profile"] == "paper"]["method"]) == {"finetune", "pituning"}
    assert {"none", "prior", "oracle", "most_frequent"} <= set(table[table["profile"] == "default"]["method"])
    plot_knob(table, tmp_path / "knob.png", suite)
    assert is_png(tmp_path / "knob.png")


def test_payoff_needs_the_embedded_world_and_known_knobs(tmp_path, monkeypatch):
    import pitune_tf.population as population
    from pitune_tf.experiments.payoff import run_payoff, run_world
    from pitune_tf.experiments.pituning_suite import PITuningSuite

    with_data = preset("tiny").replace(data=["events.csv"])
    monkeypatch.setattr(population, "load_run", lambda path: type("Run", (), {"config": with_data})())
    suite = PITuningSuite(tmp_path / "run", tmp_path / "out", preset="tiny", seeds=1)
    with pytest.raises(UserInputError, match="embedded synthetic data"):
        run_world(suite, {}, 0)
    with pytest.raises(UserInputError, match="unknown knob"):
        run_payoff(tmp_path / "run", tmp_path / "out", preset="tiny", knobs=["bogus"])


# UAF's payoff study: MRR@5 of each mode in the fake runs (the gap closed is hand-computed)
UAF_MRR = {"mostpop": 0.2, "random-items": 0.0, "finetune-zero": 0.25, "finetune-all": 0.3,
           "random": 0.3, "hard": 0.35, "soft": 0.4, "rl": 0.3, "oracle": 0.6}


def test_each_uaf_world_is_drawn_per_seed_and_run_in_both_profiles(tmp_path, monkeypatch):
    import nextitnet.payoff as uaf_payoff
    from nextitnet.experiments import UAFSuite
    from nextitnet.uaf_config import PAPER_CHOICES, PRESETS, UAFConfig

    runs = {}

    def fake_run_uaf(config, data, path, modes, data_source=None, **_):
        runs[path.parent.name, path.name] = (config, tuple(modes), data, data_source)
        for mode in modes:  # user u1: rank 1 for soft, else 2; user u2: rank 10 (outside the top 5)
            (path / "modes" / mode).mkdir(parents=True, exist_ok=True)
            np.savez(path / "modes" / mode / "test_ranks.npz", user=np.array(["u1", "u2"]),
                     ranks=np.array([1 if mode == "soft" else 2, 10]))
        return {m: {"test": {"mrr@5": UAF_MRR[m], "hr@5": 0.5}} for m in ("mostpop", "random-items", *modes, "oracle")}

    monkeypatch.setattr(uaf_payoff, "run_uaf", fake_run_uaf)
    config = UAFConfig(**PRESETS["tiny"])
    suite = UAFSuite(config, None, "tiny", seeds=2, out_dir=tmp_path)
    table = uaf_payoff.knob_table(suite, "related_spread")

    # three worlds x two seeds x two profiles, each world drawn with its seed and options
    assert len(runs) == 3 * 2 * 2
    config_, modes, data, source = runs["payoff_p_target_related=0.5_related_spread=0.5_paper", f"seed{config.seed + 1}"]
    assert config_ == dataclasses.replace(config, seed=config.seed + 1, **PAPER_CHOICES)
    assert modes == uaf_payoff.PAYOFF_MODES and source.endswith("p_target_related=0.5_related_spread=0.5")
    assert data.target_oracle is not None and len(data.users) == 120  # the tiny world, redrawn
    # the spread-0 world is the related=0.5 world, named (and run) once
    assert uaf_payoff.world_name(uaf_payoff.KNOBS["related_spread"][0][1]) == \
        uaf_payoff.world_name(uaf_payoff.KNOBS["related"][1][1]) == "p_target_related=0.5"
    assert runs["payoff_p_target_related=0.5_default", f"seed{config.seed}"][0] == \
        dataclasses.replace(config, seed=config.seed)

    soft = table[(table["value"] == "0.25") & (table["profile"] == "default") & (table["mode"] == "soft")].iloc[0]
    assert soft["gap_closed:mrr@5"] == pytest.approx((0.4 - 0.2) / (0.6 - 0.2))
    assert soft["n_seeds"] == 2
    # u1: 1/1 against 1/2, u2: 0 against 0 -> the mean difference is +0.25
    assert soft["vs_finetune-all:mrr@5"].startswith("+0.2500") and soft["vs_random:mrr@5"].startswith("+0.2500")
    hard = table[(table["value"] == "0.25") & (table["profile"] == "paper") & (table["mode"] == "hard")].iloc[0]
    assert hard["vs_random:hr@5"].startswith("+0.0000")
    # MostPop, Random and the oracle: once per world, in profile "both"
    assert set(table[table["profile"] == "both"]["mode"]) == {"mostpop", "random-items", "oracle"}
    assert len(table) == 3 * (3 + 2 * len(uaf_payoff.PAYOFF_MODES))
    uaf_payoff.plot_knob(table, tmp_path / "knob.png", suite)
    assert is_png(tmp_path / "knob.png")
    with pytest.raises(UserInputError, match="unknown knob"):
        uaf_payoff.run_uaf_payoff(config, tmp_path / "out", knobs=["bogus"])


@pytest.mark.slow
def test_uaf_payoff_command_end_to_end_tiny(tmp_path):
    from trainers.experiments import main

    out = tmp_path / "uaf_payoff"
    assert main(["uaf_payoff", "--preset", "tiny", "--seeds", "1", "--knobs", "max_targets", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "uaf_payoff_max_targets.csv")
    assert list(dict.fromkeys(frame["value"].astype(str))) == ["2", "5", "10"]
    assert (out / "uaf_payoff_max_targets.png").is_file()
