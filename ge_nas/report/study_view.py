"""What the dashboard shows of a study, computed once: every evaluation with its seeds, intervals and standing.

A :class:`StudyView` is plain data read from the study's records and its ranking
(:func:`ge_nas.ranking.fronts.rank`), so the figures, the banner, the tables and the
per-trial details all show the same fronts, gains and intervals as ``ge-nas show``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from ge_nas.ranking.fronts import Ranking, rank
from ge_nas.ranking.intervals import Estimate
from ge_nas.ranking.pareto import hypervolume, nondominated_fronts
from ge_nas.space.candidate import Candidate, Placement
from ge_nas.storage.database import default_storage_url, safe_url
from ge_nas.storage.records import COSTS, Status, TrialRecord, cost_value, read_record
from ge_nas.storage.studies import objective_names, proxy_settings

__all__ = ["Evaluation", "Progress", "StudyView", "read_study", "study_version"]

# Trials the page shows, besides the ranked architectures: those still running or failed (their curves).
_UNRANKED_SHOWN = (Status.RUNNING, Status.FAILED)


@dataclass(frozen=True)
class Evaluation:
    """One trial as the dashboard shows it: what it evaluated, how it trained, what it scored."""

    record: TrialRecord
    # What it is ranked on: mean final accuracy over its seeds, or its supernet score; the last epoch's for pruned,
    # running or failed trials.
    accuracy: float | None
    curve: tuple[tuple[int, float], ...]  # (epoch, accuracy) per validated epoch of this trial (seed 0)
    front: int | None  # for a complete trial: its front
    estimate: Estimate | None  # its accuracy over seeds, with the 95 % interval (several seeds)
    gain_estimate: Estimate | None  # its gain over the baseline, paired by seed
    significant: bool  # the gain's interval excludes 0
    seed_curves: dict[int, tuple[tuple[int, float], ...]]  # every seed's curve, by seed index
    reused_by: tuple[int, ...]  # later trials that sampled the same architecture and reused this result
    supernet_score: float | None = None  # a supernet search's score of it (then ``accuracy``); seeds are proxies

    @property
    def number(self) -> int:
        return self.record.number

    @property
    def code(self) -> str:
        return self.record.code or self.record.key or "?"

    @property
    def state(self) -> Status:
        return self.record.status

    @property
    def baseline(self) -> bool:
        return self.record.baseline

    @property
    def note(self) -> str:
        return self.record.note

    @property
    def gain(self) -> float | None:
        return None if self.gain_estimate is None else self.gain_estimate.mean

    @property
    def seeds(self) -> int:
        """Seeds trained to the end (0 for a pruned, infeasible or unfinished trial)."""
        return 0 if self.estimate is None else self.estimate.n

    @cached_property
    def costs(self) -> dict[str, float]:
        """By cost name, as far as measured."""
        return {name: value for name in COSTS if (value := cost_value(self.record, name)) is not None}

    @cached_property
    def placements(self) -> tuple[tuple[int, Placement], ...] | None:
        """Its GE units by layer, or None when the stored key is not one ge-nas wrote."""
        try:
            return Candidate.from_key(self.record.key or "").placements
        except ValueError:
            return None


@dataclass(frozen=True)
class Progress:
    """How the search advanced, trial by trial (every trial number, 0 to the last)."""

    trials: tuple[int, ...]
    volume: tuple[float, ...]  # hypervolume of front 1 so far, as a share of the reference box (0 to 1)
    best_gain: tuple[float | None, ...]  # the best mean gain over the baseline so far
    reference: tuple[float, ...] | None  # the reference point, in the objectives' own units
    ideal: tuple[float, ...] | None  # the box's other corner: the best value of each objective seen


@dataclass(frozen=True)
class StudyView:
    """Everything the page shows, computed once from the study's records and its ranking."""

    name: str
    storage: str | None  # as it may be shown: password hidden; None for the default storage
    ranking: Ranking
    proxy: dict[str, Any]
    evaluations: tuple[Evaluation, ...]  # every evaluated architecture, and trials running or failed, by number
    counts: dict[Status, int]  # trials by status, reused ones included
    costs: tuple[str, ...]  # costs stored on the trials: the study's own first, then the others
    progress: Progress
    version: str  # changes whenever a trial is added, finishes or validates another epoch

    @property
    def objectives(self) -> tuple[str, ...]:
        return self.ranking.objectives

    @property
    def directions(self) -> tuple[str, ...]:
        return self.ranking.directions

    @property
    def accuracy_name(self) -> str:
        return self.ranking.accuracy_name

    @property
    def trained(self) -> list[Evaluation]:
        """The ranked architectures: trained to the end within budget."""
        return [e for e in self.evaluations if e.front is not None]

    @property
    def front(self) -> list[Evaluation]:
        """Front 1 from the cheapest to the costliest in the first cost."""
        members = [e for e in self.trained if e.front == 1]
        return sorted(members, key=lambda e: (e.costs.get(self.costs[0], np.inf), e.number))

    @property
    def knee(self) -> int | None:
        knee = self.ranking.knee
        return None if knee is None else knee.record.number

    @property
    def winner(self) -> int | None:
        """The trial the verdict names: the surest gain beyond the seed noise; None if there is none."""
        winner = self.ranking.winner()
        return None if winner is None else winner.record.number

    @property
    def featured(self) -> int | None:
        """The architecture shown first: the verdict's winner, else the one with GE closest to it, else the knee."""
        featured = self.ranking.winner() or self.ranking.closest() or self.ranking.knee
        return None if featured is None else featured.record.number

    @property
    def baseline(self) -> Evaluation | None:
        """The trained baseline."""
        return next((e for e in self.trained if e.baseline), None)

    @property
    def supernet(self) -> bool:
        """Whether a supernet scored the exploring trials (then the front ranks its scores; seeds are proxies)."""
        return any(e.supernet_score is not None for e in self.trained)


