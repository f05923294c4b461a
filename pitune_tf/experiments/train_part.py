"""PITuning on a cheaper phone (``pituning_train_part``): which part of the student each user
fine-tunes, and whether PITuning's unlearning runs, chosen before training by a rule learned
on other users (``--train-part auto``: :mod:`pitune_tf.individual.train_part_rule`).

For each seed k (population and individual seed RUN's seed + k, as the ledger's default
profile): the population run, then the individual stage in our defaults with ``finetune``
and ``pituning`` at every train part of the student (:func:`candidate_parts`). A *candidate* is a part (``finetune``
there) or a part with unlearning first (``pituning`` there); today's default is
``all+unlearn``. Per user and candidate: the test cross-entropy, the training FLOPs (the
fine-tuning epochs run x batches x the part's step estimate, plus the unlearning steps x the
full step's: :func:`pitune_tf.models.train_parts.step_flops`) and the Keras seconds.

``auto`` is cross-fitted: the users are split in two folds by a hash of their id (a user is
in the same fold at every seed); the rule applied to one fold's users is fitted on the other
fold's (all seeds), each fitting user labelled with the cheapest candidate whose test
cross-entropy is within the rule's margin of that user's best, the margin the smallest
whose rule spends at most :data:`BUDGET` of the default's FLOPs on the fitting users. ``auto``'s predictions for a
user are those of the candidate the rule chose, which is what an ``auto`` run computes
(``tests/test_train_part_rule.py``). The rule fitted on every user of every seed is written
to ``OUT/train_part_rule.json`` for ``trainers.individual --train-part auto
--train-part-rule``.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd

from pitune_tf.common.errors import UserInputError
from pitune_tf.common.experiment_suite import Registry, TrivialCheck, run_suite
from pitune_tf.common.plotting import pyplot, save_png
from pitune_tf.experiments.ledger import run_predictions
from pitune_tf.experiments.pituning_suite import PITuningSuite
from pitune_tf.individual.engine import mean_cross_entropy
from pitune_tf.individual.methods import ORACLES, TRIVIAL_METHODS
from pitune_tf.individual.train_part_rule import FEATURES, TrainPartRule, candidate
from pitune_tf.metrics import bootstrap_groups, difference_cell, intent_metrics, paired_bootstrap
from pitune_tf.models.train_parts import step_flops, train_parts

DEFAULT = "all+unlearn"  # today's default pituning: every weight, unlearning first
AUTO = "auto (cross-fitted)"
RULE_FILE = "train_part_rule.json"
BUDGET = 0.5  # the rule spends at most half of today's default's training FLOPs (issue 33's target)
SHOWN = ("prec_w", "prec_m", "rec_m", "ndcg@3")
PAIRED = ("prec_w", "rec_m")
registry = Registry("PITuning on a cheaper phone: --train-part auto",
                    trivial=TrivialCheck("model", TRIVIAL_METHODS, "prec_w", exempt=ORACLES))


def seed_outcomes(suite: PITuningSuite, seed: int) -> dict:
    """One seed's candidates: ``{"users", "y", "scores": {candidate or baseline: [per-user
    probs]}, "features", "loss", "flops", "seconds"}`` (per-user rows in the default run's
    user order)."""
    population = suite.population_run(f"train_part_default_seed{seed}", seed=seed)
    run = suite.load_run(population)
    flops = step_flops(run.student, int(run.config.history))["steps"]
    batch = suite.individual_config(seed, ()).batch_size
    runs = {}
    for part in candidate_parts(run.student):
        key = f"train_part_{part}"
        suite.individual(population, key, seed, ("none", "finetune", "pituning"), users=0,
                         predictions=True, train_part=part)
        out = suite.individual_dir(key, seed)
        runs[part] = (out, pd.read_csv(out / "per_user.csv", dtype={"user_id": str}))
    out, frame = runs["all"]
    users = list(dict.fromkeys(run_predictions(out, "none")[0]))
    result = {"users": users, "scores": {}, "loss": {}, "flops": {}, "seconds": {}}
    for method in (*TRIVIAL_METHODS, "none", "oracle"):  # the oracle where the log has one
        if method in set(pd.read_csv(out / "predictions.csv", usecols=["method"])["method"]):
            result["scores"][method] = _per_user(out, method, users)
    base = frame[frame["method"] == "none"].set_index("user_id").loc[users]
    result["features"] = base[list(FEATURES)].to_numpy(np.float64)
    result["y"] = _per_user(out, "none", users, labels=True)
    for part, (out, frame) in runs.items():
        for method, unlearn in (("finetune", False), ("pituning", True)):
            name = candidate(part, unlearn)
            rows = frame[frame["method"] == method].set_index("user_id").loc[users]
            result["scores"][name] = _per_user(out, method, users)
            result["loss"][name] = np.array([mean_cross_entropy(p, y) for y, p in
                                             zip(result["y"], result["scores"][name])])
            steps = rows["epochs"].to_numpy() * np.ceil(rows["n_train"].to_numpy() / batch)
            unlearned = rows["unlearn_steps"].fillna(0).to_numpy() if "unlearn_steps" in rows else 0
            result["flops"][name] = batch * (steps * flops[part] + unlearned * flops["all"])
            result["seconds"][name] = rows["seconds"].to_numpy(np.float64)
    return result


def candidate_parts(student) -> list:
    """The student's train parts but ``top<K>`` of its K blocks: that differs from ``all``
    by the embeddings only, whose gathers cost no matmul FLOPs, so it never costs less."""
    parts = list(train_parts(student))
    return [p for p in parts if p != f"top{len(parts) - 2}"]


def _per_user(out, method, users, labels=False) -> list:
    ids, y, scores, _ = run_predictions(out, method)
    return [(y if labels else scores)[ids == u] for u in users]


def fold(user) -> int:
    """A user's fold (0 or 1), the same at every seed."""
    return zlib.crc32(str(user).encode("utf-8")) % 2


