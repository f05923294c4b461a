"""PITuning's ledger of deviations (``pitune_tf.experiments.ledger``): the switches are the
paper choices our defaults depart from, each ledger run flips exactly one, the effects are
paired differences with hand-computed numbers, and the command runs end to end (slow)."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from pitune_tf.common.experiment_suite import claim_verdict, verdict
from pitune_tf.experiments.ledger import paired_effect, switches
from pitune_tf.individual.individual_config import IndividualConfig
from pitune_tf.population.population_config import preset

INTENTS = ("a", "b")


def test_switches_are_the_paper_choices_our_defaults_depart_from():
    """Hand-listed against docs/reproducing.md's table of departures."""
    found = {(s.stage, s.name): (s.ours, s.paper) for s in switches(preset("demo"), IndividualConfig())}
    assert list(found) == [
        ("population", "learning rates"), ("population", "attention_normalize"),
        ("population", "repeat_term"), ("individual", "learning_rate"),
        ("individual", "unlearn_learning_rate")]
    assert found["population", "learning rates"] == (
        {"teacher_learning_rate": 2e-3, "student_learning_rate": 2e-3},
        {"teacher_learning_rate": 0.01, "student_learning_rate": 0.01})
    assert found["population", "repeat_term"] == ({"repeat_term": True}, {"repeat_term": False})
    assert found["individual", "learning_rate"] == ({"learning_rate": 3e-4}, {"learning_rate": 0.01})
    # a run already at the paper's value of a key has no switch for it; a run with one of
    # the options our defaults dropped (the ledger's rule) has one
    names = [s.name for s in switches(preset("demo").replace(repeat_term=False, clipnorm=1.0),
                                      IndividualConfig(learning_rate=0.01, refit=True))]
    assert names == ["learning rates", "attention_normalize", "clipnorm", "unlearn_learning_rate", "refit"]


def _write_predictions(out, method, users, y_true, predicted):
    scores = np.eye(len(INTENTS))[predicted]
    frame = pd.DataFrame({"method": method, "user_id": users, "timestamp": np.arange(len(users)),
                          "true_intent": np.asarray(INTENTS)[y_true],
                          "pred_intent": np.asarray(INTENTS)[predicted],
                          **{f"score_{t}": scores[:, i] for i, t in enumerate(INTENTS)}})
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "predictions.csv", index=False)


def test_paired_effect_hand_computed(tmp_path):
    """Two seeds of 2 users x 2 windows, all of intent a. "with" is right on 3 of 4 windows
    of seed 0 and on 4 of 4 of seed 1, "without" on 2 of 4 each: pooled accuracy 7/8 - 4/8 =
    +0.375; Prec_w (support-weighted; only intent a occurs) is intent a's precision, 1 - 1 = 0
    (every prediction of a is right); with 4 groups the interval resamples windows."""
    users, y = ["u1", "u1", "u2", "u2"], np.zeros(4, int)
    _write_predictions(tmp_path / "w0", "none", users, y, np.array([0, 0, 0, 1]))
    _write_predictions(tmp_path / "o0", "none", users, y, np.array([0, 1, 0, 1]))
    _write_predictions(tmp_path / "w1", "none", users, y, np.array([0, 0, 0, 0]))
    _write_predictions(tmp_path / "o1", "none", users, y, np.array([1, 0, 1, 0]))
    effect = paired_effect([(0, tmp_path / "w0", tmp_path / "o0"),
                            (1, tmp_path / "w1", tmp_path / "o1")], "none")
    assert effect["acc"]["diff"] == pytest.approx(0.375)
    assert effect["prec_w"]["diff"] == pytest.approx(0.0)
    assert effect["acc"]["low"] <= 0.375 <= effect["acc"]["high"]
    assert effect["acc"]["base"] == pytest.approx(4 / 8)  # the "without" side's pooled value
    _write_predictions(tmp_path / "other", "none", ["u1", "u1", "u2", "u3"], y, np.zeros(4, int))
    with pytest.raises(ValueError, match="different test windows"):
        paired_effect([(0, tmp_path / "w0", tmp_path / "other")], "none")


