"""The Pareto pruner: which running trials it stops, and which it keeps training."""

from __future__ import annotations

import doctest

import pytest

import ge_nas.search.pareto_pruner
from ge_nas.search.config import Objectives
from ge_nas.search.pareto_pruner import ParetoPruner, PruneDecision, TrialHistory
from ge_nas.search.pruning import ParetoPruning, make_pruner

# Four completed proxies of 3 epochs; cost is GFLOPs. Trials 4 and 7 are cheap and accurate.
COMPLETED = [
    TrialHistory(number=1, accuracies=(0.05, 0.10, 0.15), costs=(12.0,)),
    TrialHistory(number=4, accuracies=(0.08, 0.18, 0.25), costs=(8.0,)),
    TrialHistory(number=7, accuracies=(0.10, 0.20, 0.30), costs=(8.5,)),
    TrialHistory(number=9, accuracies=(0.04, 0.09, 0.11), costs=(6.0,)),
]


def test_trial_dominated_by_completed_trials_is_pruned_and_told_by_whom() -> None:
    decision = ParetoPruner().decide(epoch=3, accuracy=0.12, costs=(9.0,), completed=COMPLETED)
    assert decision == PruneDecision(
        epoch=3,
        reason="dominated at epoch 3 by trials 4, 7: accuracy 0.12 vs >= 0.25 at no more cost",
        dominated_by=(4, 7),
    )


def test_cheaper_trial_with_lower_accuracy_is_kept_because_it_may_be_on_the_front() -> None:
    assert ParetoPruner().decide(epoch=3, accuracy=0.12, costs=(5.0,), completed=COMPLETED) is None


def test_equal_accuracy_and_equal_cost_is_kept() -> None:
    assert ParetoPruner().decide(epoch=3, accuracy=0.25, costs=(8.0,), completed=COMPLETED) is None


def test_equal_accuracy_at_higher_cost_is_pruned() -> None:
    decision = ParetoPruner().decide(epoch=3, accuracy=0.25, costs=(8.2,), completed=COMPLETED)
    assert decision is not None
    assert decision.dominated_by == (4,)
    assert decision.reason.startswith("dominated at epoch 3 by trial 4:")


def test_trial_is_kept_during_warmup_epochs() -> None:
    pruner = ParetoPruner(n_warmup_epochs=2)
    assert pruner.decide(epoch=2, accuracy=0.01, costs=(20.0,), completed=COMPLETED) is None
    assert pruner.decide(epoch=3, accuracy=0.01, costs=(20.0,), completed=COMPLETED) is not None


def test_trial_is_kept_while_fewer_than_n_startup_trials_completed() -> None:
    pruner = ParetoPruner(n_startup_trials=5)
    assert pruner.decide(epoch=3, accuracy=0.01, costs=(20.0,), completed=COMPLETED) is None


def test_completed_trials_that_stopped_before_this_epoch_do_not_count_towards_startup() -> None:
    short = TrialHistory(number=12, accuracies=(0.50, 0.60), costs=(1.0,))
    pruner = ParetoPruner(n_startup_trials=5)
    assert pruner.decide(epoch=3, accuracy=0.01, costs=(20.0,), completed=[*COMPLETED, short]) is None


def test_completed_trials_that_stopped_before_this_epoch_never_dominate() -> None:
    short = TrialHistory(number=12, accuracies=(0.50, 0.60), costs=(1.0,))
    decision = ParetoPruner().decide(epoch=3, accuracy=0.12, costs=(9.0,), completed=[*COMPLETED, short])
    assert decision is not None
    assert decision.dominated_by == (4, 7)


def test_margin_keeps_a_near_tie_training() -> None:
    # Trial 4 is 0.02 ahead at epoch 2 and cheaper: without a margin that would be enough.
    assert ParetoPruner().decide(epoch=2, accuracy=0.16, costs=(8.2,), completed=COMPLETED) is not None
    assert ParetoPruner(margin=0.05).decide(epoch=2, accuracy=0.16, costs=(8.2,), completed=COMPLETED) is None