def _fit(outcomes, candidates, keep, budget, **fitted_on) -> TrainPartRule:
    """The rule fitted on the (seed, user) rows of ``outcomes`` where ``keep(user)``."""
    features, losses, costs = [], [], []
    for o in outcomes:
        rows = [i for i, u in enumerate(o["users"]) if keep(u)]
        features.append(o["features"][rows])
        losses.append(np.stack([o["loss"][c][rows] for c in candidates], axis=1))
        costs.append(np.stack([o["flops"][c][rows] for c in candidates], axis=1))
    n = sum(len(f) for f in features)
    return TrainPartRule.fit(np.concatenate(features), np.concatenate(losses), np.concatenate(costs),
                             candidates, budget=budget, reference=DEFAULT, min_leaf=max(3, n // 10),
                             fitted_on=fitted_on)


def train_part_table(suite: PITuningSuite, budget=BUDGET) -> pd.DataFrame:
    """One row per candidate, ``auto`` and the baselines: the metrics pooled over users and
    seeds, the paired difference against today's default (``all+unlearn``), and the
    training FLOPs and Keras seconds as shares of the default's; ``budget``: the rule's
    compute budget on its fitting users, a share of the default's FLOPs."""
    seeds = suite.seed_list()
    outcomes = [seed_outcomes(suite, s) for s in seeds]
    candidates = list(outcomes[0]["loss"])
    if len({fold(u) for o in outcomes for u in o["users"]}) < 2:
        raise UserInputError("pituning_train_part cross-fits its rule over two folds of users: "
                             "these users all fall in one (run it on more users)")
    rules = {f: _fit(outcomes, candidates, lambda u, f=f: fold(u) != f, budget) for f in (0, 1)}
    chosen_counts: dict = {}
    for o in outcomes:  # auto: the candidate the other fold's rule chooses for each user
        picks = [rules[fold(u)].choose(dict(zip(FEATURES, x))) for u, x in zip(o["users"], o["features"])]
        names = [candidate(*p) for p in picks]
        for name in names:
            chosen_counts[name] = chosen_counts.get(name, 0) + 1
        o["scores"][AUTO] = [o["scores"][n][i] for i, n in enumerate(names)]
        for key in ("flops", "seconds"):
            o[key][AUTO] = np.array([o[key][n][i] for i, n in enumerate(names)])
    final = _fit(outcomes, candidates, lambda u: True, budget, run=str(suite.run_dir),
                 seeds=seeds, users=sum(len(o["users"]) for o in outcomes))
    final.save(suite.out_dir / RULE_FILE)
    y = np.concatenate([np.concatenate(o["y"]) for o in outcomes])
    groups = np.concatenate([np.repeat([f"{s}:{u}" for u in o["users"]], [len(t) for t in o["y"]])
                             for s, o in zip(seeds, outcomes)])

    def pooled(name):
        return np.concatenate([np.concatenate(o["scores"][name]) for o in outcomes])

    default = pooled(DEFAULT)
    total = {key: sum(o[key][DEFAULT].sum() for o in outcomes) for key in ("flops", "seconds")}
    rows = []
    for name in (n for n in (*TRIVIAL_METHODS, "none", *candidates, AUTO, "oracle") if n in outcomes[0]["scores"]):
        scores = pooled(name)
        row = {"model": name, **{m: round(float(v), 4) for m, v in intent_metrics(y, scores).items()
                                 if m in SHOWN}}
        if name in (*candidates, AUTO):
            effect = paired_bootstrap(y, scores, default, groups=bootstrap_groups(groups))
            row.update({f"vs_{DEFAULT}:{m}": difference_cell(effect[m]) for m in PAIRED})
            row.update({f"{key}_share": round(sum(o[key][name].sum() for o in outcomes) / total[key], 3)
                        for key in total})
            row["users_chosen"] = chosen_counts.get(name, 0) if name != AUTO else sum(chosen_counts.values())
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame


def plot_train_part(frame, path, suite) -> None:
    """Each candidate and ``auto``: training FLOPs (share of the default's) against Prec_w."""
    fig, ax = pyplot().subplots(figsize=(6.5, 4.2))
    tuned = frame.dropna(subset=["flops_share"])
    for _, row in tuned.iterrows():
        ax.scatter(row["flops_share"], row["prec_w"], color="C3" if row["model"] == AUTO else "C0")
        ax.annotate(row["model"], (row["flops_share"], row["prec_w"]), fontsize=8,
                    xytext=(4, 2), textcoords="offset points")
    for name, style in (("none", ":"), ("last_event_intent", "-."), ("oracle", "--")):
        value = frame.loc[frame["model"] == name, "prec_w"]
        if len(value) and not math.isnan(float(value.iloc[0])):
            ax.axhline(float(value.iloc[0]), linestyle=style, color="grey", label=name)
    ax.set_xlabel(f"training FLOPs per user, share of {DEFAULT}")
    ax.set_ylabel("Prec_w (pooled over users and seeds)")
    ax.legend(loc="lower right", fontsize=8)
    save_png(fig, path)


NOTE = (f"Candidates: a train part (finetune there) or a part with unlearning first (pituning "
        f"there); {DEFAULT} is today's default pituning. {AUTO}: each user gets the candidate "
        "of a rule fitted on the other fold's users (CART, depth 2, on what the phone knows "
        "before training; label: the cheapest candidate within a margin of the user's best "
        "test cross-entropy, the margin the smallest of 0, 0.005, ..., 0.2 nats whose rule "
        f"spends at most {BUDGET:g} of {DEFAULT}'s FLOPs on the fitting users). vs_{DEFAULT}: 95% paired bootstrap over users (each user of each "
        "seed one group). flops_share: training FLOPs (matmul estimate) summed over users, "
        "as a share of the default's; seconds_share: the same for the Keras stage's seconds "
        "per user. users_chosen: how many user-seeds auto gave each candidate. The rule fitted "
        f"on every user of every seed: {RULE_FILE} beside this table.")
registry.register("pituning_train_part", "Which part of the student to fine-tune, per user",
                  plot=plot_train_part, note=NOTE)(train_part_table)


def run_train_part(run_dir, out_dir, preset="demo", seeds=3, first_seed=None, workers=1) -> dict:
    """Runs the study on the population run ``run_dir`` into ``out_dir`` (the arguments as
    ``run_ledger``'s)."""
    suite = PITuningSuite(run_dir, out_dir, preset=preset, seeds=seeds, first_seed=0, workers=workers)
    suite.first_seed = int(suite.run.config.seed) if first_seed is None else int(first_seed)
    return run_suite(registry, suite, out_dir)
