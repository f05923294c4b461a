"""``--train-part auto``: a per-user choice, made on the phone before any training step, of
the part of the student that fine-tuning trains (``pitune_tf.models.train_parts``) and of
whether PITuning's unlearning (Eq. 11) runs at all (not in the paper, which trains every
weight and always unlearns; UAF's idea of a per-user choice of blocks, Chen, Yuan et al.,
TKDE, Eq. 6, made by a rule instead of a policy network).

The rule reads only what the phone has before training (:data:`FEATURES`): the user's
training-window count, the sizes of the forgotten and retained sets of PITuning Eq. 8-10,
how far the user's intent histogram is from the population's (KL(P_in || P_pop)) and the
shipped model's cross-entropy on the user's validation windows. It is a depth-limited
decision tree (scikit-learn's CART) fitted on other users' outcomes
(``python -m trainers.experiments pituning_train_part``): each fitting user's label is the
cheapest candidate whose test cross-entropy is within ``margin`` nats of that user's best
candidate, the margin the smallest whose rule keeps to a compute budget on those users. The tree is saved as plain JSON (thresholds and leaves) and evaluated here
without scikit-learn, as a phone would.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from pitune_tf.common.atomic import write_json
from pitune_tf.common.errors import UserInputError
from pitune_tf.common.json_files import read_json

AUTO = "auto"
FEATURES = ("log_train_windows", "forget_size", "retain_size", "kl_to_population", "shipped_val_ce")
UNLEARN = "+unlearn"  # a candidate's suffix: PITuning's unlearning runs before fine-tuning
MARGINS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)  # the labels' tolerances tried (nats)


def user_features(n_train, forget, retain, train_labels, p_pop, shipped_val_ce) -> dict:
    """The rule's inputs for one user (:data:`FEATURES`), all known before training.

    Args:
        n_train: int. The user's training windows.
        forget, retain: the forgotten and retained intent sets (PITuning Eq. 8-10).
        train_labels: int array. The training windows' intents (P_in's counts).
        p_pop: float [n_intents]. The population's intent shares.
        shipped_val_ce: float. The shipped model's mean cross-entropy on the user's
            validation windows (NaN without any).
    """
    p_pop = np.asarray(p_pop, np.float64)
    counts = np.bincount(np.asarray(train_labels, np.int64), minlength=len(p_pop))[:len(p_pop)]
    p_in = counts / max(counts.sum(), 1)
    present = p_in > 0
    kl = float(np.sum(p_in[present] * np.log(p_in[present] / np.maximum(p_pop[present], 1e-12))))
    return {"log_train_windows": math.log1p(n_train), "forget_size": float(len(forget)),
            "retain_size": float(len(retain)), "kl_to_population": kl,
            "shipped_val_ce": float(shipped_val_ce)}


def candidate(part: str, unlearn: bool) -> str:
    """A candidate's name: the train part, ``+unlearn`` when unlearning runs first."""
    return part + (UNLEARN if unlearn else "")


def split_candidate(name: str) -> tuple[str, bool]:
    """``(train part, unlearn)`` of a candidate's name."""
    return (name[:-len(UNLEARN)], True) if name.endswith(UNLEARN) else (name, False)