def test_margin_still_prunes_a_trial_behind_by_at_least_the_margin() -> None:
    completed = [TrialHistory(number=0, accuracies=(0.25, 0.5), costs=(8.0,))]
    pruner = ParetoPruner(n_startup_trials=1, margin=0.25)
    assert pruner.decide(epoch=2, accuracy=0.25, costs=(8.0,), completed=completed) is not None


def test_min_dominating_two_requires_two_dominating_trials() -> None:
    pruner = ParetoPruner(min_dominating=2)
    assert pruner.decide(epoch=3, accuracy=0.28, costs=(9.0,), completed=COMPLETED) is None  # only trial 7
    assert pruner.decide(epoch=3, accuracy=0.12, costs=(9.0,), completed=COMPLETED) is not None  # trials 4 and 7


def test_one_higher_cost_among_several_objectives_means_not_dominated() -> None:
    # Costs are (GFLOPs, params in millions, latency in ms); trial 3 is better except for latency.
    completed = [TrialHistory(number=3, accuracies=(0.2, 0.4), costs=(8.0, 3.0, 4.5))]
    pruner = ParetoPruner(n_startup_trials=1)
    assert pruner.decide(epoch=2, accuracy=0.3, costs=(9.0, 3.2, 4.0), completed=completed) is None
    assert pruner.decide(epoch=2, accuracy=0.3, costs=(9.0, 3.2, 4.5), completed=completed) is not None


@pytest.mark.parametrize(
    ("setting", "value", "allowed"),
    [
        ("n_startup_trials", -1, "0 or more"),
        ("n_warmup_epochs", -1, "0 or more"),
        ("margin", -0.01, "0 or more"),
        ("margin", float("nan"), "0 or more"),
        ("min_dominating", 0, "1 or more"),
    ],
)
def test_invalid_setting_is_refused_with_what_is_allowed(setting: str, value: float, allowed: str) -> None:
    with pytest.raises(ValueError, match=f"{setting} must be {allowed}"):
        ParetoPruner(**{setting: value})


def test_costs_of_a_different_length_are_refused() -> None:
    with pytest.raises(ValueError, match="trial 1 has 1 costs but the running trial has 2"):
        ParetoPruner().decide(epoch=3, accuracy=0.12, costs=(9.0, 3.0), completed=COMPLETED)


def test_epoch_zero_is_refused_because_epochs_count_from_one() -> None:
    with pytest.raises(ValueError, match="epochs count from 1"):
        ParetoPruner(n_warmup_epochs=0).decide(epoch=0, accuracy=0.12, costs=(9.0,), completed=COMPLETED)


def test_docstring_example_runs() -> None:
    assert doctest.testmod(ge_nas.search.pareto_pruner, raise_on_error=True).attempted > 0


def test_inherited_proxies_may_be_pruned_after_epoch_1_scratch_ones_only_later() -> None:
    objectives = Objectives("map50-95", ("gflops",))
    finished = [TrialHistory(0, (0.62, 0.67, 0.69), (0.354,)), TrialHistory(1, (0.63, 0.66, 0.68), (0.3545,))]
    inherited_pruning = make_pruner("auto", objectives, epochs=3, inherited=True)
    scratch_pruning = make_pruner("auto", objectives, epochs=3, inherited=False)
    assert isinstance(inherited_pruning, ParetoPruning) and isinstance(scratch_pruning, ParetoPruning)
    inherited, scratch = inherited_pruning.pruner, scratch_pruning.pruner
    decision = inherited.decide(epoch=1, accuracy=0.60, costs=(0.355,), completed=finished)
    assert decision is not None and decision.dominated_by == (0, 1)
    assert scratch.decide(epoch=1, accuracy=0.60, costs=(0.355,), completed=finished) is None
    assert inherited.decide(epoch=1, accuracy=0.623, costs=(0.355,), completed=finished) is None  # within the margin
