"""Ranking: fronts, crowding, knee, hypervolume and its reference point, checked by hand and against Optuna."""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna._hypervolume import compute_hypervolume  # private, but the hypervolume Optuna itself uses
from scipy import stats

from ge_nas.errors import InputError
from ge_nas.ranking.correlation import kendall, spearman
from ge_nas.ranking.pareto import (
    crowding_distance,
    hypervolume,
    knee_point,
    nondominated_fronts,
    reference_point,
    to_minimization,
)

SEEDS = range(8)


@st.composite
def small_grids(draw: st.DrawFn, objectives: st.SearchStrategy[int]) -> np.ndarray:
    """Points on a small integer grid, so ties and duplicates are common."""
    m = draw(objectives)
    rows = draw(st.lists(st.lists(st.integers(0, 4), min_size=m, max_size=m), max_size=40))
    return np.array(rows, dtype=float).reshape(-1, m)


def assert_fronts_follow_the_definition(points: np.ndarray, fronts: np.ndarray) -> None:
    """Each point's front is one more than the highest front among the points that dominate it.

    This pins down the whole ranking (by induction from the undominated points), so it checks
    every front, not just the first. The dominance test is brute force, in chunks of rows,
    one objective at a time to keep the temporary arrays two-dimensional.
    """
    for start in range(0, len(points), 500):
        rows = points[start : start + 500]
        no_worse = np.ones((len(rows), len(points)), dtype=bool)
        better_somewhere = np.zeros((len(rows), len(points)), dtype=bool)
        for objective in range(points.shape[1]):
            no_worse &= points[:, objective] <= rows[:, objective, np.newaxis]
            better_somewhere |= points[:, objective] < rows[:, objective, np.newaxis]
        expected = np.where(no_worse & better_somewhere, fronts, 0).max(axis=1, initial=0) + 1
        np.testing.assert_array_equal(fronts[start : start + 500], expected)


def study_of(values: np.ndarray, directions: list[str]) -> optuna.Study:
    study = optuna.create_study(directions=directions)
    study.add_trials([optuna.trial.create_trial(values=row, params={}, distributions={}) for row in values.tolist()])
    return study


def test_to_minimization_negates_maximised_objectives_in_a_copy() -> None:
    values = np.array([[0.5, 3.0], [0.25, 1.0]])  # mAP50, GFLOPs
    points = to_minimization(values, ["maximize", "minimize"])
    np.testing.assert_array_equal(points, [[-0.5, 3.0], [-0.25, 1.0]])
    assert values[0, 0] == 0.5


def test_to_minimization_rejects_an_unknown_direction() -> None:
    with pytest.raises(InputError, match="maximise"):
        to_minimization(np.array([[1.0, 2.0]]), ["maximise", "minimize"])


def test_fronts_of_a_hand_made_2d_set() -> None:
    points = np.array([[1.0, 5.0], [2.0, 3.0], [4.0, 1.0], [3.0, 4.0], [5.0, 2.0], [6.0, 6.0]])
    np.testing.assert_array_equal(nondominated_fronts(points), [1, 1, 1, 2, 2, 3])


def test_fronts_of_a_hand_made_3d_set() -> None:
    points = np.array([[0.0, 0.0, 2.0], [0.0, 2.0, 0.0], [2.0, 0.0, 0.0], [1.0, 1.0, 3.0], [3.0, 3.0, 3.0]])
    np.testing.assert_array_equal(nondominated_fronts(points), [1, 1, 1, 2, 3])


def test_identical_points_share_a_front() -> None:
    points = np.array([[1.0, 2.0], [2.0, 1.0], [1.0, 2.0], [2.0, 2.0], [2.0, 2.0]])
    np.testing.assert_array_equal(nondominated_fronts(points), [1, 1, 1, 2, 2])


def test_a_point_equal_but_for_one_worse_objective_is_dominated() -> None:
    points = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 4.0]])
    np.testing.assert_array_equal(nondominated_fronts(points), [1, 2])


def test_no_points_have_no_fronts() -> None:
    fronts = nondominated_fronts(np.zeros((0, 3)))
    assert fronts.shape == (0,)
    assert fronts.dtype.kind == "i"


def test_nan_values_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        nondominated_fronts(np.array([[1.0, np.nan], [0.0, 1.0]]))


