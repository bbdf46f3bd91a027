"""Pareto numerics: which evaluated architectures are worth keeping, on several objectives at once.

A search scores every architecture on several objectives (accuracy up, cost down). No
single order ranks such results, so this step answers the questions a user asks of them:

* which architectures no other one beats on every objective (the Pareto front, front 1),
  and how far behind the rest are (fronts 2, 3, ...): :func:`nondominated_fronts`;
* which members of a front sit in sparse regions and keep it diverse: :func:`crowding_distance`;
* which single architecture is the best compromise: :func:`knee_point`;
* how much of the objective space a search has covered, one number to compare searches or
  watch a search improve: :func:`hypervolume`, bounded by :func:`reference_point`.

Everything here is plain numpy in, plain numpy out, in one convention: every objective is
minimised. :func:`to_minimization` turns a study's values and directions into that form.

Example:
    >>> import numpy as np
    >>> values = np.array([[0.75, 3.0], [0.5, 2.0], [0.375, 2.5], [0.25, 1.0]])  # mAP50, GFLOPs
    >>> points = to_minimization(values, ["maximize", "minimize"])
    >>> nondominated_fronts(points).tolist()
    [1, 1, 2, 1]
    >>> float(hypervolume(points, np.array([-0.125, 4.0])))
    1.125
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np

from ge_nas.errors import InputError

__all__ = [
    "crowding_distance",
    "hypervolume",
    "knee_point",
    "nondominated_fronts",
    "reference_point",
    "to_minimization",
]

DIRECTIONS = ("minimize", "maximize")

# Points compared at once with all earlier ones when ranking 4 or more objectives: enough that
# numpy does the work, few enough that one (block, n, m) comparison stays near 10 MB for n = 10,000.
_BLOCK = 256


def to_minimization(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Return a float copy of ``values`` (shape ``(n, m)``) with maximised objectives negated.

    Every other function here assumes minimisation, so a study's values pass through this
    first; one convention keeps the dominance tests and volumes free of direction flags.

    Raises:
        InputError: a direction is neither ``"minimize"`` nor ``"maximize"``.
        ValueError: ``values`` does not have one column per direction.
    """
    unknown = [direction for direction in directions if direction not in DIRECTIONS]
    if unknown:
        raise InputError(f"unknown objective direction(s) {unknown}: use 'minimize' or 'maximize'")
    signs = np.array([-1.0 if direction == "maximize" else 1.0 for direction in directions])
    return _as_points(values, len(directions)) * signs


def nondominated_fronts(points: np.ndarray) -> np.ndarray:
    """Rank points (shape ``(n, m)``, minimisation form) into non-dominated fronts.

    A point dominates another when it is ``<=`` in every objective and ``<`` in at least one.
    Front 1 holds the points nothing dominates (the Pareto front); front ``k + 1`` holds the
    points dominated only by points of fronts ``1..k``. Identical points share a front, since
    neither dominates the other.

    Up to 3 objectives the points are swept in sorted order with bisection (O(n log n) for
    2 objectives); with more, blocks of points are compared with numpy broadcasting.

    Returns:
        An int array of front numbers, 1 for the Pareto front; empty when ``points`` is.

    Raises:
        ValueError: ``points`` is not a 2-D array, or holds NaN.
    """
    table = _as_points(points)
    if len(table) == 0:
        return np.zeros(0, dtype=int)
    # Sorting lexicographically means a point can only be dominated by points before it, and
    # deduplicating first makes "before it and <= everywhere" the same as "dominates it".
    unique, inverse = np.unique(table, axis=0, return_inverse=True)
    ranks = _fronts_by_sweep(unique) if unique.shape[1] <= 3 else _fronts_by_broadcasting(unique)
    return ranks[inverse.reshape(-1)]


