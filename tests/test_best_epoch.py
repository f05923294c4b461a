"""The best-epoch rule (pitune_tf.common.best_epoch_rule): kept epoch and stop, by hand."""

import json

from pitune_tf.common.best_epoch_rule import BestEpochRule

VALUES = [5.0, 4.0, 4.5, 3.9, 4.0, 4.1, 3.0]


def run(rule, values, first=1):
    """``rule.update`` on ``values`` from epoch ``first`` until it says stop."""
    steps = []
    for epoch, value in enumerate(values, start=first):
        steps.append(rule.update(epoch, value))
        if steps[-1][1]:
            break
    return steps


def test_lower_is_better_keeps_epoch_4_and_stops_after_epoch_6():
    # 5.0 best, 4.0 best, 4.5 (1 since 2), 3.9 best, 4.0 (1 since 4), 4.1 (2 since 4): stop
    rule = BestEpochRule(patience=2)
    assert run(rule, VALUES) == [(True, False), (True, False), (False, False), (True, False),
                                 (False, False), (False, True)]
    assert (rule.best_epoch, rule.best_value, rule.stopped_epoch) == (4, 3.9, 6)
    assert rule.state == {"best": {"epoch": 4, "value": 3.9}, "stopped_epoch": 6}


def test_higher_is_better_keeps_epoch_1_and_stops_after_epoch_3():
    rule = BestEpochRule(patience=2, higher_is_better=True)
    assert run(rule, VALUES) == [(True, False), (False, False), (False, True)]
    assert rule.state == {"best": {"epoch": 1, "value": 5.0}, "stopped_epoch": 3}


def test_a_tie_is_no_improvement_and_patience_0_never_stops():
    assert run(BestEpochRule(patience=1), [1.0, 1.0]) == [(True, False), (False, True)]
    rule = BestEpochRule(patience=0)
    assert run(rule, [1.0, 2.0, 3.0, 4.0, 5.0]) == [(True, False)] + [(False, False)] * 4
    assert (rule.best_epoch, rule.stopped, rule.state["stopped_epoch"]) == (1, False, None)


def test_an_epoch_0_start_with_patience_plus_1_stops_as_the_engine_did():
    """The per-user fine-tuning: the starting weights are epoch 0 and the fit stops once more
    than ``patience`` (here 1) epochs brought no improvement: patience 2 in the rule."""
    rule = BestEpochRule(patience=1 + 1)
    rule.update(0, 2.0)
    assert run(rule, [2.1, 1.9, 2.0, 2.2, 1.0]) == [(False, False), (True, False),
                                                    (False, False), (False, True)]
    assert (rule.best_epoch, rule.stopped_epoch) == (2, 4)


def test_state_round_trips_through_json_and_a_resumed_rule_stops_at_the_same_epoch():
    first = BestEpochRule(patience=2)
    run(first, VALUES[:3])  # interrupted after epoch 3
    state = json.loads(json.dumps(first.state))
    assert state == {"best": {"epoch": 2, "value": 4.0}, "stopped_epoch": None}
    resumed = BestEpochRule(patience=2, state=state)
    assert resumed.state == first.state
    assert run(resumed, VALUES[3:], first=4)[-1] == (False, True)
    whole = BestEpochRule(patience=2)
    run(whole, VALUES)
    assert resumed.state == whole.state