@dataclasses.dataclass(frozen=True)
class TrainPartRule:
    """A fitted rule: a binary tree over :data:`FEATURES` whose leaves are candidates.

    Attributes:
        tree: dict. A leaf ``{"leaf": candidate}`` or a split ``{"feature": name,
            "threshold": t, "left": ..., "right": ...}`` (``x[feature] <= t`` goes left; a
            NaN feature goes right).
        candidates: tuple of str. What the leaves may name (:func:`candidate`), cheapest first.
        margin: float. The labels' tolerance (nats of test cross-entropy).
        fitted_on: dict. Where and how it was fitted (users, seeds, data, budget and the
            share of it spent on those users), for the record.
    """

    tree: dict
    candidates: tuple
    margin: float = 0.01
    fitted_on: dict = dataclasses.field(default_factory=dict)

    def choose(self, features: dict) -> tuple[str, bool]:
        """``(train part, unlearn)`` for one user's :func:`user_features`."""
        node = self.tree
        while "leaf" not in node:
            value = features[node["feature"]]
            node = node["left"] if value <= node["threshold"] else node["right"]  # NaN: right
        return split_candidate(node["leaf"])

    def parts(self) -> set:
        """The train parts the rule can choose (the model must have each)."""
        return {split_candidate(c)[0] for c in self.candidates}

    def check_parts(self, parts, source) -> None:
        """A :class:`UserInputError` naming ``source`` (the rule's file) if the rule can
        choose a part not in ``parts`` (what the student can train)."""
        missing = sorted(self.parts() - set(parts))
        if missing:
            raise UserInputError(f"{source}: the rule chooses {', '.join(missing)}, which this "
                                 f"student cannot train ({', '.join(parts)})")

    def save(self, path) -> None:
        write_json(Path(path), {"features": list(FEATURES), **dataclasses.asdict(self)})

    @classmethod
    def load(cls, path) -> TrainPartRule:
        """The rule in ``path`` (:meth:`save`); a missing or malformed file is a
        :class:`UserInputError`."""
        path = Path(path)
        if not path.is_file():
            raise UserInputError(f"{path}: no train-part rule there (make one with python -m "
                                 "trainers.experiments pituning_train_part --run RUN)")
        data = read_json(path)
        try:
            if list(data["features"]) != list(FEATURES):
                raise ValueError(f"features {data['features']} (this version reads {list(FEATURES)})")
            rule = cls(tree=data["tree"], candidates=tuple(data["candidates"]),
                       margin=float(data["margin"]), fitted_on=dict(data.get("fitted_on", {})))
            _check_tree(rule.tree, set(rule.candidates))
        except (KeyError, TypeError, ValueError) as err:
            raise UserInputError(f"{path}: not a train-part rule ({err})") from err
        return rule

    @classmethod
    def fit(cls, features, losses, costs, candidates, budget=None, reference=None, margins=MARGINS,
            max_depth=2, min_leaf=5, fitted_on=None) -> TrainPartRule:
        """Fits the rule on other users' outcomes.

        Args:
            features: float [n_users, len(FEATURES)]. Their :func:`user_features`.
            losses: float [n_users, n_candidates]. Each candidate's mean test
                cross-entropy for each user.
            costs: float [n_users, n_candidates]. Each candidate's training FLOPs for the user.
            candidates: sequence of str, the columns' names.
            budget: float or None. The most the rule may spend on these users, as a share of
                the ``reference`` candidate's FLOPs (e.g. 0.5: half of today's default).
            reference: str. The candidate ``budget`` is a share of.
            margins: the labels' tolerances tried, smallest first: a user's label is the
                cheapest candidate within ``margin`` nats of the user's lowest loss. The
                first margin whose rule keeps to ``budget`` on these users is kept (the last
                when none does; the first without a budget).
            max_depth, min_leaf: the tree's size (scikit-learn's ``max_depth`` and
                ``min_samples_leaf``).
        """
        from sklearn.tree import DecisionTreeClassifier

        x = np.nan_to_num(np.asarray(features, np.float64), nan=np.finfo(np.float64).max)
        costs = np.asarray(costs, np.float64)
        order = np.argsort(costs.mean(axis=0), kind="stable")
        for margin in margins:
            tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_leaf, random_state=0)
            tree.fit(x, best_candidates(losses, costs, margin))
            rule = cls(tree=_tree_dict(tree, list(candidates)), margin=float(margin),
                       candidates=tuple(candidates[i] for i in order),
                       fitted_on={**(fitted_on or {}), "budget": budget, "reference": reference})
            if budget is None:
                return rule
            chosen = [list(candidates).index(candidate(*rule.choose(dict(zip(FEATURES, row)))))
                      for row in np.asarray(features, np.float64)]
            spent = costs[np.arange(len(chosen)), chosen].sum() / costs[:, list(candidates).index(reference)].sum()
            rule.fitted_on["spent"] = round(float(spent), 4)
            if spent <= budget:
                return rule
        return rule


def best_candidates(losses, costs, margin) -> np.ndarray:
    """Per user (row), the index of the cheapest candidate whose loss is within ``margin``
    of the row's lowest."""
    losses, costs = np.asarray(losses, np.float64), np.asarray(costs, np.float64)
    eligible = losses <= losses.min(axis=1, keepdims=True) + margin
    return np.argmin(np.where(eligible, costs, np.inf), axis=1)


def _tree_dict(tree, candidates) -> dict:
    """scikit-learn's fitted tree as nested dicts (:class:`TrainPartRule`'s ``tree``)."""
    t = tree.tree_

    def node(i):
        if t.children_left[i] == -1:
            return {"leaf": candidates[int(tree.classes_[int(np.argmax(t.value[i][0]))])]}
        left, right = node(int(t.children_left[i])), node(int(t.children_right[i]))
        if left == right:  # a split whose sides choose the same: one leaf
            return left
        return {"feature": FEATURES[int(t.feature[i])], "threshold": float(t.threshold[i]),
                "left": left, "right": right}

    return node(0)


def _check_tree(node, candidates) -> None:
    if "leaf" in node:
        if node["leaf"] not in candidates:
            raise ValueError(f"leaf {node['leaf']!r} is not a candidate")
        return
    if node["feature"] not in FEATURES:
        raise ValueError(f"unknown feature {node['feature']!r}")
    float(node["threshold"])
    _check_tree(node["left"], candidates)
    _check_tree(node["right"], candidates)
