"""Stopping a proxy early: one question, "stop after this epoch?", whoever answers it.

In a single-objective study Optuna's own pruners answer (median, hyperband, or any
configured one), through ``Trial.report`` and ``Trial.should_prune``. Optuna raises
``NotImplementedError`` for those in multi-objective studies, so there the
:class:`~ge_nas.search.pareto_pruner.ParetoPruner` answers, comparing the trial with the
trials that trained to the end. The objective asks a :class:`ProxyPruner` and never needs
to know which.
"""

from __future__ import annotations

import statistics
from abc import ABC, abstractmethod
from collections.abc import Sequence

import optuna

from ge_nas.search.config import PRUNERS, Objectives
from ge_nas.search.pareto_pruner import ParetoPruner, TrialHistory
from ge_nas.storage.records import TrialRecord, read_records, trained_to_the_end

__all__ = ["NOISE_MARGIN_FACTOR", "NoPruning", "OptunaPruning", "ParetoPruning", "ProxyPruner", "make_pruner"]

# A candidate is clearly behind when it trails by this many standard deviations of the baseline's seeds.
NOISE_MARGIN_FACTOR = 2.0


class ProxyPruner(ABC):
    """Decides after each proxy epoch whether the trial stops."""

    @property
    def optuna_pruner(self) -> optuna.pruners.BasePruner:
        """The pruner the study must carry for this decision (Optuna's own pruners read it from there)."""
        return optuna.pruners.NopPruner()

    @abstractmethod
    def reason_to_stop(self, trial: optuna.Trial, epoch: int, accuracy: float, costs: Sequence[float]) -> str | None:
        """Why the trial stops after ``epoch`` (counted from 1), or None to train on."""


class NoPruning(ProxyPruner):
    """Every proxy trains to the end."""

    def reason_to_stop(self, trial: optuna.Trial, epoch: int, accuracy: float, costs: Sequence[float]) -> str | None:
        return None


class OptunaPruning(ProxyPruner):
    """One of Optuna's pruners, for a single-objective study: the accuracy is reported each epoch."""

    def __init__(self, pruner: optuna.pruners.BasePruner, accuracy_name: str) -> None:
        self._pruner = pruner
        self._accuracy_name = accuracy_name

    @property
    def optuna_pruner(self) -> optuna.pruners.BasePruner:
        return self._pruner

    def reason_to_stop(self, trial: optuna.Trial, epoch: int, accuracy: float, costs: Sequence[float]) -> str | None:
        trial.report(accuracy, epoch)
        if trial.should_prune():
            return f"{type(self._pruner).__name__} at epoch {epoch}: {self._accuracy_name} {accuracy:.4f}"
        return None


class ParetoPruning(ProxyPruner):
    """The Pareto pruner, against every trial of the study that trained its own proxy to the end.

    A lead counts as clear only beyond the seed noise: :data:`NOISE_MARGIN_FACTOR` standard
    deviations of the baseline's seeds at the same epoch, once two baseline seeds finished
    (never below the pruner's own margin).
    """

    def __init__(self, pruner: ParetoPruner, accuracy_name: str) -> None:
        self.pruner = pruner
        self._accuracy_name = accuracy_name

    def reason_to_stop(self, trial: optuna.Trial, epoch: int, accuracy: float, costs: Sequence[float]) -> str | None:
        finished = trained_to_the_end(read_records(trial.study))
        histories = [
            TrialHistory(record.number, tuple(e[self._accuracy_name] for e in record.epochs), record.values[1:])
            for record in finished
        ]
        decision = self.pruner.decide(epoch, accuracy, costs, histories, margin=self.noise_margin(finished, epoch))
        return decision.reason if decision else None

    def noise_margin(self, finished: Sequence[TrialRecord], epoch: int) -> float | None:
        """:data:`NOISE_MARGIN_FACTOR` times the spread of the baseline's seeds at ``epoch``; None below two seeds."""
        at_epoch = [
            record.epochs[epoch - 1][self._accuracy_name]
            for record in finished
            if record.baseline and len(record.epochs) >= epoch
        ]
        return NOISE_MARGIN_FACTOR * statistics.stdev(at_epoch) if len(at_epoch) >= 2 else None


def make_pruner(
    name: str | optuna.pruners.BasePruner | ParetoPruner, objectives: Objectives, epochs: int, inherited: bool = False
) -> ProxyPruner:
    """The pruner for ``--pruner`` (``auto``: median for one objective, pareto for several).

    ``inherited``: candidates start from a trained parent's weights. Then every proxy starts
    near where the baseline's does and its first epoch is already informative, so pruning
    may start after epoch 1, against the baseline and one more completed trial. New GE units
    cost a candidate up to about 0.007 mAP at epoch 1 that it can more than win back (see
    benchmarks/RESULTS.md, pruning), so a 0.01 lead is still required. From scratch, early
    accuracies are noisy and often all 0: pruning waits an epoch and for 4 completed trials.
    The Python API may pass a configured pruner.
    """
    accuracy = objectives.accuracy
    if isinstance(name, ParetoPruner):
        return ParetoPruning(name, accuracy)
    if isinstance(name, optuna.pruners.BasePruner):
        if objectives.multi:
            raise ValueError("Optuna's pruners work in single-objective studies only; use a ParetoPruner")
        return OptunaPruning(name, accuracy)
    if name == "auto":
        name = "pareto" if objectives.multi else "median"
    if name in ("median", "hyperband") and objectives.multi:
        raise ValueError(
            f"--pruner {name} prunes single-objective studies only; with costs among the objectives use pareto or none"
        )
    if name == "median":
        median = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0 if inherited else 1)
        return OptunaPruning(median, accuracy)
    if name == "hyperband":
        return OptunaPruning(optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1)), accuracy)
    if name == "pareto":
        if inherited:
            return ParetoPruning(ParetoPruner(n_startup_trials=2, n_warmup_epochs=0, margin=0.01), accuracy)
        return ParetoPruning(ParetoPruner(n_startup_trials=4, n_warmup_epochs=1, margin=0.01), accuracy)
    if name == "none":
        return NoPruning()
    raise ValueError(f"unknown pruner {name!r}: use one of {', '.join(PRUNERS)}")