def test_verdict_reads_every_interval():
    up, down, zero = ({"low": 0.01, "high": 0.03}, {"low": -0.03, "high": -0.01},
                      {"low": -0.01, "high": 0.01})
    assert verdict([up, zero]) == "helps"
    assert verdict([down, zero]) == "hurts"
    assert verdict([up, down]) == "mixed"
    assert verdict([zero, zero]) == "no measurable effect"


def test_claim_verdicts():
    assert claim_verdict(0.24, 0.30, 0.10, 0.50) == "reproduced"
    assert claim_verdict(0.24, 0.05, 0.01, 0.09) == "smaller"
    assert claim_verdict(0.24, 0.05, -0.01, 0.09) == "not reproduced"
    assert claim_verdict(0.24, -0.05, -0.09, -0.01) == "opposite"


def test_each_ledger_run_flips_one_switch(tmp_path, monkeypatch):
    """With faked stages: the population runs are the paper profile, the default (RUN) and
    one per population switch and direction; each individual run flips only its switch, on
    its profile's population run; identical predictions give zero effects everywhere."""
    import pitune_tf.individual.stage as stage
    import pitune_tf.population as population
    from pitune_tf.experiments.ledger import claims, ledger, profiles
    from pitune_tf.experiments.pituning_suite import METRICS, PITuningSuite
    from pitune_tf.individual.individual_config import PAPER_CHOICES as IND_PAPER
    from pitune_tf.population.population_config import PAPER_CHOICES as POP_PAPER

    run_config = preset("tiny")
    monkeypatch.setattr(population, "load_run", lambda path: type("Run", (), {"config": run_config})())
    trained, tuned = {}, {}

    def fake_population(config, path, overwrite=False):
        trained[path.name] = config
        path.mkdir(parents=True)
        (path / "metrics.json").write_text("{}")
        (path / "config.json").write_text(json.dumps(config.to_dict()))

    def fake_individual(run_dir, config, out, n_users, workers, progress, dump_predictions=False):
        tuned[out.parent.name] = (run_dir.name, config)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({
            "config": dataclasses.asdict(config), "n_users": n_users,
            "methods": {m: {"pooled": dict.fromkeys(METRICS, 0.5)} for m in config.methods}}))
        for method in config.methods:
            _write_predictions(out / method, method, ["u1", "u2"], np.array([0, 1]), np.array([0, 0]))
        pd.concat([pd.read_csv(out / m / "predictions.csv") for m in config.methods]).to_csv(
            out / "predictions.csv", index=False)

    monkeypatch.setattr(population, "run_population", fake_population)
    monkeypatch.setattr(stage, "run_individual", fake_individual)
    suite = PITuningSuite(tmp_path / "run", tmp_path / "out", preset="tiny", seeds=1)
    frame = ledger(suite)
    assert frame["switch"].tolist()[-1] == "every deviation"
    assert set(frame["verdict"]) == {"no measurable effect"}
    assert (frame["from_paper:prec_w"].iloc[:-1] == "+0.0000 [+0.0000, +0.0000] tie").all()

    budget = run_config.replace(**suite.settings["population"])  # the tiny suite's budget
    paper = budget.replace(**POP_PAPER)
    assert trained["ledger_paper_seed0"].to_dict() == paper.to_dict()
    assert trained["ledger_paper_repeat_term_seed0"].to_dict() == paper.replace(repeat_term=True).to_dict()
    assert trained["ledger_default_repeat_term_seed0"].to_dict() == budget.replace(
        repeat_term=False).to_dict()
    assert trained["ledger_default_learning_rates_seed0"].to_dict() == budget.replace(
        teacher_learning_rate=0.01, student_learning_rate=0.01).to_dict()
    assert trained["full"].to_dict() == budget.to_dict()  # the default profile: the budget's run
    assert len(trained) == 2 + 2 * 3

    defaults = suite.individual_config(0, ())
    run_dir, config = tuned["ledger_paper_individual_learning_rate"]
    assert run_dir == "ledger_paper_seed0" and config.methods[-1] == "pituning"
    expected = {**IND_PAPER, "learning_rate": defaults.learning_rate}
    assert {k: getattr(config, k) for k in expected} == expected
    run_dir, config = tuned["ledger_default_individual_learning_rate"]
    assert run_dir == "full" and config.learning_rate == 0.01 and config.refit == defaults.refit
    run_dir, config = tuned["ledger_paper_population_attention_normalize"]
    assert run_dir == "ledger_paper_attention_normalize_seed0" and config.methods[-1] == "none"
    assert config.learning_rate == IND_PAPER["learning_rate"]
    table = profiles(suite)
    assert {"pituning (paper profile)", "pituning (default profile)", "mpda (paper profile)",
            "most_frequent"} <= set(table["method"])
    found = claims(suite)  # identical predictions: no claim reproduced
    assert set(found["profile"]) == {"paper", "default"} and set(found["verdict"]) == {"not reproduced"}
    assert found["paper"].iloc[0] == "+8.6% / +11.0%"