@settings(max_examples=150, deadline=None)
@given(small_grids(st.integers(1, 4)))
def test_fronts_follow_the_definition(points: np.ndarray) -> None:
    assert_fronts_follow_the_definition(points, nondominated_fronts(points))


def test_fronts_of_many_4d_points_follow_the_definition() -> None:
    points = np.random.default_rng(0).integers(0, 6, size=(700, 4)).astype(float)
    assert_fronts_follow_the_definition(points, nondominated_fronts(points))


def test_fronts_of_ten_thousand_3d_points_follow_the_definition() -> None:
    points = np.random.default_rng(0).random((10_000, 3)).round(2)
    assert_fronts_follow_the_definition(points, nondominated_fronts(points))


@settings(max_examples=100, deadline=None)
@given(
    small_grids(st.sampled_from([2, 3])),
    st.lists(st.sampled_from(["minimize", "maximize"]), min_size=3, max_size=3),
)
def test_front_1_is_optunas_best_trials(values: np.ndarray, directions: list[str]) -> None:
    directions = directions[: values.shape[1]]
    fronts = nondominated_fronts(to_minimization(values, directions))
    best = {trial.number for trial in study_of(values, directions).best_trials}
    assert set(np.flatnonzero(fronts == 1).tolist()) == best


def test_crowding_distance_of_a_2d_front_by_hand() -> None:
    points = np.array([[0.0, 6.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    distance = crowding_distance(points, np.ones(4, dtype=int))
    # (1, 2): neighbours 0 and 3 on a range of 4, then 1 and 6 on a range of 6.
    np.testing.assert_allclose(distance, [np.inf, 3 / 4 + 5 / 6, 3 / 4 + 2 / 6, np.inf])


def test_crowding_is_measured_within_each_front() -> None:
    first = [[0.0, 2.0], [1.0, 1.0], [2.0, 0.0]]
    second = [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]
    points = np.array(first + second)
    distance = crowding_distance(points, nondominated_fronts(points))
    np.testing.assert_allclose(distance, [np.inf, 2.0, np.inf, np.inf, 2.0, np.inf])


def test_an_objective_the_whole_front_ties_on_adds_no_crowding() -> None:
    points = np.array([[0.0, 2.0, 5.0], [1.0, 1.0, 5.0], [2.0, 0.0, 5.0]])
    np.testing.assert_allclose(crowding_distance(points, np.ones(3, dtype=int)), [np.inf, 2.0, np.inf])


def test_a_front_of_one_point_has_no_crowding() -> None:
    points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])  # three fronts of one point each
    np.testing.assert_array_equal(crowding_distance(points, nondominated_fronts(points)), [0.0, 0.0, 0.0])


def test_knee_of_a_2d_front_is_the_point_furthest_below_the_line_through_its_ends() -> None:
    # Normalised, front 1 is (1, 0), (0.4, 0.1), (0, 1), (0.1, 0.3); (5, 5) is dominated.
    points = np.array([[10.0, 0.0], [4.0, 1.0], [5.0, 5.0], [0.0, 10.0], [1.0, 3.0]])
    assert knee_point(points) == 4


def test_knee_is_found_after_normalising_objectives_in_different_units() -> None:
    unit_simplex = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.4, 0.4, 0.1], [0.2, 0.2, 0.2]])
    assert knee_point(unit_simplex * [1.0, 1.0, 100.0]) == 4


def test_knee_falls_back_to_the_unit_plane_when_the_extremes_coincide() -> None:
    # (1, 1, 0) is worst in two objectives, so the extremes fix no plane; against
    # x + y + z = 1, (0, 0, 1) lies on it and the others beyond it.
    points = np.array([[1.0, 1.0, 0.0], [0.5, 0.2, 0.5], [0.0, 0.0, 1.0]])
    assert knee_point(points) == 2


def test_knee_of_a_two_point_front_is_the_point_closest_to_the_ideal() -> None:
    points = np.array([[5.0, 5.0, 5.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert knee_point(points) == 2


def test_knee_of_no_points_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one point"):
        knee_point(np.zeros((0, 2)))


def test_hypervolume_of_a_2d_staircase_by_hand() -> None:
    # Strips of height 1 under (1, 3), (2, 2), (3, 1), reaching x = 4: 3 + 2 + 1.
    # A dominated point and a duplicate add nothing.
    points = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0], [2.0, 2.0]])
    assert hypervolume(points, np.array([4.0, 4.0])) == pytest.approx(6.0)


