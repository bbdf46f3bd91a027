"""A study's architectures ranked: the one place where fronts, the knee, gains and hypervolume are computed.

``ge-nas show``, ``export --pick``, the ``ge_nas_*`` tables, the dashboard, the terminal's
front table and ``retrain`` all rank through :func:`rank_study`, so they cannot disagree.

What is ranked: each architecture's own evaluation (:func:`ge_nas.storage.records.evaluations`).
Those that trained to the end within budget are ranked into fronts on the study's objective
values; infeasible and pruned ones stay unranked (``front`` None). Gains are over the
baseline's accuracy once the baseline trained within budget.

Example:
    >>> ranking = rank_study(study)  # doctest: +SKIP
    >>> [(a.record.number, a.record.code) for a in ranking.front()]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna

from ge_nas.ranking.pareto import (
    crowding_distance,
    hypervolume,
    knee_point,
    nondominated_fronts,
    reference_point,
    to_minimization,
)
from ge_nas.storage.records import Status, TrialRecord, counted, evaluations, read_records
from ge_nas.storage.studies import objective_names

__all__ = ["RankedArchitecture", "Ranking", "rank", "rank_study"]


@dataclass(frozen=True)
class RankedArchitecture:
    """One evaluated architecture and where it stands."""

    record: TrialRecord
    accuracy: float | None  # final proxy accuracy; a pruned one's at its last epoch; None if untrained
    front: int | None  # 1 = the Pareto front; None = not ranked (infeasible or pruned)
    crowding: float | None
    is_knee: bool
    gain: float | None  # accuracy over the trained baseline's


@dataclass(frozen=True)
class Ranking:
    """A study's evaluated architectures, ranked on its objectives."""

    objectives: tuple[str, ...]  # accuracy first, then the costs
    directions: tuple[str, ...]
    architectures: tuple[RankedArchitecture, ...]  # one per evaluated architecture, by trial number
    points: np.ndarray  # the ranked architectures' objective values, minimisation form, in their order
    trials_counted: int  # trials that count towards --trials, reused ones included

    @property
    def accuracy_name(self) -> str:
        return self.objectives[0]

    @property
    def ranked(self) -> list[RankedArchitecture]:
        """Those trained to the end within budget, by trial number."""
        return [a for a in self.architectures if a.front is not None]

    def front(self, number: int = 1) -> list[RankedArchitecture]:
        """The members of one front, by trial number."""
        return [a for a in self.architectures if a.front == number]

    @property
    def knee(self) -> RankedArchitecture | None:
        return next((a for a in self.architectures if a.is_knee), None)

    @property
    def baseline(self) -> RankedArchitecture | None:
        """The baseline, once trained within budget: gains and the hypervolume's reference need it."""
        return next((a for a in self.ranked if a.record.baseline), None)

    def most_accurate(self) -> RankedArchitecture | None:
        """The most accurate ranked architecture (ties: lower front, then earlier trial)."""
        return min(self.ranked, key=lambda a: (-(a.accuracy or 0.0), a.front or 0, a.record.number), default=None)

    def reference(self, anchor_at_worst: bool = False) -> np.ndarray | None:
        """The hypervolume's reference point, minimisation form, anchored at the baseline.

        Without a trained baseline: None, or with ``anchor_at_worst`` the worst ranked values
        (a provisional reference that a live view can show before the baseline lands).
        """
        baseline = self.baseline
        if baseline is None and not (anchor_at_worst and len(self.points)):
            return None
        ranked = self.ranked
        anchor = self.points[ranked.index(baseline)] if baseline is not None else self.points.max(axis=0)
        return reference_point(anchor, self.points)

    @property
    def hypervolume(self) -> float | None:
        """Hypervolume of front 1 under :meth:`reference`; None until the baseline trained within budget."""
        bound = self.reference()
        return None if bound is None else hypervolume(self.points, bound)

    def in_objective_units(self, point: np.ndarray) -> list[float]:
        """A point in minimisation form back in the objectives' own units and directions."""
        signs = np.array([-1.0 if d == "maximize" else 1.0 for d in self.directions])
        return (point * signs).tolist()


def rank_study(study: optuna.Study) -> Ranking:
    """Rank a stored study on its own objectives.

    Raises:
        InputError: the study's objectives have no names, so ge-nas did not make it.
    """
    directions = tuple(d.name.lower() for d in study.directions)
    return rank(read_records(study), objective_names(study), directions)


def rank(records: Sequence[TrialRecord], objectives: Sequence[str], directions: Sequence[str]) -> Ranking:
    """Rank the records' architectures into fronts; find the knee, and the gains over the baseline."""
    chosen = evaluations(records)
    accuracy_name = objectives[0]
    complete = [r for r in chosen if r.status == Status.COMPLETE and r.values is not None]
    points = to_minimization(np.array([r.values for r in complete]).reshape(-1, len(directions)), directions)
    fronts = nondominated_fronts(points)
    crowding = crowding_distance(points, fronts)
    knee = complete[knee_point(points)].number if complete else None
    placed = {
        r.number: (int(f), float(c)) for r, f, c in zip(complete, fronts.tolist(), crowding.tolist(), strict=True)
    }
    baseline = next((r for r in complete if r.baseline), None)
    base_accuracy = baseline.accuracy(accuracy_name) if baseline is not None else None
    architectures = []
    for record in chosen:
        accuracy = record.accuracy(accuracy_name)
        front, distance = placed.get(record.number, (None, None))
        architectures.append(
            RankedArchitecture(
                record=record,
                accuracy=accuracy,
                front=front,
                crowding=distance,
                is_knee=record.number == knee,
                gain=accuracy - base_accuracy if accuracy is not None and base_accuracy is not None else None,
            )
        )
    return Ranking(tuple(objectives), tuple(directions), tuple(architectures), points, counted(records))