@pytest.mark.slow
def test_ledger_command_end_to_end_tiny(tmp_path):
    from pitune_tf.population import run_population
    from trainers.experiments import main

    run = tmp_path / "run"
    run_population(preset("tiny"), run)
    out = tmp_path / "ledger"
    assert main(["pituning_ledger", "--run", str(run), "--preset", "tiny", "--seeds", "1",
                 "--out", str(out)]) == 0
    frame = pd.read_csv(out / "pituning_ledger.csv")
    assert len(frame) == len(switches(preset("tiny"), IndividualConfig())) + 1
    assert (out / "pituning_ledger.png").is_file() and (out / "pituning_profiles.csv").is_file()
    assert set(pd.read_csv(out / "pituning_claims.csv")["profile"]) == {"paper", "default"}
    assert "each deviation from the paper" in (out / "index.md").read_text()


def test_paired_mean_bootstrap_hand_computed():
    """Rows of users a (2 rows) and b (2 rows): mean(a - b) = (1 + 0 + 0 - 1) / 4 = 0; with
    user a alone drawn twice the difference is +0.5, with b alone -0.5: the interval."""
    from pitune_tf.metrics import paired_mean_bootstrap

    found = paired_mean_bootstrap([1, 1, 0, 0], [0, 1, 0, 1], ["a", "a", "b", "b"])
    assert found["diff"] == 0.0 and found["base"] == 0.5
    assert -0.5 <= found["low"] <= 0.0 <= found["high"] <= 0.5
    assert paired_mean_bootstrap([1, 1], [0, 0], ["a", "b"])["low"] == 1.0  # every resample: +1


def test_uaf_switches_are_the_paper_choices_our_defaults_depart_from():
    from nextitnet.ledger import switches as uaf_switches
    from nextitnet.uaf_config import PRESETS, UAFConfig

    found = {s.name: (s.ours, s.paper, s.mode, s.pretrains) for s in uaf_switches(UAFConfig())}
    assert list(found) == ["learning_rate", "pretrain_loss", "loss", "head_bias_init", "gamma"]
    # the RL warm-up's two keys are one switch (it went back to the paper's: no departure now)
    warm = {s.name: (s.ours, s.paper) for s in uaf_switches(UAFConfig(rl_warmup_epochs=1, rl_warmup_gates="ones"))}
    assert warm["rl warm-up"] == ({"rl_warmup_epochs": 1, "rl_warmup_gates": "ones"},
                                  {"rl_warmup_epochs": 0, "rl_warmup_gates": "greedy"})
    assert found["learning_rate"] == ({"learning_rate": 1e-3}, {"learning_rate": 1e-4}, "soft", True)
    assert found["loss"] == ({"loss": "softmax"}, {"loss": "bpr"}, "soft", False)
    assert found["gamma"][2:] == ("rl", False)
    assert uaf_switches(UAFConfig(**PRESETS["paper"])) == []  # the paper preset is the paper


