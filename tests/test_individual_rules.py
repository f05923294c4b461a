"""Individual stage, pure parts: ManageIntents (Eq. 8-10), the unlearning loss (Eq. 11) and
focal loss on fixed logits, oversampling, Appendix E's T0/T1 features."""

import math

import numpy as np
import pytest

from pitune_tf.common.errors import UserInputError
from pitune_tf.individual.focal import focal_loss
from pitune_tf.individual.lgbm_features import (
    feature_names,
    table5_params,
    time_since_last,
    top_locations,
    window_features,
)
from pitune_tf.individual.manage_intents import intent_shares, manage_intents
from pitune_tf.individual.oversampling import oversample_indices
from pitune_tf.individual.unlearning import unlearning_loss, unlearning_terms

# ids 0, 1 reserved; 4 real intents 2..5, so 1 / N_I = 0.25.
P_OUT = np.array([0.0, 0.0, 0.50, 0.30, 0.19, 0.01])
P_POP = np.array([0.0, 0.0, 0.40, 0.35, 0.20, 0.05])


def test_static_set_is_intents_below_threshold():
    sets = manage_intents(P_OUT, P_POP, p_in=P_POP, static_threshold=0.02)
    assert sets.static == (5,)  # 0.01 < 0.02; the reserved 0, 1 (share 0) are never in F
    assert sets.dynamic == ()  # the user's shares follow the population
    assert sets.forget == (5,) and sets.retain == (2, 3, 4)


def test_dynamic_set_is_population_rare_but_user_frequent():
    p_in = np.array([0.0, 0.0, 0.10, 0.30, 0.30, 0.30])
    sets = manage_intents(P_OUT, P_POP, p_in, static_threshold=0.0)
    # 4: P_pop 0.20 < 0.25 and P_in 0.30 > 0.25; 5: 0.05 < 0.25 and 0.30 > 0.25;
    # 3: P_pop 0.35 is not below the mean.
    assert sets.dynamic == (4, 5)
    assert sets.static == ()
    assert sets.forget == (4, 5) and sets.retain == (2, 3)


