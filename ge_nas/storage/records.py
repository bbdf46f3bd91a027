"""The trial record: what one trial of a search evaluated, what happened to it, what it scored.

A search writes each trial's record into Optuna's trial user attributes as it goes (a crash
keeps everything up to the last validated epoch) through a :class:`TrialWriter`, and every
reader (the result tables, ``ge-nas show`` and ``export``, the dashboard, the terminal
view, ``retrain``, the pruner) reads it back with :func:`read_record`. So there is one
vocabulary of states (:class:`Status`), one answer to "which trials count", and one map from
a cost's name to where it is stored (:data:`COSTS`). ``optuna-dashboard`` and plain Optuna
read the same attributes.

Trial user attributes (the stored schema; studies of earlier versions use the same names):

==================  ==========================================================
``key``, ``code``   the candidate's canonical key and short code
``units``           number of insertion points with GE
``baseline``        true for the no-GE baseline (always trial 0)
``yaml``            the generated model YAML text
``params``          parameters; ``gflops`` at the proxy image size, every GE operation
                    counted (older studies stored thop's count, in which θ− was free)
``latency_ms``      median batch-1 latency in the study's ``--latency-backend``
``latency_ratio``   median over ABBA rounds of the latency over the baseline's, and
``latency_ratio_low``, ``latency_ratio_high``  its 95 % bootstrap interval (absent in older studies)
``memory_mb``       peak activation memory of one batch-1 forward, MB (absent in older studies)
``constraints``     budget violations, feasible when all <= 0 (Optuna's convention)
``infeasible``      why a candidate was rejected before training (over a budget)
``epochs``          per epoch: ``{"epoch", "map50", "map50-95", "lr"[, "lr_new_units"]}`` (validation
                    metrics, and the learning rates the epoch ended with)
``map50``, ``map50-95``  final proxy accuracy of a trial trained to the end (box mAP; a segmentation
                    search also stores ``mask-map50``, ``mask-map50-95``, here and per epoch)
``train_seconds``   wall time of the proxy training
``reused_from``     trial number whose result was reused (same architecture)
``pruned_epoch``, ``prune_reason``   when and why the proxy was stopped early
``error``           why the trial failed (an exception, Ctrl-C, a killed worker)
``surplus``         started after other workers had filled ``--trials``: not a result
``worker``          the process that ran it (see :mod:`ge_nas.storage.workers`)
``stage``           ``explore`` (sampled, or the first baseline), ``noise`` (another seed of the
                    baseline) or ``confirm`` (another seed of a front candidate); missing: explore
``seed_index``      which seed of its architecture it trained (0, 1, ...; missing: 0): seed ``s``
                    of a candidate is compared with seed ``s`` of the baseline
``strategy``        how it measured accuracy: ``proxy`` (trained a proxy; missing: proxy) or
                    ``supernet`` (scored as a sub-network of the study's supernet)
``supernet_score``  a supernet trial's accuracies, ``{"map50", "map50-95"}``: its path's weights
                    with BatchNorm recalibrated, validated; never a proxy's accuracy
``score_seconds``   wall time of that scoring (cost measurement excluded, as ``train_seconds``)
==================  ==========================================================

An architecture's result is the set of its seeded runs: the exploring trial (seed 0) and,
for the baseline and the candidates the search confirms, further seeds. Only exploring
trials count towards ``--trials``. In a ``--strategy supernet`` search the exploring trials
are supernet scores, and every seeded run (the baseline's noise floor, the confirmation) is a
proxy: gains, intervals and the verdict come from proxies only.

Example:
    >>> from ge_nas.storage.records import read_records, counted  # doctest: +SKIP
    >>> records = read_records(study)  # doctest: +SKIP
    >>> [(r.number, r.status.value, r.accuracy("map50-95")) for r in records]  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ge_nas.space.candidate import BASELINE_KEY

__all__ = [
    "ACCURACY_NAMES",
    "COSTS",
    "COST_NAMES",
    "CostField",
    "Stage",
    "Status",
    "Strategy",
    "TrialRecord",
    "TrialWriter",
    "constraint_violation",
    "cost_value",
    "counted",
    "evaluation_of",
    "evaluations",
    "latency_text",
    "mark_failed",
    "read_record",
    "read_records",
    "seed_run_of",
    "seed_runs",
    "trained_to_the_end",
]

# Box mAP (every task), and mask mAP of a segmentation search.
ACCURACY_NAMES: tuple[str, ...] = ("map50-95", "map50", "mask-map50-95", "mask-map50")
# Longest stored error text: a traceback's last line, not a log.
_ERROR_CHARS = 2000
# Terminal control sequences (colours, cursor moves) that some messages carry.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class CostField:
    """A cost objective: the attribute that stores it (on a trial and on a measured cost) and its label."""

    attribute: str
    label: str


# Cost name (as in --objectives, --max-* and --pick max-*=X) -> where it is stored and how it is labelled.
# "latency-ratio" is the latency over the baseline's timed in the same rounds: unlike milliseconds,
# which drift with the machine's load between trials, it compares trials timed at different moments.
COSTS: dict[str, CostField] = {
    "gflops": CostField("gflops", "GFLOPs"),
    "params": CostField("params", "parameters"),
    "latency": CostField("latency_ms", "latency (ms)"),
    "latency-ratio": CostField("latency_ratio", "latency ratio to the baseline"),
    "memory": CostField("memory_mb", "peak memory (MB)"),
}
COST_NAMES: tuple[str, ...] = tuple(COSTS)


def cost_value(item: Any, name: str) -> float | None:
    """The cost called ``name`` of a record or a measured cost (both name their fields as stored)."""
    value = getattr(item, COSTS[name].attribute)
    return None if value is None else float(value)


class Stage(str, Enum):
    """Why a trial ran: to explore the space, or to add a seed to an architecture already seen."""

    EXPLORE = "explore"  # sampled (or the first baseline): counts towards --trials
    NOISE = "noise"  # another seed of the baseline: the noise floor every gain is measured against
    CONFIRM = "confirm"  # another seed of a front candidate, so its gain gets an interval


class Strategy(str, Enum):
    """How a trial measured its architecture's accuracy."""

    PROXY = "proxy"  # trained a short proxy (every seeded run; every trial of a proxy search)
    SUPERNET = "supernet"  # scored as a sub-network of the study's supernet (exploring trials of a supernet search)