def test_hypervolume_of_a_3d_set_by_hand() -> None:
    # Three slabs of volume 9 inside the cube to (3, 3, 3); each pair overlaps in 3, all
    # three in 1: 27 - 9 + 1.
    points = np.array([[0.0, 0.0, 2.0], [0.0, 2.0, 0.0], [2.0, 0.0, 0.0]])
    assert hypervolume(points, np.array([3.0, 3.0, 3.0])) == pytest.approx(19.0)


def test_points_not_strictly_inside_the_reference_add_no_volume() -> None:
    reference = np.array([4.0, 4.0])
    inside = np.array([[2.0, 2.0]])
    outside = np.array([[1.0, 5.0], [0.0, 4.0]])
    assert hypervolume(np.vstack([inside, outside]), reference) == pytest.approx(4.0)
    assert hypervolume(outside, reference) == 0.0


def test_hypervolume_of_one_objective_is_the_length_to_the_reference() -> None:
    assert hypervolume(np.array([[3.0], [1.0], [2.0]]), np.array([4.0])) == pytest.approx(3.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_matches_optunas_compute_hypervolume(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.random((60, m)).round(1)  # rounding makes ties and duplicates
    reference = np.full(m, 0.9)
    inside = points[np.all(points < reference, axis=1)]
    assert hypervolume(points, reference) == pytest.approx(compute_hypervolume(inside, reference))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("directions", [["maximize", "minimize"], ["maximize", "minimize", "minimize"]])
def test_hypervolume_of_a_mixed_direction_study_matches_optunas_history_plot(seed: int, directions: list[str]) -> None:
    rng = np.random.default_rng(seed)
    values = rng.random((40, len(directions))).round(2)
    baseline = np.full(len(directions), 0.5)
    points = to_minimization(values, directions)
    reference = reference_point(to_minimization(baseline[np.newaxis], directions)[0], points)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        figure = optuna.visualization.plot_hypervolume_history(
            study_of(values, directions), to_minimization(reference[np.newaxis], directions)[0]
        )
    assert hypervolume(points, reference) == pytest.approx(figure.data[0].y[-1])


def test_reference_point_takes_the_worse_of_baseline_and_points_plus_slack() -> None:
    baseline = np.array([-0.3, 3.0])  # worse than every point in the first objective only
    points = np.array([[-0.7, 4.0], [-0.4, 2.0]])
    # Ranges over points and baseline: 0.4 and 2.
    np.testing.assert_allclose(reference_point(baseline, points), [-0.3 + 0.04, 4.0 + 0.2])


def test_reference_point_with_no_range_moves_by_the_value_or_at_least_one() -> None:
    baseline = np.array([0.5, -3.0])
    np.testing.assert_allclose(reference_point(baseline, baseline[np.newaxis], slack=0.1), [0.6, -2.7])


def test_the_baseline_adds_volume_under_its_own_reference_point() -> None:
    baseline = np.array([5.0, 5.0])  # worse than every architecture found
    points = np.array([[1.0, 4.0], [4.0, 1.0]])
    assert hypervolume(baseline[np.newaxis], reference_point(baseline, points)) > 0.0


def test_rank_correlation_agrees_with_scipy_and_is_nan_without_a_ranking() -> None:
    proxy, reference = [0.1, 0.3, 0.2, 0.5], [0.2, 0.5, 0.1, 0.6]
    assert kendall(proxy, reference) == pytest.approx(stats.kendalltau(proxy, reference).statistic)
    assert spearman(proxy, reference) == pytest.approx(0.8)
    assert (kendall([1.0, 2.0], [2.0, 1.0]), spearman([1.0, 2.0], [2.0, 1.0])) == pytest.approx((-1.0, -1.0))
    # A scoring that gives every architecture the same value ranks nothing: NaN, never a tau of 0.
    assert math.isnan(kendall([0.7, 0.7, 0.7], [0.1, 0.2, 0.3]))
    assert math.isnan(spearman([0.1, 0.2, 0.3], [0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="3 scores against 2"):
        kendall([0.1, 0.2, 0.3], [0.1, 0.2])
