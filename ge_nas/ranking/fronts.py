"""A study's architectures ranked: the one place where fronts, the knee, gains and hypervolume are computed.

``ge-nas show``, ``export --pick``, the ``ge_nas_*`` tables, the dashboard, the terminal's
front table and ``retrain`` all rank through :func:`rank_study`, so they cannot disagree.

What is ranked: each architecture's own exploring evaluation
(:func:`ge_nas.storage.records.evaluations`), with every seed it was trained with
(:func:`ge_nas.storage.records.seed_runs`). Those that trained to the end within budget are
ranked into fronts on their mean accuracy over seeds and their costs; infeasible and pruned
ones stay unranked (``front`` None). In a ``--strategy supernet`` search the exploring
evaluations are supernet scores, and the fronts rank those (the supernet's front); their
seeds are the proxies that confirmed them. Gains are paired by seed with the baseline (see
:mod:`ge_nas.ranking.intervals`) once the baseline trained within budget, from proxies only,
and the search's answer is :meth:`Ranking.verdict`: never a supernet score's.

Example:
    >>> ranking = rank_study(study)  # doctest: +SKIP
    >>> [(a.record.number, a.record.code) for a in ranking.front()]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna

from ge_nas.ranking.intervals import Estimate, mean_interval, paired_gain
from ge_nas.ranking.pareto import (
    crowding_distance,
    hypervolume,
    knee_point,
    nondominated_fronts,
    reference_point,
    to_minimization,
)
from ge_nas.storage.records import (
    COSTS,
    Status,
    Strategy,
    TrialRecord,
    cost_value,
    counted,
    evaluations,
    read_records,
    seed_runs,
)
from ge_nas.storage.studies import objective_names

__all__ = ["RankedArchitecture", "Ranking", "rank", "rank_study"]


@dataclass(frozen=True)
class RankedArchitecture:
    """One evaluated architecture, its seeds, and where it stands."""

    record: TrialRecord  # its exploring evaluation (seed 0, or its supernet score)
    # What it is ranked on: mean final accuracy over its seeds, or its supernet score; a pruned one's at its last
    # epoch; None if untrained.
    accuracy: float | None
    front: int | None  # 1 = the Pareto front; None = not ranked (infeasible or pruned)
    crowding: float | None
    is_knee: bool
    seeds: dict[int, float]  # final accuracy by seed index, proxy runs trained to the end
    estimate: Estimate | None  # the proxies' mean accuracy and its 95 % interval over seeds
    gain_estimate: Estimate | None  # gain over the baseline, paired by seed (one point for a pruned run)
    supernet_score: float | None = None  # its supernet score, when a supernet evaluated it

    @property
    def gain(self) -> float | None:
        return None if self.gain_estimate is None else self.gain_estimate.mean

    @property
    def significant(self) -> bool:
        """Its gain's interval excludes 0: better (or worse) than the baseline beyond the seed noise."""
        return self.gain_estimate is not None and self.gain_estimate.excludes_zero


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

    @property
    def noise(self) -> Estimate | None:
        """The baseline's accuracy over its seeds: the noise floor every gain is read against."""
        baseline = self.baseline
        return None if baseline is None else baseline.estimate

    def winner(self) -> RankedArchitecture | None:
        """The architecture that beats the baseline beyond the seed noise with the surest gain (highest lower bound)."""
        winners = [a for a in self.ranked if not a.record.baseline and a.significant and a.gain_estimate.mean > 0]
        return max(winners, key=lambda a: (a.gain_estimate.low, -a.record.number), default=None)

    def closest(self) -> RankedArchitecture | None:
        """The architecture with GE whose mean gain over the baseline is largest, beyond the noise or not."""
        candidates = [a for a in self.ranked if not a.record.baseline and a.gain_estimate is not None]
        return max(candidates, key=lambda a: a.gain_estimate.mean, default=None)

    def verdict(self) -> str:
        """The search's answer in one sentence: which architecture beats the baseline, by how much, at what cost.

        It rests on proxies only: in a supernet search, on the proxies that confirmed the supernet's front.
        """
        baseline = self.baseline
        if baseline is None:
            return "no verdict yet: the baseline has not trained within budget"
        confirmed = [a for a in self.ranked if not a.record.baseline and a.seeds]
        if baseline.supernet_score is not None and (not baseline.seeds or not confirmed):
            if baseline.seeds and all(a.record.baseline for a in self.front(1)):
                return (
                    "no architecture with GE is on the supernet's front (none scored above the baseline at no more "
                    "cost), so none was confirmed with proxies: by the supernet's ranking, GE does not pay here"
                )
            return (
                "no verdict: no architecture of the supernet's front has been confirmed with proxies yet, and "
                "supernet scores alone decide nothing (run the search with --confirm 1 or more)"
            )
        best = self.winner()
        if best is not None:
            gain = best.gain_estimate
            return (
                f"trial {best.record.number} ({best.record.code}) beats the baseline by {gain.mean:+.3f} "
                f"{self.accuracy_name} (95 % CI {gain.low:+.3f} to {gain.high:+.3f}, {gain.n} paired seeds)"
                + self._cost_change(best, baseline)
            )
        noise = self.noise
        floor = (
            f" (±{noise.half_width:.3f} over {noise.n} baseline seeds)"
            if noise is not None and noise.half_width is not None
            else " (the baseline has one seed: no noise floor measured)"
        )
        sentence = (
            f"no architecture beats the baseline beyond the seed noise{floor}: on this data and proxy, GE does not pay"
        )
        closest = self.closest()
        if closest is not None and closest.gain_estimate.mean > 0:
            gain = closest.gain_estimate
            interval = (
                f"95 % CI {gain.low:+.3f} to {gain.high:+.3f}, {gain.n} paired seeds"
                if gain.low is not None
                else "one seed"
            )
            named = f"trial {closest.record.number} ({closest.record.code})"
            sentence += f"; the closest, {named}, gains {gain.mean:+.3f} ({interval})"
        return sentence

    def _cost_change(self, candidate: RankedArchitecture, baseline: RankedArchitecture) -> str:
        if len(self.objectives) < 2:
            return ""
        cost = self.objectives[1]
        ours, theirs = cost_value(candidate.record, cost), cost_value(baseline.record, cost)
        if not ours or not theirs:
            return ""
        return f" at {ours / theirs - 1:+.1%} {COSTS[cost].label}"

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
    """Rank the records' architectures into fronts on their mean accuracy (or supernet score); knee and gains."""
    chosen = evaluations(records)
    runs = seed_runs(records)
    accuracy_name = objectives[0]
    seeds = {
        r.key: {index: run.accuracy(accuracy_name) for index, run in runs.get(r.key, {}).items()}
        for r in chosen
        if r.key is not None
    }
    means = {r.number: mean_interval(list(seeds[r.key].values())) for r in chosen if seeds.get(r.key)}
    ranked_on = {r.number: _ranked_on(r, means.get(r.number), accuracy_name) for r in chosen}
    complete = [r for r in chosen if ranked_on[r.number] is not None]
    values = [[ranked_on[r.number], *r.values[1:]] for r in complete]
    points = to_minimization(np.array(values).reshape(-1, len(directions)), directions)
    fronts = nondominated_fronts(points)
    crowding = crowding_distance(points, fronts)
    knee = complete[knee_point(points)].number if complete else None
    placed = {
        record.number: (int(front), float(distance))
        for record, front, distance in zip(complete, fronts.tolist(), crowding.tolist(), strict=True)
    }
    baseline = next((r for r in complete if r.baseline), None)
    base_seeds = seeds[baseline.key] if baseline is not None else {}
    architectures = []
    for record in chosen:
        front, distance = placed.get(record.number, (None, None))
        estimate = means.get(record.number)
        own = seeds.get(record.key or "", {}) if estimate is not None else {}
        if record.number in placed:
            gain = paired_gain(own, base_seeds)
            accuracy = ranked_on[record.number]
        else:  # pruned (its last epoch against the baseline's seed 0) or infeasible (no accuracy)
            accuracy = record.accuracy(accuracy_name)
            gain = mean_interval([accuracy - base_seeds[0]]) if accuracy is not None and 0 in base_seeds else None
        architectures.append(
            RankedArchitecture(
                record=record,
                accuracy=accuracy,
                front=front,
                crowding=distance,
                is_knee=record.number == knee,
                seeds=own,
                estimate=estimate,
                gain_estimate=gain,
                supernet_score=record.supernet_score.get(accuracy_name),
            )
        )
    return Ranking(tuple(objectives), tuple(directions), tuple(architectures), points, counted(records))


def _ranked_on(record: TrialRecord, mean: Estimate | None, accuracy_name: str) -> float | None:
    """The accuracy an evaluation is ranked on: its supernet score, or its proxies' mean; None if not ranked."""
    if record.status != Status.COMPLETE or record.values is None:
        return None
    if record.strategy == Strategy.SUPERNET:
        return record.supernet_score.get(accuracy_name)
    return None if mean is None else mean.mean