def test_each_uaf_ledger_run_flips_one_switch(tmp_path, monkeypatch):
    import nextitnet.ledger as uaf_ledger
    from nextitnet.data import generate_cross_domain
    from nextitnet.experiments import UAFSuite
    from nextitnet.uaf_config import PAPER_CHOICES, PRESETS, UAFConfig

    runs = {}

    def fake_run_uaf(config, data, path, modes, pretrained=None, **_):
        runs[path.parent.name] = (config, tuple(modes), pretrained)
        for mode in (*modes, "finetune-all"):
            (path / "modes" / mode).mkdir(parents=True, exist_ok=True)
            np.savez(path / "modes" / mode / "test_ranks.npz", ranks=np.array([1, 3, 7]),
                     user=np.array(["u1", "u1", "u2"]))
        return {m: {"test": {"mrr@5": 0.5}} for m in modes}

    monkeypatch.setattr(uaf_ledger, "run_uaf", fake_run_uaf)
    config = UAFConfig(**PRESETS["tiny"])
    suite = UAFSuite(config, generate_cross_domain("tiny", seed=0), "tiny", seeds=1, out_dir=tmp_path)
    frame = uaf_ledger.ledger(suite).set_index("switch", drop=False)
    # below 100,000 source items pretrain_loss auto is full: the same run, not trained twice
    assert frame.loc["pretrain_loss", "verdict"] == "the same run on this data (not run)"
    assert "ledger_paper_pretrain_loss" not in runs
    assert set(frame["verdict"]) - {"the same run on this data (not run)"} == {"no measurable effect"}
    assert frame["switch"].tolist()[-2:] == ["every deviation", "every deviation"]
    paper = dataclasses.replace(config, seed=config.seed, **PAPER_CHOICES)
    assert runs["ledger_paper"][0] == paper and runs["ledger_paper"][1] == ("finetune-all", "soft", "rl")
    changed, modes, pretrained = runs["ledger_paper_loss"]
    assert changed == dataclasses.replace(paper, loss="softmax") and modes == ("soft",)
    assert pretrained == tmp_path / "runs" / "ledger_paper" / f"seed{config.seed}"
    changed, modes, pretrained = runs["ledger_default_learning_rate"]
    assert changed == dataclasses.replace(config, learning_rate=1e-4) and pretrained is None
    changed, modes, _ = runs["ledger_default_gamma"]
    assert (changed.gamma, modes) == (1.0, ("rl",))
    claims = uaf_ledger.claims(suite)
    assert claims["paper"].iloc[0] == "+1.4% to +3.6%" and claims["verdict"].iloc[0] == "not reproduced"


@pytest.mark.slow
def test_uaf_ledger_command_end_to_end_tiny(tmp_path):
    from trainers.experiments import main

    out = tmp_path / "uaf_ledger"
    assert main(["uaf_ledger", "--preset", "tiny", "--seeds", "1", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "uaf_ledger.csv")
    assert "head_bias_init" in set(frame["switch"]) and (out / "uaf_profiles.png").is_file()
    assert set(pd.read_csv(out / "uaf_claims.csv")["profile"]) == {"paper", "default"}


def test_tuning_protocol_gives_every_method_the_same_trials_on_validation(tmp_path, monkeypatch):
    """With a faked stage whose validation Prec_w peaks at learning rate 1e-3: each method
    gets the same trials, every trial reads validation windows only (holdout=validation),
    the paper protocol offers no post-hoc option, the default one offers both to the methods
    that take them, and the chosen values run once on the test windows."""
    import math

    import pitune_tf.individual.stage as stage
    import pitune_tf.population as population
    from pitune_tf.experiments.pituning_suite import METRICS, PITuningSuite
    from pitune_tf.experiments.tuning import POST_HOC, tuned_table

    monkeypatch.setattr(population, "load_run", lambda path: type("Run", (), {"config": preset("tiny")})())
    seen = []

    def fake_individual(run_dir, config, out, n_users, workers, progress, dump_predictions=False):
        seen.append((out.parent.name, out.parents[2].name, config))  # ./<protocol>/<method>/<key>/seed0
        score = 1.0 - abs(math.log10(config.learning_rate) + 3.0) / 10
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({
            "config": dataclasses.asdict(config), "n_users": n_users,
            "methods": {m: {"pooled": dict.fromkeys(METRICS, score)} for m in config.methods}}))

    monkeypatch.setattr(stage, "run_individual", fake_individual)
    suite = PITuningSuite(tmp_path / "run", tmp_path / "out", preset="tiny", seeds=1)
    frame = tuned_table(suite, ("finetune", "prior"), trials=4)
    tuned = frame[frame["trials"].notna()]
    assert tuned["trials"].tolist() == [4] * 4  # 2 protocols x 2 methods
    assert set(frame["method"]) >= {"finetune", "prior", "most_frequent", "last_event_intent"}
    trials = [c for key, _, c in seen if key.startswith("trial")]
    assert len(trials) == 16 and {c.holdout for c in trials} == {"validation"}
    chosen = {(protocol, c.methods[-1]): c for key, protocol, c in seen if key == "chosen"}
    assert {c.holdout for c in chosen.values()} == {"test"}
    assert not chosen["paper", "finetune"].refit and not chosen["paper", "finetune"].prior_after_tuning
    offered = {json.dumps(sorted(json.loads(c))) for c in tuned[tuned["protocol"] == "default"]["chosen"]}
    assert json.dumps(sorted(["learning_rate", "patience", *POST_HOC])) in offered  # finetune's
    assert json.dumps(["prior_pseudo_count"]) in offered  # prior: nothing to refit
    assert frame["chosen"].dropna().map(json.loads).iloc[0]["learning_rate"] > 0