def crowding_distance(points: np.ndarray, fronts: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point, measured only against members of its own front.

    Along each objective the members of a front are sorted; the two ends get ``inf`` (keeping
    them keeps the front's extent), every other member gets the gap between its two
    neighbours divided by the front's range in that objective, and the per-objective values
    add up. An objective in which the whole front ties carries no information about spread,
    so it contributes 0 to every member, ends included; a front of one point therefore gets 0.

    Args:
        points: Shape ``(n, m)``, minimisation form.
        fronts: Front number of each point, as from :func:`nondominated_fronts`.

    Returns:
        A float array of shape ``(n,)``; larger means lonelier, which NSGA-II prefers.
    """
    table = _as_points(points)
    fronts = np.asarray(fronts)
    if fronts.shape != (len(table),):
        raise ValueError(f"expected one front number per point ({len(table)}), got shape {fronts.shape}")
    distance = np.zeros(len(table))
    for front in np.unique(fronts):
        members = np.flatnonzero(fronts == front)
        for objective in table[members].T:
            order = np.argsort(objective, kind="stable")
            column = objective[order]
            spread = column[-1] - column[0]
            if spread == 0:
                continue
            gaps = np.full(len(members), np.inf)
            gaps[1:-1] = (column[2:] - column[:-2]) / spread
            distance[members[order]] += gaps
    return distance


def knee_point(points: np.ndarray) -> int:
    """Index (into ``points``, minimisation form) of the knee of the Pareto front.

    The knee is the front member where giving up a little in one objective stops buying much
    in the others: the best compromise when the user has not said how to weigh objectives.
    The rule:

    1. Take front 1 and min-max normalise each objective over it (a tied objective becomes 0),
       so objectives measured in different units weigh the same.
    2. For each objective take the front member that is worst in it (the extreme points) and
       the hyperplane through them: in 2-D the line through the two ends of the front. The
       knee is the member furthest from that hyperplane on the side of the ideal point
       (the origin after normalising), i.e. the one that bulges out most.
    3. When the extreme points do not fix a hyperplane facing the ideal point (they coincide
       or are collinear, as can happen with 3 objectives), the plane through the normalised
       unit points (sum of objectives = 1) stands in; with 2 objectives the two coincide.
    4. When front 1 has only 1 or 2 distinct points there is no bulge to measure; the knee is
       then the member closest (Euclidean) to the ideal point after normalising.

    Ties go to the lowest index.

    Raises:
        ValueError: ``points`` is empty.
    """
    table = _as_points(points)
    if len(table) == 0:
        raise ValueError("a knee needs at least one point")
    members = np.flatnonzero(nondominated_fronts(table) == 1)
    front = table[members]
    low = front.min(axis=0)
    spread = front.max(axis=0) - low
    normalised = np.divide(front - low, spread, out=np.zeros_like(front), where=spread > 0)
    if len(np.unique(normalised, axis=0)) < 3:
        return int(members[np.argmin(np.linalg.norm(normalised, axis=1))])
    normal = _normal_through_extremes(normalised)
    distance = (1.0 - normalised @ normal) / np.linalg.norm(normal)
    return int(members[np.argmax(distance)])


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Volume of the objective space the points dominate, bounded by ``reference``.

    Both are in minimisation form. Points not strictly better than the reference in every
    objective add no volume and are ignored. Exact: two objectives by one sort (the area
    under a staircase), more by slicing along the last objective and summing the volumes of
    the slices, each one objective fewer.

    Raises:
        ValueError: ``reference`` is not finite or does not have one value per objective.
    """
    bound = np.asarray(reference, dtype=float)
    if bound.ndim != 1 or not np.all(np.isfinite(bound)):
        raise ValueError(f"the reference must be one finite value per objective, got {reference!r}")
    table = _as_points(points, bound.size)
    inside = table[np.all(table < bound, axis=1)]
    if len(inside) == 0:
        return 0.0
    # Only the Pareto front adds volume; dropping the rest first keeps the slices few.
    front = np.unique(inside[nondominated_fronts(inside) == 1], axis=0)
    return _volume(front, bound)


def reference_point(baseline: np.ndarray, points: np.ndarray, slack: float = 0.1) -> np.ndarray:
    """The reference point for :func:`hypervolume`, derived from the baseline architecture.

    In minimisation form, for each objective: the worse of the baseline's value and the worst
    value among ``points``, pushed further out by ``slack`` times the objective's range (over
    the points and the baseline together; when that range is 0, by ``slack * max(1, |value|)``).

    Why: the hypervolume should credit every architecture at least as good as the baseline, so
    the reference may be no better than the baseline. Starting from the worst value seen means
    no evaluated point is cut off, and the slack gives the extreme points of the front a
    non-zero share of volume, so a search that extends the front's ends is rewarded too.
    Hypervolumes compare only under one reference point: derive it once (say from the
    finished study) before comparing searches or snapshots of one search.
    """
    anchor = np.asarray(baseline, dtype=float)
    everything = np.vstack([_as_points(points, anchor.size), anchor])
    worst = everything.max(axis=0)
    spread = worst - everything.min(axis=0)
    margin = np.where(spread > 0, spread, np.maximum(1.0, np.abs(worst)))
    return worst + slack * margin


def _as_points(values: np.ndarray, n_objectives: int | None = None) -> np.ndarray:
    """A float ``(n, m)`` copy of ``values``; an empty input becomes ``(0, m)``."""
    table = np.array(values, dtype=float)
    if table.size == 0 and n_objectives is not None:
        return table.reshape(0, n_objectives)
    if table.ndim != 2 or (n_objectives is not None and table.shape[1] != n_objectives):
        expected = "(n, m)" if n_objectives is None else f"(n, {n_objectives})"
        raise ValueError(f"expected values of shape {expected}, got shape {table.shape}")
    if np.isnan(table).any():
        # NaN compares false both ways, so it would silently land on the Pareto front.
        raise ValueError("objective values must not be NaN; leave out trials that have no value")
    return table


def _fronts_by_sweep(unique: np.ndarray) -> np.ndarray:
    """Fronts of unique, lexsorted points with up to 3 objectives.

    O(n log n) for 2 objectives, where every staircase is a single step; about O(n log^2 n)
    for 3.

    Sweeping in sorted order, an earlier point dominates a later one exactly when it is
    ``<=`` in the other objectives (padded to two with zeros). Each front keeps the staircase
    of its members' minimal (second, third) pairs, which answers "does this front dominate
    the new point?" with one bisection. The answer is yes for fronts 1..k-1 and no from k on
    (a dominator in front j has its own dominator in front j - 1), so bisecting over the
    fronts finds the new point's front k.
    """
    others = np.zeros((len(unique), 2))
    others[:, : unique.shape[1] - 1] = unique[:, 1:]
    staircases: list[tuple[list[float], list[float]]] = []
    ranks = np.empty(len(unique), dtype=int)
    for index, (second, third) in enumerate(others.tolist()):
        low, high = 0, len(staircases)
        while low < high:
            middle = (low + high) // 2
            seconds, thirds = staircases[middle]
            step = bisect_right(seconds, second) - 1
            if step >= 0 and thirds[step] <= third:
                low = middle + 1
            else:
                high = middle
        if low == len(staircases):
            staircases.append(([], []))
        seconds, thirds = staircases[low]
        # Seconds rise and thirds fall along a staircase; the new step replaces the run of
        # steps it weakly dominates, which starts where the seconds reach its own.
        start = end = bisect_left(seconds, second)
        while end < len(thirds) and thirds[end] >= third:
            end += 1
        seconds[start:end] = [second]
        thirds[start:end] = [third]
        ranks[index] = low + 1
    return ranks


def _fronts_by_broadcasting(unique: np.ndarray) -> np.ndarray:
    """Fronts of unique, lexsorted points, any number of objectives, in O(n^2 m) vectorised steps.

    A point's front is one more than the highest front among the earlier points that are
    ``<=`` it everywhere (its dominators). Blocks of points are compared with all earlier
    blocks by broadcasting; only the few dominators inside a block are resolved one by one.
    """
    ranks = np.zeros(len(unique), dtype=int)
    for start in range(0, len(unique), _BLOCK):
        block = unique[start : start + _BLOCK]
        earlier = unique[:start]
        dominated_by_earlier = np.all(earlier[np.newaxis] <= block[:, np.newaxis], axis=2)
        behind = np.where(dominated_by_earlier, ranks[:start], 0).max(axis=1, initial=0)
        dominated_within = np.all(block[np.newaxis] <= block[:, np.newaxis], axis=2)
        for row in range(len(block)):
            within = ranks[start : start + row][dominated_within[row, :row]]
            ranks[start + row] = max(behind[row], within.max(initial=0)) + 1
    return ranks


def _normal_through_extremes(normalised: np.ndarray) -> np.ndarray:
    """Normal ``w`` of the hyperplane ``w . x = 1`` through the front's extreme points.

    Falls back to all ones (the plane through the unit points) when the extremes fix no
    plane, or one that does not face the ideal point (some ``w`` not positive), since a
    distance from such a plane does not measure a bulge towards the ideal.
    """
    extremes = normalised[np.argmax(normalised, axis=0)]
    try:
        normal = np.linalg.solve(extremes, np.ones(len(extremes)))
    except np.linalg.LinAlgError:
        return np.ones(len(extremes))
    return normal if np.all(np.isfinite(normal)) and np.all(normal > 0) else np.ones(len(extremes))


def _volume(front: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume of points strictly inside ``reference``, by sorting (2-D) or slicing (more)."""
    n_objectives = front.shape[1]
    if n_objectives == 1:
        return float(reference[0] - front[:, 0].min())
    if n_objectives == 2:
        order = np.lexsort((front[:, 1], front[:, 0]))
        first, second = front[order, 0], front[order, 1]
        # Each point adds the strip between its second objective and the best one before it.
        ceiling = np.minimum.accumulate(np.concatenate(([reference[1]], second)))[:-1]
        return float(np.sum((reference[0] - first) * np.maximum(ceiling - second, 0.0)))
    order = np.argsort(front[:, -1], kind="stable")
    ordered = front[order]
    levels = ordered[:, -1]
    tops = np.append(levels[1:], reference[-1])
    # The slab between consecutive levels of the last objective is dominated by exactly the
    # points at or below its floor: their volume one objective down, times its thickness.
    return float(
        sum(
            (tops[index] - levels[index]) * _volume(ordered[: index + 1, :-1], reference[:-1])
            for index in np.flatnonzero(tops > levels)
        )
    )