def read_study(study: optuna.Study, storage_url: str | None = None) -> StudyView:
    """Read and rank the study's trials (O(n log n) for up to three objectives).

    Raises:
        InputError: the study's objectives have no names, so it was not made by ge-nas search.
    """
    objectives = objective_names(study)
    trials = study.get_trials(deepcopy=False)
    records = [read_record(trial) for trial in trials]
    ranking = rank(records, objectives, tuple(d.name.lower() for d in study.directions))
    reused_by: dict[int, list[int]] = defaultdict(list)
    counts: dict[Status, int] = defaultdict(int)
    curves: dict[str, dict[int, tuple[tuple[int, float], ...]]] = defaultdict(dict)
    for record in records:
        if record.status not in (Status.WAITING, Status.SURPLUS):
            counts[record.status] += 1
        if record.status == Status.REUSED and record.reused_from is not None:
            reused_by[int(record.reused_from)].append(record.number)
        if record.key is not None and record.epochs and record.status in (Status.COMPLETE, Status.PRUNED):
            curves[record.key].setdefault(record.seed_index, record.curve(ranking.accuracy_name))
    ranked = {a.record.number: a for a in ranking.architectures}
    evaluations = []
    for record in records:
        architecture = ranked.get(record.number)
        if architecture is None and record.status not in _UNRANKED_SHOWN:
            continue
        evaluations.append(
            Evaluation(
                record=record,
                accuracy=architecture.accuracy if architecture else record.measured(ranking.accuracy_name),
                curve=record.curve(ranking.accuracy_name),
                front=architecture.front if architecture else None,
                estimate=architecture.estimate if architecture else None,
                gain_estimate=architecture.gain_estimate if architecture else None,
                significant=architecture.significant if architecture else False,
                seed_curves=dict(curves.get(record.key or "", {})) if architecture else {},
                reused_by=tuple(reused_by[record.number]),
                supernet_score=architecture.supernet_score if architecture else None,
            )
        )
    return StudyView(
        name=study.study_name,
        storage=safe_url(storage_url) if storage_url and storage_url != default_storage_url(study.study_name) else None,
        ranking=ranking,
        proxy=proxy_settings(study),
        evaluations=tuple(evaluations),
        counts=dict(counts),
        costs=_stored_costs(objectives, evaluations),
        progress=_progress(ranking, len(trials)),
        version=_version(trials),
    )


def study_version(study: optuna.Study) -> str:
    """A fingerprint of what the page shows: it changes when a trial is added, finishes or validates an epoch.

    Cheap enough to poll every second or two: Optuna's RDB storage caches finished trials,
    so only the running ones are read again.
    """
    return _version(study.get_trials(deepcopy=False))


def _version(trials: Sequence[FrozenTrial]) -> str:
    marks = [(r.number, r.status.value, len(r.epochs)) for r in map(read_record, trials)]
    return hashlib.sha1(repr(marks).encode()).hexdigest()[:16]


def _stored_costs(objectives: Sequence[str], evaluations: Sequence[Evaluation]) -> tuple[str, ...]:
    """The costs to offer on the x axis: the study's own first; GFLOPs when nothing was measured yet."""
    stored = {name for e in evaluations for name in e.costs}
    ordered = [n for n in objectives[1:] if n in COSTS] + [n for n in COSTS if n not in objectives]
    return tuple(n for n in ordered if n in stored) or ("gflops",)


def _progress(ranking: Ranking, n_trials: int) -> Progress:
    """Hypervolume share and best gain after every trial number, under one reference box for the whole study.

    The box spans the best value of each objective over the ranked architectures (the ideal
    corner) to the hypervolume's reference point (anchored at the baseline, or at the worst
    values before the baseline has trained), so the share reads 0 to 1. Keeping only the
    running front makes each step cost one small ranking, so thousands of trials stay fast.
    """
    reference = ranking.reference(anchor_at_worst=True)
    trials = tuple(range(n_trials))
    if reference is None:
        return Progress(trials, tuple(0.0 for _ in trials), tuple(None for _ in trials), None, None)
    ideal = ranking.points.min(axis=0)
    box = float(np.prod(reference - ideal))
    by_number = dict(zip((a.record.number for a in ranking.ranked), ranking.points, strict=True))
    gains = {a.record.number: a.gain for a in ranking.ranked if not a.record.baseline and a.gain is not None}
    front = np.zeros((0, ranking.points.shape[1]))
    volume, best = 0.0, None
    volumes, bests = [], []
    for number in trials:
        point = by_number.get(number)
        if point is not None and not np.any(np.all(front <= point, axis=1)):  # covered points change nothing
            front = np.vstack([front, point])
            front = front[nondominated_fronts(front) == 1]
            volume = hypervolume(front, reference) / box if box > 0 else 0.0
        if number in gains:
            best = gains[number] if best is None else max(best, gains[number])
        volumes.append(volume)
        bests.append(best)
    return Progress(
        trials,
        tuple(volumes),
        tuple(bests),
        tuple(ranking.in_objective_units(reference)),
        tuple(ranking.in_objective_units(ideal)),
    )
