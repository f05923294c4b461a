"""``--train-part auto``: the rule's labels and tree by hand, its file, and the equivalence
the study leans on: an ``auto`` run gives each user exactly the result of the fixed-part run
the rule chose for that user."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from individual_fixtures import make_tiny_run

from pitune_tf.common.errors import UserInputError
from pitune_tf.individual.train_part_rule import (
    FEATURES,
    TrainPartRule,
    best_candidates,
    split_candidate,
    user_features,
)

METRICS = ["prec_w", "rec_m", "ndcg@3", "acc"]


def test_labels_are_the_cheapest_candidate_within_the_margin():
    losses = [[1.000, 0.995, 0.900],   # only the last is within 0.01 of the best
              [1.000, 1.200, 1.100],   # the cheapest is the best
              [0.905, 0.900, 0.950]]   # the first two are within 0.01: the cheaper
    costs = [[1, 2, 3]] * 3
    assert best_candidates(losses, costs, 0.01).tolist() == [2, 0, 0]
    assert best_candidates(losses, [[3, 2, 1]] * 3, 0.01).tolist() == [2, 0, 1]


def test_features_by_hand():
    f = user_features(9, forget=[1], retain=[0, 2], train_labels=[0, 0, 1, 1], p_pop=[0.25, 0.25, 0.5],
                      shipped_val_ce=1.5)
    assert f == pytest.approx({"log_train_windows": math.log(10), "forget_size": 1.0, "retain_size": 2.0,
                               "kl_to_population": 2 * 0.5 * math.log(0.5 / 0.25), "shipped_val_ce": 1.5})
    assert list(f) == list(FEATURES)


def test_fitted_tree_finds_the_users_that_need_more_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, len(FEATURES)))
    forget = np.arange(60) % 4  # forget_size 0..3: users with 2 or more gain from unlearning everything
    features[:, FEATURES.index("forget_size")] = forget
    losses = np.stack([np.ones(60), np.where(forget >= 2, 0.8, 1.0)], axis=1)
    costs = np.tile([1.0, 5.0], (60, 1))
    rule = TrainPartRule.fit(features, losses, costs, ["head", "all+unlearn"], margins=(0.01,), min_leaf=5)
    chosen = [rule.choose(dict(zip(FEATURES, row))) for row in features]
    assert chosen == [("all", True) if f >= 2 else ("head", False) for f in forget]
    assert rule.tree["feature"] == "forget_size" and 1 <= rule.tree["threshold"] < 2
    rule.save(tmp_path / "rule.json")
    assert TrainPartRule.load(tmp_path / "rule.json") == rule
    missing = dict(zip(FEATURES, features[0]), forget_size=float("nan"))
    assert rule.choose(missing) == ("all", True)  # a NaN feature goes right, as fitted
    assert split_candidate("top1+unlearn") == ("top1", True) and rule.parts() == {"head", "all"}
    # a budget of half the reference's FLOPs: the rule above spends (30 x 1 + 30 x 5) / (60 x 5)
    # = 0.6 of it; the labels' margin grows until 0.15 nats of loss are tolerated (0.2), and
    # every user gets the head
    losses[:, 1] = np.where(forget >= 2, 0.85, 1.0)
    cheap = TrainPartRule.fit(features, losses, costs, ["head", "all+unlearn"], budget=0.5,
                              reference="all+unlearn", margins=(0.0, 0.1, 0.2, 0.3), min_leaf=5)
    assert cheap.margin == 0.2 and cheap.tree == {"leaf": "head"} and cheap.fitted_on["spent"] == 0.2


def test_a_bad_rule_file_is_a_user_error(tmp_path):
    with pytest.raises(UserInputError, match="no train-part rule there"):
        TrainPartRule.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text(json.dumps({"features": ["n"], "tree": {}, "candidates": [],
                                                   "margin": 0.01}))
    with pytest.raises(UserInputError, match="not a train-part rule"):
        TrainPartRule.load(tmp_path / "bad.json")
    leaf = {"features": list(FEATURES), "tree": {"leaf": "top9"}, "candidates": ["head"], "margin": 0.0}
    (tmp_path / "leaf.json").write_text(json.dumps(leaf))
    with pytest.raises(UserInputError, match="not a candidate"):
        TrainPartRule.load(tmp_path / "leaf.json")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("run"), n_users=3, with_teacher=False)


def _run(run, out, *extra):
    from trainers.individual import main

    argv = ["--run", str(run), "--out", str(out), "--method", "none,finetune,pituning",
            "--epochs", "2", "--static-threshold", "0.2", "--quiet", *extra]
    assert main(argv) == 0
    return pd.read_csv(out / "per_user.csv").set_index(["user_id", "method"])


def test_auto_gives_each_user_the_fixed_part_run_it_chose(tiny_run, tmp_path):
    head = _run(tiny_run, tmp_path / "head", "--train-part", "head")
    top1 = _run(tiny_run, tmp_path / "top1", "--train-part", "top1")
    users = sorted(head.index.get_level_values(0).unique())
    sizes = head.xs("none", level="method")["log_train_windows"].sort_values()
    assert sizes.nunique() > 1, "the tiny users need different training-window counts"
    assert (top1.xs("pituning", level="method")["unlearn_steps"] > 0).any()  # unlearning ran
    cut = float((sizes.iloc[0] + sizes.iloc[-1]) / 2)
    rule = TrainPartRule(tree={"feature": "log_train_windows", "threshold": cut,
                               "left": {"leaf": "head"}, "right": {"leaf": "top1+unlearn"}},
                         candidates=("head", "top1+unlearn"))
    rule.save(tmp_path / "rule.json")
    auto = _run(tiny_run, tmp_path / "auto", "--train-part", "auto", "--train-part-rule", str(tmp_path / "rule.json"))
    for user in users:
        small = sizes[user] <= cut
        fixed = head if small else top1
        row = auto.loc[(user, "pituning")]
        assert row["train_part"] == ("head" if small else "top1") and bool(row["unlearn_chosen"]) is (not small)
        for method in ("finetune", "pituning"):
            # no unlearning chosen: pituning is finetune on that part
            source = "finetune" if small and method == "pituning" else method
            np.testing.assert_allclose(auto.loc[(user, method), METRICS].to_numpy(float),
                                       fixed.loc[(user, source), METRICS].to_numpy(float), atol=1e-6)
        assert auto.loc[(user, "pituning"), "unlearn_steps"] == (0 if small else fixed.loc[(user, "pituning"), "unlearn_steps"])


def test_auto_without_a_rule_is_one_error_line(tiny_run, tmp_path, capsys):
    from trainers.individual import main

    assert main(["--run", str(tiny_run), "--out", str(tmp_path / "x"), "--train-part", "auto", "--quiet"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: train_part auto needs train_part_rule")


def test_the_study_cross_fits_the_rule_and_writes_it(tiny_run, tmp_path):
    """pituning_train_part on a tiny run, one seed: every candidate, auto and the baselines;
    the default's own row is 0 against itself and costs a share of 1; auto's users are the
    users; the rule file loads and runs as --train-part auto."""
    from pitune_tf.common.plotting import is_png
    from pitune_tf.experiments.train_part import AUTO, DEFAULT, RULE_FILE, fold, run_train_part

    out = tmp_path / "study"
    assert run_train_part(tiny_run, out, preset="demo", seeds=1) == {"pituning_train_part": "ran"}
    table = pd.read_csv(out / "pituning_train_part.csv").set_index("model")
    candidates = ["head", "head+unlearn", "all", "all+unlearn"]  # top1 of the 1-block student: all's cost
    assert list(table.index) == ["most_frequent", "last_event_intent", "none", *candidates, AUTO, "oracle"]
    assert table.loc[DEFAULT, "flops_share"] == 1.0 and table.loc[DEFAULT, f"vs_{DEFAULT}:prec_w"].startswith("+0.0000")
    assert table.loc["head", "flops_share"] < table.loc["all", "flops_share"]
    assert table.loc[AUTO, "users_chosen"] == table.loc[candidates, "users_chosen"].sum() == 3
    assert len({fold(u) for u in pd.read_csv(out / "runs" / "individual" / "train_part_all" / "seed0"
                                             / "per_user.csv")["user_id"]}) == 2
    assert is_png(out / "pituning_train_part.png")
    rule = TrainPartRule.load(out / RULE_FILE)
    assert rule.fitted_on["users"] == 3 and set(rule.candidates) == set(candidates)
    _run(tiny_run, tmp_path / "auto", "--train-part", "auto", "--train-part-rule", str(out / RULE_FILE))


def test_step_flops_add_up(tiny_run):
    """A step's estimate is the forward pass plus twice the forward FLOPs of the part it
    trains; the blocks and the head sum to the forward pass."""
    from pitune_tf.models.train_parts import step_flops
    from pitune_tf.population import load_run

    run = load_run(tiny_run)
    flops = step_flops(run.student, int(run.config.history))
    forward, by_part = flops["forward"], flops["by_part"]
    assert set(by_part) == {"head", "block_0"} and sum(by_part.values()) == forward > 0
    assert flops["steps"] == {"head": forward + 2 * by_part["head"], "top1": 3 * forward, "all": 3 * forward}