def test_forget_is_union_and_masks_partition_real_intents():
    p_in = np.array([0.0, 0.0, 0.2, 0.2, 0.6, 0.0])
    sets = manage_intents(P_OUT, P_POP, p_in, static_threshold=0.02)
    assert sets.static == (5,) and sets.dynamic == (4,)
    assert sets.forget == (4, 5)
    np.testing.assert_array_equal(sets.forget_mask(), [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(sets.retain_mask(), [0, 0, 1, 1, 0, 0])


def test_default_threshold_and_reserved_ids_never_forgotten():
    # Default threshold 0.2 / 4 = 0.05: only intent 5 (0.01); pad / unk shares are 0 but never in F.
    sets = manage_intents(P_OUT, P_POP, P_POP)
    assert sets.static == (5,)
    assert 0 not in sets.forget and 1 not in sets.forget
    assert 0 not in sets.retain and 1 not in sets.retain


def test_manage_intents_rejects_bad_shapes():
    with pytest.raises(UserInputError):
        manage_intents(P_OUT, P_POP[:3], P_POP)


def test_intent_shares():
    np.testing.assert_allclose(intent_shares([2, 2, 3, 5], 6), [0, 0, 0.5, 0.25, 0, 0.25])


def test_unlearning_loss_hand_computed():
    logits = np.array([[0.0, math.log(2.0), math.log(5.0)]], np.float32)  # q = (1, 2, 5) / 8
    original = np.array([[math.log(2.0), 0.0, math.log(1.0)]], np.float32)  # p0 = (.5, .25, .25)
    retain, forget = np.array([1.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    # Within R = {0, 1}: q|R = (1/3, 2/3), p0|R = (2/3, 1/3).
    retain_ce = -(2 / 3 * math.log(1 / 3) + 1 / 3 * math.log(2 / 3))
    forget_ce = -(0.25 * math.log(5 / 8))
    terms = unlearning_terms(logits, original, retain, forget, lam=2.0)
    assert float(terms["retain_ce"]) == pytest.approx(retain_ce, rel=1e-6)
    assert float(terms["forget_ce"]) == pytest.approx(forget_ce, rel=1e-6)
    loss = unlearning_loss(logits, original, retain, forget, lam=2.0)
    assert float(loss) == pytest.approx(2.0 * retain_ce - forget_ce, rel=1e-6)


def test_unlearning_forget_term_is_clipped():
    # q_2 = e^-20 / (1 + e^-20): far below the floor, so forget_ce = -p0_2 * log(1e-3).
    logits = np.array([[0.0, 0.0, -20.0]], np.float32)
    original = np.zeros([1, 3], np.float32)  # p0 = 1/3 each
    terms = unlearning_terms(logits, original, [1.0, 1.0, 0.0], [0.0, 0.0, 1.0],
                             min_log_prob=math.log(1e-3))
    assert float(terms["forget_ce"]) == pytest.approx(-math.log(1e-3) / 3, rel=1e-6)


def test_unlearning_retain_term_is_minimal_at_the_original():
    from pitune_tf.common.keras import tf

    original = tf.constant([[0.3, -1.0, 2.0, 0.5]])
    retain, forget = [1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]
    # Moving only the forgotten logit leaves q|R unchanged: retain_ce stays at its minimum.
    moved = original + tf.constant([[0.0, -3.0, 0.0, 0.0]])
    at_original = unlearning_terms(original, original, retain, forget)["retain_ce"]
    assert float(unlearning_terms(moved, original, retain, forget)["retain_ce"]) == pytest.approx(
        float(at_original), rel=1e-6)
    logits = tf.Variable(original)
    with tf.GradientTape() as tape:
        retain_ce = unlearning_terms(logits, original, retain, forget)["retain_ce"]
    np.testing.assert_allclose(tape.gradient(retain_ce, logits).numpy(), 0.0, atol=1e-6)


def test_unlearning_sample_weight_ignores_padding_rows():
    logits = np.array([[1.0, 0.0], [5.0, -5.0]], np.float32)
    original = np.array([[0.0, 1.0], [0.0, 0.0]], np.float32)
    full = unlearning_loss(logits[:1], original[:1], [1.0, 0.0], [0.0, 1.0])
    padded = unlearning_loss(logits, original, [1.0, 0.0], [0.0, 1.0], sample_weight=[1.0, 0.0])
    assert float(padded) == pytest.approx(float(full), rel=1e-6)


def test_focal_loss_hand_computed():
    logits = np.array([[0.0, math.log(3.0)]], np.float32)  # q = (.25, .75)
    expected = -((1 - 0.75) ** 2) * math.log(0.75)
    assert float(focal_loss([1], logits, gamma=2.0)) == pytest.approx(expected, rel=1e-6)
    assert float(focal_loss([1], logits, gamma=0.0)) == pytest.approx(-math.log(0.75), rel=1e-6)


def test_oversample_indices():
    labels = np.array([2] * 10 + [3] * 2 + [4] * 6)
    index = oversample_indices(labels, ratio=0.5, seed=0)
    counts = np.bincount(labels[index], minlength=5)
    assert counts[2] == 10 and counts[3] == 5 and counts[4] == 6  # 3 raised to ceil(0.5 * 10)
    assert set(range(len(labels))) <= set(index.tolist())  # every original window kept
    np.testing.assert_array_equal(index, oversample_indices(labels, ratio=0.5, seed=0))


def test_t0_t1_on_hand_made_log():
    # Events at t = 0, 10, 30, 60, 100 with intents 2, 3, 2, 2, 3 (n_intents 4).
    t0, t1 = time_since_last([0, 10, 30, 60, 100], [2, 3, 2, 2, 3], 4)
    nan = np.nan
    np.testing.assert_array_equal(t0[:, 2], [nan, 10, 30, 30, 40])  # since the last intent 2
    np.testing.assert_array_equal(t1[:, 2], [nan, nan, nan, 30, 30])  # between its last two
    np.testing.assert_array_equal(t0[:, 3], [nan, nan, 20, 50, 90])
    np.testing.assert_array_equal(t1[:, 3], [nan, nan, nan, nan, nan])


def test_window_features_context_columns():
    # 2023-06-03 09:30 (a Saturday) and 2023-06-05 20:00 (a Monday), as naive-local seconds.
    ts = np.array([1685784600, 1685995200])
    probs = np.array([[0, 0, 0.7, 0.3], [0, 0, 0.1, 0.9]])
    t0 = np.full((2, 4), 5.0)
    t1 = np.full((2, 4), 7.0)
    top = top_locations([4, 4, 5, 6, 6, 6], k=2)
    np.testing.assert_array_equal(top, [6, 4])
    x = window_features(probs, [4, 5], ts, t0, t1, top)
    names = feature_names(["<pad>", "<unk>", "a", "b"])
    assert x.shape == (2, len(names)) == (2, 14)
    row = dict(zip(names, x[0]))
    assert row["prob_a"] == 0.7 and row["loc_top10"] == 1 and row["hour"] == 9
    assert row["weekday"] == 5 and row["weekend"] == 1 and row["morning"] == 1
    assert row["t0_b"] == 5 and row["t1_a"] == 7
    row = dict(zip(names, x[1]))
    assert row["loc_top10"] == 0 and row["hour"] == 20 and row["evening"] == 1 and row["weekend"] == 0


def test_table5_parameters_and_small_data_fallback():
    big = table5_params(500, 18)
    assert (big["num_leaves"], big["max_depth"], big["min_data_in_leaf"], big["seed"]) == (32, -1, 20, 42)
    small = table5_params(199, 18)
    assert (small["max_depth"], small["num_leaves"], small["lambda_l1"], small["lambda_l2"]) == (3, 3, 1, 1)


def test_prior_correction_bias_and_beta_by_hand():
    """prior: bias = log P_in - log P_pop with P_in smoothed toward P_pop by k pseudo-windows;
    beta is the grid value with the lowest validation cross-entropy."""
    from types import SimpleNamespace

    from pitune_tf.individual.engine import PersonalizationEngine
    from pitune_tf.individual.individual_config import IndividualConfig

    engine = PersonalizationEngine.__new__(PersonalizationEngine)
    engine.config = IndividualConfig(prior_pseudo_count=2.0, prior_betas=(0.0, 1.0))
    engine.run = SimpleNamespace(p_pop=np.array([0.0, 0.0, 0.5, 0.5]))
    engine.n_intents = 4
    bias = engine.prior_bias(np.array([2, 2, 3, 2]))  # counts 3, 1 of 4; + 2 * (0.5, 0.5)
    assert bias[:2].tolist() == [0.0, 0.0]
    assert bias[2] == pytest.approx(math.log((3 + 1) / 6 / 0.5))
    assert bias[3] == pytest.approx(math.log((1 + 1) / 6 / 0.5))
    logits = np.zeros((2, 4))
    assert engine.choose_prior_beta(logits, np.array([2, 2]), bias) == 1.0  # intent 2 favoured
    assert engine.choose_prior_beta(logits, np.array([3, 3]), bias) == 0.0
    assert engine.choose_prior_beta(logits[:0], np.array([], int), bias) == 0.5  # no val: default


def test_split_days_and_fewer_training_days_keep_validation_and_test():
    """The Honor split (7 / 1 / 4 days) and Fig. 9's study: --train-days K keeps the last K
    training days and leaves the validation and test windows as they were."""
    from pitune_tf.data import Vocabularies
    from pitune_tf.data.features import day_index
    from pitune_tf.data.synthetic import generate
    from pitune_tf.individual.user_data import prepare_users

    data = generate("tiny", seed=0)
    vocabs = Vocabularies.fit(data.population)
    full, _ = prepare_users(data.individual, vocabs, history=8, slot_minutes=60, days=(7, 1, 4))
    short, _ = prepare_users(data.individual, vocabs, history=8, slot_minutes=60, days=(7, 1, 4),
                             train_days=2)
    assert [u.user for u in full] == [u.user for u in short]
    for a, b in zip(full, short):
        np.testing.assert_array_equal(a.test.timestamp, b.test.timestamp)
        np.testing.assert_array_equal(a.val.timestamp, b.val.timestamp)
        assert 0 < len(b.train) < len(a.train)
        first = day_index(np.concatenate([a.train.timestamp, a.val.timestamp])).min()
        assert (day_index(b.train.timestamp) - first).min() >= 5


def test_trivial_per_user_baselines_by_hand():
    """most_frequent: the user's smoothed intent frequencies on every test row;
    last_event_intent: the window's last event's intent first, then P_in order."""
    from types import SimpleNamespace

    from pitune_tf.individual.engine import PersonalizationEngine
    from pitune_tf.individual.individual_config import IndividualConfig

    engine = PersonalizationEngine.__new__(PersonalizationEngine)
    engine.config = IndividualConfig(prior_pseudo_count=2.0)
    engine.run = SimpleNamespace(p_pop=np.array([0.0, 0.0, 0.5, 0.5]))
    engine.n_intents = 4
    user = SimpleNamespace(train=SimpleNamespace(label=np.array([2, 2, 3, 2])),
                           test=np.zeros(2), test_event_index=np.array([3, 5]),
                           event_intent=np.array([2, 2, 2, 3, 3, 2], np.int32))
    frequent, _ = engine.method_most_frequent(user, None)
    np.testing.assert_allclose(frequent, [[0, 0, 4 / 6, 2 / 6]] * 2, rtol=1e-6)
    last, _ = engine.method_last_event_intent(user, None)
    assert last.argmax(axis=1).tolist() == [2, 3]  # events 2 and 4 precede the predicted ones
    np.testing.assert_allclose(last.sum(axis=1), 1.0, rtol=1e-6)
    assert last[1, 2] > last[1, 0]  # ties broken by P_in


class _Rows:
    """n windows of label 1 (what the engine's loop reads of a user's windows)."""

    def __init__(self, n):
        self.label = np.ones(n, np.int64)

    def __len__(self):
        return len(self.label)

    def features(self):
        return {"event": np.zeros((len(self), 1), np.int32)}

    @classmethod
    def concatenate(cls, parts):
        return cls(sum(len(p) for p in parts))


def _one_forgotten_intent():
    """ManageIntents' sets of 2 intents: intent 1 forgotten, intent 0 retained."""
    from types import SimpleNamespace

    return SimpleNamespace(forget=[1], forget_mask=lambda: np.array([0.0, 1.0]),
                           retain_mask=lambda: np.array([1.0, 0.0]))


def test_unlearning_keeps_the_number_of_steps_best_on_validation():
    """With the validation gate, the weights after k of the unlearning steps are kept, k the
    step count with the lowest validation cross-entropy (0 = shipped weights included)."""
    from types import SimpleNamespace

    from pitune_tf.individual.engine import PersonalizationEngine
    from pitune_tf.individual.individual_config import IndividualConfig

    class Backend:  # weights = the number of steps taken; P(label) is highest after 2 steps
        n_intents = 2

        def __init__(self, best):
            self.steps, self.best = 0, best

        def logits(self, windows):
            return np.tile([[0.0, -abs(self.steps - self.best)]], (len(windows), 1))

        def unlearn(self, features, original, weight, retain, forget):
            self.steps += 1
            return {"loss": 0.0, "forget_ce": 0.0}

        def get_weights(self):
            return self.steps

        def set_weights(self, weights):
            self.steps = weights

    sets = _one_forgotten_intent()
    for best, kept in ((2, 2), (0, 0), (9, 5)):
        engine = PersonalizationEngine.__new__(PersonalizationEngine)
        engine.config = IndividualConfig(unlearn_steps=5, batch_size=2, unlearn_gate=True)
        engine.batch_size, engine.backend = 2, Backend(best)
        user = SimpleNamespace(user="u", train=_Rows(4), val=_Rows(3))
        info = engine.unlearn(user, sets)
        assert engine.backend.steps == kept and info["unlearn_kept_steps"] == kept
        assert info["unlearn_kept"] == (kept > 0) and info["unlearn_steps"] == 5


def test_pituning_keeps_the_unlearned_start_only_if_it_fine_tunes_better_on_validation():
    """``unlearn_select="after_finetune"``: fine-tuning runs from the unlearned and from the
    shipped weights, and the one with the lower validation cross-entropy after fine-tuning is
    kept; ``"none"`` keeps the unlearned start (Algorithm 1 as written)."""
    from types import SimpleNamespace

    from pitune_tf.individual.engine import PersonalizationEngine
    from pitune_tf.individual.individual_config import IndividualConfig

    class Backend:  # weights (u, e): unlearning steps, fine-tuning steps taken
        n_intents = 2

        def __init__(self, bonus):
            self.state, self.bonus = (0, 0), bonus

        def logits(self, windows):  # P(label) peaks after 2 fine-tuning epochs (1 step each)
            u, e = self.state
            score = -abs(e - 2) + (self.bonus if u else 0.0)
            return np.tile([[0.0, score]], (len(windows), 1))

        def unlearn(self, features, original, weight, retain, forget):
            self.state = (self.state[0] + 1, self.state[1])
            return {"loss": 0.0, "forget_ce": 0.0}

        def train(self, features, labels, weight, objective="ce"):
            self.state = (self.state[0], self.state[1] + 1)
            return 0.0

        def get_weights(self):
            return self.state

        def set_weights(self, weights):
            self.state = weights

        def reset(self):
            self.state = (0, 0)

    sets = _one_forgotten_intent()
    user = SimpleNamespace(user="u", train=_Rows(2), val=_Rows(3), test=_Rows(2))
    # refit: from the kept start, best_epoch = 2 epochs on train + val (5 rows, batches of
    # 2: 3 steps an epoch), so 6 fine-tuning steps
    for bonus, select, state, kept, refit in ((0.5, "after_finetune", (3, 2), True, False),
                                              (-0.5, "after_finetune", (0, 2), False, False),
                                              (-0.5, "none", (3, 2), True, False),
                                              (0.5, "after_finetune", (3, 6), True, True),
                                              (-0.5, "after_finetune", (0, 6), False, True)):
        engine = PersonalizationEngine.__new__(PersonalizationEngine)
        engine.config = IndividualConfig(unlearn_steps=3, batch_size=2, max_epochs=5, patience=1,
                                         unlearn_gate=False, unlearn_select=select,
                                         prior_after_tuning=False, refit=refit)
        engine.batch_size, engine.backend = 2, Backend(bonus)
        engine.backend.reset()
        _, info = engine.method_pituning(user, sets)
        assert engine.backend.state == state, (bonus, select, refit)
        assert info["unlearn_kept_after_finetune"] is kept and info["best_epoch"] == 2
        assert info.get("refit_epochs") == (2 if refit else None)
    with pytest.raises(UserInputError):
        IndividualConfig(unlearn_select="sometimes")


def test_validation_scores_of_each_method_and_their_pooled_metrics():
    """``val_scores``: the trivial baselines on the validation windows' own events, the model
    the method ended with (its prior shift included) on the validation windows; the report
    pools them into ``validation`` metrics with the cross-entropy, by hand."""
    from types import SimpleNamespace

    from pitune_tf.individual.engine import PersonalizationEngine
    from pitune_tf.individual.individual_config import IndividualConfig
    from pitune_tf.individual.summary import validation_metrics

    class Backend:
        n_intents = 2

        def logits(self, windows):
            return np.tile([[0.0, np.log(3.0)]], (len(windows), 1))  # P = (1/4, 3/4)

    engine = PersonalizationEngine.__new__(PersonalizationEngine)
    engine.config = IndividualConfig(prior_pseudo_count=0.0)
    engine.run = SimpleNamespace(p_pop=np.array([0.5, 0.5]))
    engine.n_intents, engine.backend = 2, Backend()
    user = SimpleNamespace(train=SimpleNamespace(label=np.array([0, 0, 0, 1])), val=_Rows(2),
                           val_event_index=np.array([1, 2]), event_intent=np.array([1, 0, 1]))
    np.testing.assert_allclose(engine.val_scores("none", user, {}), [[0.25, 0.75]] * 2, rtol=1e-6)
    # prior, beta 1: logits + log(P_in / P_pop) = (0 + log 1.5, log 3 + log 0.5) -> (1/2, 1/2)
    np.testing.assert_allclose(engine.val_scores("prior", user, {"prior_beta": 1.0}),
                               [[0.5, 0.5]] * 2, rtol=1e-6)
    np.testing.assert_allclose(engine.val_scores("most_frequent", user, {}), [[0.75, 0.25]] * 2)
    assert engine.val_scores("last_event_intent", user, {}).argmax(axis=1).tolist() == [1, 0]
    # mpda's final model is the engine's student too: its validation scores, its prior shift
    np.testing.assert_allclose(engine.val_scores("mpda", user, {"prior_beta": 1.0}),
                               [[0.5, 0.5]] * 2, rtol=1e-6)
    assert engine.val_scores("lgbm", user, {}) is None  # outside the loop
    record = {"val_y_true": np.array([1, 1]),
              "methods": {"none": {"val_scores": engine.val_scores("none", user, {})}}}
    metrics = validation_metrics([record, record], "none")
    assert metrics["windows"] == 4 and metrics["acc"] == 1.0
    assert metrics["ce"] == pytest.approx(-np.log(0.75))
    assert validation_metrics([record], "prior") == {}


def test_the_method_registry_is_what_each_backend_runs():
    """pitune_tf.individual.methods states every method once: its backends are what the
    engine runs on each (the Keras engine's extra methods included), its defaults run there,
    and the tables' row order holds every method."""
    from types import SimpleNamespace

    from pitune_tf.individual import methods
    from pitune_tf.individual.baselines import BASELINES
    from pitune_tf.individual.engine import PersonalizationEngine
    from pitune_tf.individual.teacher_methods import TeacherMethods

    run = SimpleNamespace(vocabs=SimpleNamespace(n_intents=6))
    config = SimpleNamespace(batch_size=4, train_part="all")
    extra = {**TeacherMethods(run, config).as_dict(), "mpda": None, **BASELINES}
    runs = {methods.KERAS: PersonalizationEngine(SimpleNamespace(objectives=("ce", "focal")), run,
                                                 config, extra_methods=extra).methods,
            methods.LITERT: PersonalizationEngine(SimpleNamespace(objectives=("ce",)), run,
                                                  config).methods}
    for backend in methods.BACKENDS:
        assert sorted(runs[backend]) == sorted(methods.methods_on(backend)), backend
        assert set(methods.default_methods(backend)) <= set(methods.methods_on(backend))
    assert sorted(methods.METHOD_ORDER) == sorted(methods.METHODS)


def test_shipped_guard_keeps_the_tuned_model_only_on_a_clear_validation_gain():
    """``shipped_guard``: the per-window validation log-loss gain of the tuned model over the
    shipped one must exceed ``shipped_guard_z`` standard errors; else the shipped model's
    scores (and weights) come back. Hand-computed: every window's label is 1, the shipped
    model says P(1) = 0.5; the tuned model's validation logits s give gains
    log sigmoid(s) - log 0.5."""
    from types import SimpleNamespace

    from pitune_tf.individual.engine import PersonalizationEngine
    from pitune_tf.individual.individual_config import IndividualConfig

    class Rows(_Rows):
        def __init__(self, n, name):
            super().__init__(n)
            self.name = name

    class Backend:  # weights: whether the model is the tuned one
        n_intents = 2

        def __init__(self, tuned_val):
            self.tuned, self.tuned_val = False, np.asarray(tuned_val, float)

        def logits(self, windows):
            score = (self.tuned_val if windows.name == "val" else np.full(len(windows), 2.0)) \
                if self.tuned else np.zeros(len(windows))
            return np.stack([np.zeros_like(score), score], axis=1)

        def get_weights(self):
            return self.tuned

        def set_weights(self, weights):
            self.tuned = weights

        def reset(self):
            self.tuned = False

    user = SimpleNamespace(user="u", train=Rows(2, "train"), val=Rows(3, "val"), test=Rows(2, "test"))
    # s = 3, -1, 0.5: gains 0.64456, -0.62012, 0.21907; mean 0.08117, se 0.37153
    for tuned_val, z, kept, gain, margin in (([2.0, 2.0, 2.0], 1.0, True, 0.56622, 0.0),
                                             ([3.0, -1.0, 0.5], 1.0, False, 0.08117, 0.37153),
                                             ([3.0, -1.0, 0.5], 0.0, True, 0.08117, 0.0)):
        engine = PersonalizationEngine.__new__(PersonalizationEngine)
        engine.config = IndividualConfig(prior_after_tuning=False, refit=False, shipped_guard=True,
                                         shipped_guard_z=z)
        engine.batch_size, engine.backend, engine._shipped = 2, Backend(tuned_val), None
        engine.backend.tuned = True  # fine-tuning happened
        scores, info = engine.tuned_scores(user, {"best_epoch": 1})
        assert info["guard_kept"] is kept and engine.backend.tuned is kept, tuned_val
        assert info["guard_val_gain"] == pytest.approx(gain, abs=1e-5)
        assert info["guard_margin"] == pytest.approx(margin, abs=1e-5)
        expected = 1 / (1 + math.exp(-2.0)) if kept else 0.5
        np.testing.assert_allclose(scores[:, 1], expected, rtol=1e-6)
        if not kept:  # validation metrics report the shipped model too
            np.testing.assert_allclose(engine.val_scores("finetune", user, info)[:, 1], 0.5)
    engine._shipped, user.val = None, Rows(0, "val")  # no validation windows: the shipped model
    engine.backend.tuned = True
    assert engine.tuned_scores(user, {"best_epoch": 1})[1]["guard_kept"] is False


def test_shrink_to_shipped_picks_the_alpha_of_the_lowest_validation_loss():
    """``shrink_to_shipped``: the weights alpha * tuned + (1 - alpha) * shipped, alpha of the
    grid with the lowest validation log-loss. Hand-computed: one weight w, logits (0, w); the
    shipped w = 0, the tuned w = 4, so the grid 0, 0.25, ..., 1 gives w = 0, 1, 2, 3, 4;
    validation labels 1, 1, 0: loss(w) = -(2 log sigmoid(w) + log sigmoid(-w)) / 3 =
    0.6931, 0.6466, 0.7936, ... -> alpha 0.25 (w = 1), test P(1) = sigmoid(1)."""
    from types import SimpleNamespace

    from pitune_tf.individual.engine import PersonalizationEngine, interpolate
    from pitune_tf.individual.individual_config import IndividualConfig

    class Backend:  # the on-device layout: one float32 vector
        n_intents = 2

        def __init__(self):
            self.w = np.array([4.0], np.float32)

        def logits(self, windows):
            return np.stack([np.zeros(len(windows)), np.full(len(windows), float(self.w[0]))], axis=1)

        def get_weights(self):
            return self.w.copy()

        def set_weights(self, weights):
            self.w = np.asarray(weights, np.float32)

        def reset(self):
            self.w = np.array([0.0], np.float32)

    val = _Rows(3)
    val.label = np.array([1, 1, 0])
    user = SimpleNamespace(user="u", train=_Rows(2), val=val, test=_Rows(2))
    engine = PersonalizationEngine.__new__(PersonalizationEngine)
    engine.config = IndividualConfig(shrink_to_shipped=True)
    engine.batch_size, engine.backend, engine._shipped = 2, Backend(), None
    scores, info = engine.tuned_scores(user, {"best_epoch": 1})
    assert info["shrink_alpha"] == 0.25 and engine.backend.w[0] == pytest.approx(1.0)
    np.testing.assert_allclose(scores[:, 1], 1 / (1 + math.exp(-1.0)), rtol=1e-6)
    engine.config = IndividualConfig(shrink_to_shipped=True, shrink_alphas=(0.5, 1.0))
    engine.backend = Backend()
    assert engine.tuned_scores(user, {"best_epoch": 1})[1]["shrink_alpha"] == 0.5  # w = 2 beats 4
    user.val = _Rows(0)  # no validation windows: the tuned model as it is
    engine.backend = Backend()
    assert "shrink_alpha" not in engine.tuned_scores(user, {"best_epoch": 1})[1]
    # the Keras layout: a list of arrays
    mixed = interpolate([np.zeros((2, 2), np.float32), np.ones(3, np.float32)],
                        [np.full((2, 2), 4.0, np.float32), np.full(3, 3.0, np.float32)], 0.25)
    np.testing.assert_allclose(mixed[0], 1.0)
    np.testing.assert_allclose(mixed[1], 1.5)
    assert mixed[0].dtype == np.float32
    with pytest.raises(UserInputError, match="shrink_alphas"):
        IndividualConfig(shrink_alphas=(0.5, 1.5)).validate()


def test_repeat_mix_picks_the_weight_of_the_lowest_validation_loss():
    """``repeat_mix``: (1 - w) * model + w * the last event's intent, w of the grid with the
    lowest validation log-loss. Hand-computed: the model says P(1) = 0.5; the last event's
    intent is 1 in every window; validation labels 1, 1, 1, 0: loss(w) =
    -(3 log(0.5 + 0.5 w) + log(0.5 - 0.5 w)) / 4 = 0.693, 0.648, 0.598, 0.562, 0.620 for
    w = 0, 0.1, 0.25, 0.5, 0.75 -> w = 0.5; test P(1) = 0.75."""
    from types import SimpleNamespace

    from pitune_tf.individual.engine import PersonalizationEngine
    from pitune_tf.individual.individual_config import IndividualConfig

    class Backend:
        n_intents = 2

        def logits(self, windows):
            return np.zeros((len(windows), 2))

    val = _Rows(4)
    val.label = np.array([1, 1, 1, 0])
    user = SimpleNamespace(user="u", train=_Rows(2), val=val, test=_Rows(3),
                           val_event_index=np.arange(4), test_event_index=np.arange(3))
    engine = PersonalizationEngine.__new__(PersonalizationEngine)
    engine.config = IndividualConfig(repeat_mix=True)
    engine.batch_size, engine.backend, engine._shipped = 2, Backend(), None
    engine.trivial_scores = lambda method, user, index: np.tile([0.0, 1.0], (len(index), 1))
    scores, info = engine.tuned_scores(user, {"best_epoch": 1})
    assert info["repeat_mix_weight"] == 0.5
    np.testing.assert_allclose(scores, [[0.25, 0.75]] * 3)
    np.testing.assert_allclose(engine.val_scores("finetune", user, info)[:, 1], 0.75)  # reported too
    user.val = _Rows(0)  # no validation windows: the model as it is
    assert "repeat_mix_weight" not in engine.tuned_scores(user, {"best_epoch": 1})[1]