def latency_text(ratio: float | None, low: float | None, high: float | None) -> str:
    """A latency ratio over the baseline's with its interval, for people: ``"1.012x (0.998-1.027)"``.

    Trials of studies made before intervals were measured show the ratio alone; "-" when none.
    """
    if ratio is None:
        return "-"
    interval = f" ({low:.3f}-{high:.3f})" if low is not None and high is not None else ""
    return f"{ratio:.3f}x{interval}"


class Status(str, Enum):
    """What became of a trial, in the words every view uses."""

    COMPLETE = "complete"  # trained to the end
    REUSED = "reused"  # the same architecture as an earlier trial, whose result it copied
    INFEASIBLE = "infeasible"  # over a budget, not trained
    PRUNED = "pruned"  # stopped early
    FAILED = "failed"  # an error, Ctrl-C, or a killed worker
    RUNNING = "running"
    WAITING = "waiting"  # enqueued, not started
    SURPLUS = "surplus"  # started after other workers filled --trials: neither a result nor a failure

    @property
    def evaluated(self) -> bool:
        """Whether the trial holds a result of its own (a reused one points at another's)."""
        return self in (Status.COMPLETE, Status.INFEASIBLE, Status.PRUNED)


@dataclass(frozen=True)
class TrialRecord:
    """One trial as stored: read it with :func:`read_record`, write it with :class:`TrialWriter`."""

    number: int
    status: Status
    key: str | None = None
    code: str | None = None
    units: int = 0
    yaml: str | None = None
    params: int | None = None
    gflops: float | None = None
    latency_ms: float | None = None
    latency_ratio: float | None = None
    latency_ratio_low: float | None = None  # 95 % interval of latency_ratio
    latency_ratio_high: float | None = None
    memory_mb: float | None = None
    constraints: tuple[float, ...] = ()
    infeasible: str | None = None
    epochs: tuple[dict[str, float], ...] = ()
    final_metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float | None = None
    reused_from: int | None = None
    pruned_epoch: int | None = None
    prune_reason: str | None = None
    error: str | None = None
    worker: str | None = None
    values: tuple[float, ...] | None = None  # the study's objective values, once complete
    seconds: float = 0.0  # from start to finish; 0 while running
    stage: Stage = Stage.EXPLORE
    seed_index: int = 0
    strategy: Strategy = Strategy.PROXY
    supernet_score: dict[str, float] = field(default_factory=dict)  # a supernet trial's accuracies
    score_seconds: float | None = None

    @property
    def baseline(self) -> bool:
        return self.key == BASELINE_KEY

    @property
    def has_result(self) -> bool:
        """A result, its own or reused (failed ones are retried)."""
        return self.status.evaluated or self.status == Status.REUSED

    @property
    def explored(self) -> bool:
        """An exploring trial with a result: its own evaluation, or one reused for a re-proposal."""
        return self.has_result and self.stage == Stage.EXPLORE

    @property
    def counts(self) -> bool:
        """Whether it counts towards ``--trials``: an exploring trial with a result.

        A supernet search counts the architectures it scored: an architecture proposed again
        is reused (free, and the sampler still learns its value) without taking a place, so
        ``--trials 200`` scores 200 distinct architectures however often TPE re-proposes.
        """
        return self.explored and not (self.strategy == Strategy.SUPERNET and self.status == Status.REUSED)

    @property
    def note(self) -> str:
        """Why it was infeasible, pruned, failed or reused; empty for a complete trial."""
        if self.status == Status.REUSED:
            return f"same architecture as trial {self.reused_from}"
        return self.infeasible or self.prune_reason or self.error or ""

    def accuracy(self, name: str) -> float | None:
        """The last validated epoch's ``name`` (final for a complete trial); None before any epoch."""
        return float(self.epochs[-1][name]) if self.epochs and name in self.epochs[-1] else None

    def measured(self, name: str) -> float | None:
        """What this trial measured of accuracy ``name``: its supernet score, or its proxy's last epoch."""
        if self.strategy == Strategy.SUPERNET:
            return self.supernet_score.get(name)
        return self.accuracy(name)

    def curve(self, name: str) -> tuple[tuple[int, float], ...]:
        """(epoch, ``name``) for every validated epoch."""
        return tuple(
            (int(epoch.get("epoch", i + 1)), float(epoch[name])) for i, epoch in enumerate(self.epochs) if name in epoch
        )