@pytest.mark.slow
def test_tuned_command_end_to_end_tiny(tmp_path):
    from pitune_tf.population import run_population
    from trainers.experiments import main

    run = tmp_path / "run"
    run_population(preset("tiny"), run)
    out = tmp_path / "tuned"
    assert main(["pituning_tuned", "--run", str(run), "--preset", "tiny", "--trials", "2",
                 "--methods", "prior,finetune", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "pituning_tuned.csv")
    assert set(frame["protocol"]) == {"paper", "default"}
    assert frame.loc[frame["method"] == "finetune", "trials"].tolist() == [2, 2]
    assert (out / "runs" / "tuning" / "default.db").is_file()  # the resumable study store


def test_every_search_space_bound_is_a_valid_config():
    """Each method's search space, at its lows and at its highs, is a config the stage takes."""
    from pitune_tf.experiments.tuning import SEARCH

    for method, space in SEARCH.items():
        for side in (1, 2):
            IndividualConfig(methods=(method,), **{k: v[side] for k, v in space.items()})


def test_uaf_tuning_gives_every_mode_the_same_trials_from_one_backbone(tmp_path, monkeypatch):
    import nextitnet.tuning as uaf_tuning
    from nextitnet.data import generate_cross_domain
    from nextitnet.experiments import UAFSuite
    from nextitnet.uaf_config import PAPER_CHOICES, PRESETS, UAFConfig

    runs = []

    def fake_run_uaf(config, data, path, modes, pretrained=None, **_):
        runs.append((path, config, tuple(modes), pretrained))
        value = 1.0 - abs(np.log10(config.learning_rate) + 3.0) / 10
        return {m: {"val_curve": [value / 2, value], "test": {"mrr@5": value, "hr@5": value}}
                for m in ("mostpop", "random-items", *modes)}

    monkeypatch.setattr(uaf_tuning, "run_uaf", fake_run_uaf)
    config = UAFConfig(**PRESETS["tiny"])
    suite = UAFSuite(config, generate_cross_domain("tiny", seed=0), "tiny", seeds=2, out_dir=tmp_path)
    frame = uaf_tuning.tuned_table(suite, ("finetune-all", "soft"), trials=3)
    tuned = frame[frame["trials"].notna()]
    assert tuned["trials"].tolist() == [3] * 4 and set(frame["mode"]) >= {"mostpop", "random-items"}
    trials = [r for r in runs if r[0].name.startswith("trial")]
    assert len(trials) == 12
    assert {r[3].parts[-2:] for r in trials} == {("paper", "backbone"), ("default", "backbone")}
    paper = [r[1] for r in trials if "paper" in r[0].parts]
    assert all(c.loss == PAPER_CHOICES["loss"] and c.head_bias_init == "zeros" for c in paper)
    soft = json.loads(tuned[(tuned["mode"] == "soft")]["chosen"].iloc[0])
    assert set(soft) == {"learning_rate", "patience", "temperature"}
    assert (frame["n_seeds"] == 2).all()


@pytest.mark.slow
def test_uaf_tuned_command_end_to_end_tiny(tmp_path):
    from trainers.experiments import main

    out = tmp_path / "uaf_tuned"
    assert main(["uaf_tuned", "--preset", "tiny", "--seeds", "1", "--trials", "2", "--modes",
                 "finetune-all,soft", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "uaf_tuned.csv")
    assert set(frame["protocol"]) == {"paper", "default"} and (out / "uaf_tuned.png").is_file()


def test_a_cached_population_run_is_reused_only_with_the_same_config(tmp_path):
    """A suite's cached population variant is its config.json's, a cached individual run its
    summary.json's config: a key the file lacks (added to the config since) is its default;
    any other difference means running again."""
    from pitune_tf.experiments.pituning_suite import _same_config

    config = preset("tiny")
    saved = json.loads(json.dumps(config.to_dict()))
    del saved["synthetic"]  # a run written before the key existed
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert _same_config(tmp_path, config)
    assert not _same_config(tmp_path, config.replace(clipnorm=1.0))
    assert not _same_config(tmp_path, config.replace(synthetic={"n_days": 14}))
    assert not _same_config(tmp_path / "missing", config)
    from pitune_tf.experiments.pituning_suite import _same_options
    from pitune_tf.individual.individual_config import IndividualConfig

    options = IndividualConfig(min_history=5)
    saved = json.loads(json.dumps(dataclasses.asdict(options)))
    del saved["shipped_guard"]  # an individual run written before the key existed
    assert _same_options(saved, IndividualConfig())  # min_history: the run's own, aside
    assert not _same_options(saved, IndividualConfig(shipped_guard=True))


def test_options_are_switched_on_from_both_profiles(tmp_path, monkeypatch):
    """``--options``: each of our options off in both profiles (``OPTIONS``) is a switch whose
    cells turn it on, from the paper profile and from the defaults alike."""
    import pitune_tf.population as population
    from pitune_tf.experiments.ledger import LedgerRuns
    from pitune_tf.experiments.pituning_suite import PITuningSuite

    found = [(s.stage, s.name, s.ours, s.paper) for s in switches(preset("demo"), IndividualConfig(),
                                                                   options=True) if s.option]
    assert found == [("population", "clipnorm", {"clipnorm": 1.0}, {"clipnorm": 0.0}),
                     ("population", "student_span", {"student_span": "auto"},
                      {"student_span": "none"}),
                     ("individual", "prior_after_tuning", {"prior_after_tuning": True},
                      {"prior_after_tuning": False}),
                     ("individual", "refit", {"refit": True}, {"refit": False}),
                     ("individual", "unlearn_select", {"unlearn_select": "after_finetune"},
                      {"unlearn_select": "none"}),
                     ("individual", "shipped_guard", {"shipped_guard": True}, {"shipped_guard": False}),
                     ("individual", "shrink_to_shipped", {"shrink_to_shipped": True},
                      {"shrink_to_shipped": False}),
                     ("individual", "repeat_mix", {"repeat_mix": True}, {"repeat_mix": False})]
    assert not [s for s in switches(preset("demo"), IndividualConfig()) if s.option]  # off by default

    monkeypatch.setattr(population, "load_run", lambda path: type("Run", (), {"config": preset("tiny")})())
    suite = PITuningSuite(tmp_path / "run", tmp_path / "out", preset="tiny", seeds=1)
    suite.settings = {**suite.settings, "ledger_options": True}
    runs = LedgerRuns(suite)
    asked = {}
    monkeypatch.setattr(suite, "population_run", lambda name, **changes: asked.setdefault(name, changes))
    monkeypatch.setattr(suite, "individual", lambda population, key, seed, methods, **changes: asked.setdefault(
        key, changes))
    option = {s.name: s for s in runs.switches}
    runs.individual("default", 0, option["unlearn_select"])
    assert asked["ledger_default_individual_unlearn_select"]["unlearn_select"] == "after_finetune"
    runs.individual("paper", 0, option["refit"])
    assert asked["ledger_paper_individual_refit"]["refit"] is True
    runs.population("default", 0, option["clipnorm"])
    assert asked["ledger_default_clipnorm_seed0"]["clipnorm"] == 1.0