def read_record(trial: FrozenTrial) -> TrialRecord:
    """The record of a stored trial (any version of ge-nas, or a trial plain Optuna made)."""
    attrs = trial.user_attrs
    finished = trial.datetime_complete is not None and trial.datetime_start is not None
    return TrialRecord(
        number=trial.number,
        status=_status(trial),
        key=attrs.get("key"),
        code=attrs.get("code", attrs.get("key")),
        units=int(attrs.get("units", 0)),
        yaml=attrs.get("yaml"),
        params=attrs.get("params"),
        gflops=attrs.get("gflops"),
        latency_ms=attrs.get("latency_ms"),
        latency_ratio=attrs.get("latency_ratio"),
        latency_ratio_low=attrs.get("latency_ratio_low"),
        latency_ratio_high=attrs.get("latency_ratio_high"),
        memory_mb=attrs.get("memory_mb"),
        constraints=tuple(attrs.get("constraints") or ()),
        infeasible=attrs.get("infeasible"),
        epochs=tuple(attrs.get("epochs") or ()),
        final_metrics={name: attrs[name] for name in ACCURACY_NAMES if name in attrs},
        train_seconds=attrs.get("train_seconds"),
        reused_from=attrs.get("reused_from"),
        pruned_epoch=attrs.get("pruned_epoch"),
        prune_reason=attrs.get("prune_reason"),
        error=attrs.get("error"),
        worker=attrs.get("worker"),
        values=tuple(trial.values) if trial.state == TrialState.COMPLETE and trial.values else None,
        seconds=(trial.datetime_complete - trial.datetime_start).total_seconds() if finished else 0.0,
        stage=Stage(attrs.get("stage", Stage.EXPLORE.value)),
        seed_index=int(attrs.get("seed_index", 0)),
        strategy=Strategy(attrs.get("strategy", Strategy.PROXY.value)),
        supernet_score=dict(attrs.get("supernet_score") or {}),
        score_seconds=attrs.get("score_seconds"),
    )


def read_records(study: optuna.Study) -> list[TrialRecord]:
    """Every trial of ``study`` as a record, by trial number."""
    return [read_record(trial) for trial in study.get_trials(deepcopy=False)]


def _status(trial: FrozenTrial) -> Status:
    attrs = trial.user_attrs
    if trial.state == TrialState.RUNNING:
        return Status.RUNNING
    if trial.state == TrialState.WAITING:
        return Status.WAITING
    if trial.state == TrialState.FAIL:
        return Status.SURPLUS if "surplus" in attrs else Status.FAILED
    if "reused_from" in attrs:
        return Status.REUSED
    if trial.state == TrialState.COMPLETE:
        return Status.INFEASIBLE if "infeasible" in attrs else Status.COMPLETE
    return Status.PRUNED


def counted(records: Iterable[TrialRecord]) -> int:
    """How many trials count towards ``--trials``."""
    return sum(record.counts for record in records)


def evaluations(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Each architecture's own exploring evaluation, by trial number: what the fronts rank.

    Per architecture key, the first exploring trial that completed (trained, or found over
    budget), else the first one pruned; trials that reused a result, failed or still run add
    nothing. Further seeds of an architecture are in :func:`seed_runs`.
    """
    chosen: dict[str, TrialRecord] = {}
    for record in sorted(records, key=lambda r: r.number):
        if not record.status.evaluated or record.key is None or record.stage != Stage.EXPLORE:
            continue
        earlier = chosen.get(record.key)
        if earlier is None or (earlier.status == Status.PRUNED and record.status != Status.PRUNED):
            chosen[record.key] = record
    return sorted(chosen.values(), key=lambda r: r.number)


def seed_runs(records: Sequence[TrialRecord]) -> dict[str, dict[int, TrialRecord]]:
    """Per architecture key, its proxy runs trained to the end, by seed index (the first run of each seed)."""
    runs: dict[str, dict[int, TrialRecord]] = {}
    for record in sorted(records, key=lambda r: r.number):
        proxy = record.strategy == Strategy.PROXY
        if proxy and record.status == Status.COMPLETE and record.key is not None and record.epochs:
            runs.setdefault(record.key, {}).setdefault(record.seed_index, record)
    return runs


def seed_run_of(records: Sequence[TrialRecord], key: str, seed_index: int) -> TrialRecord | None:
    """The proxy run of seed ``seed_index`` of architecture ``key`` to reuse, if one finished (trained or pruned)."""
    for record in sorted(records, key=lambda r: r.number):
        if (
            record.key == key
            and record.seed_index == seed_index
            and record.strategy == Strategy.PROXY
            and record.status in (Status.COMPLETE, Status.PRUNED)
        ):
            return record
    return None


def evaluation_of(records: Sequence[TrialRecord], key: str) -> TrialRecord | None:
    """The evaluation of the architecture ``key`` that a trial sampling it again reuses, if any.

    A pruned evaluation is a result too: training the architecture again under the same
    settings would be pruned again, or win only by luck.
    """
    for record in evaluations(records):
        if record.key == key:
            return record
    return None


def trained_to_the_end(records: Iterable[TrialRecord]) -> list[TrialRecord]:
    """Trials that trained their own proxy to the last epoch: what early stopping compares against."""
    return [record for record in records if record.status == Status.COMPLETE and record.epochs]


def constraint_violation(trial: FrozenTrial) -> list[float]:
    """Optuna's ``constraints_func``: the total budget violation, 0 when feasible or untested.

    One value for every trial, so trials stopped before their costs were known fit too.
    """
    return [sum(max(0.0, v) for v in trial.user_attrs.get("constraints", []))]


def mark_failed(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Fail a trial that no worker will finish (its process died), saying why."""
    study._storage.set_trial_user_attr(trial._trial_id, "error", reason)
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


class TrialWriter:
    """Writes one running trial's record, event by event, each stored at once.

    Example:
        >>> writer = TrialWriter(trial)  # doctest: +SKIP
        >>> writer.sampled(candidate.key, candidate.code, candidate.units, Stage.EXPLORE, 0, Strategy.PROXY)
    """

    def __init__(self, trial: optuna.Trial) -> None:
        self._trial = trial

    def _set(self, **attributes: Any) -> None:
        for name, value in attributes.items():
            self._trial.set_user_attr(name, value)

    def started(self, worker: str) -> None:
        self._set(worker=worker)

    def sampled(self, key: str, code: str, units: int, stage: Stage, seed_index: int, strategy: Strategy) -> None:
        self._set(
            key=key,
            code=code,
            units=units,
            baseline=key == BASELINE_KEY,
            stage=stage.value,
            seed_index=seed_index,
            strategy=strategy.value,
        )

    def generated(self, yaml_text: str) -> None:
        self._set(yaml=yaml_text)

    def costed(self, cost: Any, violations: Sequence[float]) -> None:
        """A measured cost (:class:`ge_nas.yolo.costs.Cost`: its fields are named as stored) and budget violations."""
        self._set(
            params=cost.params,
            gflops=cost.gflops,
            latency_ms=cost.latency_ms,
            latency_ratio=cost.latency_ratio,
            latency_ratio_low=cost.latency_ratio_low,
            latency_ratio_high=cost.latency_ratio_high,
            memory_mb=cost.memory_mb,
            constraints=list(violations),
        )

    def infeasible(self, reason: str) -> None:
        self._set(infeasible=reason)

    def epochs(self, epochs: Sequence[dict[str, float]]) -> None:
        """Every epoch's metrics so far: stored after each epoch, so a crash keeps the curve."""
        self._set(epochs=list(epochs))

    def trained(self, seconds: float, final_metrics: dict[str, float]) -> None:
        self._set(train_seconds=seconds, **final_metrics)

    def scored(self, seconds: float, metrics: dict[str, float]) -> None:
        """A supernet's score of the architecture (never stored where a proxy's accuracy goes)."""
        self._set(score_seconds=seconds, supernet_score=dict(metrics))

    def pruned(self, epoch: int, reason: str) -> None:
        self._set(pruned_epoch=epoch, prune_reason=reason)

    def failed(self, error: str) -> None:
        """Why the trial failed, in plain text: terminal colour codes (Ultralytics' messages carry them) removed."""
        self._set(error=_ANSI_ESCAPE.sub("", error)[:_ERROR_CHARS])

    def surplus(self) -> None:
        self._set(surplus=True)

    def reused(self, previous: TrialRecord) -> None:
        """Copy an earlier evaluation's result (costs, curve, outcome) and say where it came from."""
        copied = {
            "yaml": previous.yaml,
            "params": previous.params,
            "gflops": previous.gflops,
            "latency_ms": previous.latency_ms,
            "latency_ratio": previous.latency_ratio,
            "latency_ratio_low": previous.latency_ratio_low,
            "latency_ratio_high": previous.latency_ratio_high,
            "memory_mb": previous.memory_mb,
            "constraints": list(previous.constraints) if previous.constraints else None,
            "infeasible": previous.infeasible,
            "epochs": list(previous.epochs) if previous.epochs else None,
            "train_seconds": previous.train_seconds,
            "pruned_epoch": previous.pruned_epoch,
            "prune_reason": previous.prune_reason,
            "supernet_score": previous.supernet_score or None,
            "score_seconds": previous.score_seconds,
            **previous.final_metrics,
        }
        self._set(**{name: value for name, value in copied.items() if value is not None}, reused_from=previous.number)
