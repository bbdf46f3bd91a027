"""Stopping proxies early in a multi-objective search, where Optuna's own pruners do not apply.

Optuna raises ``NotImplementedError`` for ``Trial.report`` and ``Trial.should_prune`` in
multi-objective studies, so ge-nas decides itself: after each proxy epoch a trial's
accuracy so far, together with its costs (known before training), is compared with what
completed trials had reached at the same epoch. The pruner speaks plain data
(:class:`TrialHistory` in, :class:`PruneDecision` out), so it needs neither Optuna nor
torch and the caller decides how to stop the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ParetoPruner", "PruneDecision", "TrialHistory"]


@dataclass(frozen=True)
class TrialHistory:
    """What a finished trial reached: accuracy after each epoch (index 0 = epoch 1) and its costs."""

    number: int
    accuracies: tuple[float, ...]
    costs: tuple[float, ...]


@dataclass(frozen=True)
class PruneDecision:
    """Why a trial stops: the epoch, one human-readable line, and the trials that dominate it."""

    epoch: int
    reason: str
    dominated_by: tuple[int, ...]


class ParetoPruner:
    """Prune a trial that completed trials clearly dominated at the same epoch.

    Accuracy is maximised and every cost minimised. A completed trial *clearly dominates*
    the running one at epoch ``e`` when its epoch-``e`` accuracy is at least the running
    trial's accuracy plus ``margin``, none of its costs is higher, and it is strictly better
    in at least one objective. A trial that is cheaper but less accurate is never pruned:
    it may belong to the final Pareto front, which is the point of a multi-objective search.

    Only completed trials are compared, each at the epoch the running trial has reached, so
    a proxy that learns slowly is measured against how the finished ones stood back then,
    not against their final accuracy.

    Example:
        After each proxy epoch, ask the pruner and stop the run when it returns a decision
        (in an Optuna objective: ``raise optuna.TrialPruned(decision.reason)``).

        >>> pruner = ParetoPruner(n_startup_trials=2)
        >>> completed = [
        ...     TrialHistory(number=0, accuracies=(0.10, 0.30, 0.45), costs=(8.1,)),
        ...     TrialHistory(number=1, accuracies=(0.12, 0.35, 0.50), costs=(8.4,)),
        ... ]
        >>> decision = pruner.decide(epoch=2, accuracy=0.18, costs=(9.0,), completed=completed)
        >>> decision.dominated_by
        (0, 1)
        >>> print(decision.reason)
        dominated at epoch 2 by trials 0, 1: accuracy 0.18 vs >= 0.3 at no more cost
        >>> pruner.decide(epoch=2, accuracy=0.18, costs=(6.5,), completed=completed) is None
        True

    Args:
        n_startup_trials:
            Pruning is disabled until at least this many completed trials reached the
            running trial's epoch: a front made of a couple of trials says little.
        n_warmup_epochs:
            Pruning is disabled while ``epoch <= n_warmup_epochs`` (epochs count from 1):
            the first epochs of a short proxy barely separate good architectures from bad.
        margin:
            How much more accurate a completed trial must be to dominate. Epoch-``e``
            accuracies of short proxies are noisy, so with ``margin > 0`` a near-tie keeps
            training instead of losing to a trial that was only luckier. It also matters when
            accuracy is still near 0 for everyone: with ``margin=0`` an equally inaccurate but
            cheaper trial dominates, which prunes every costlier architecture early.
        min_dominating:
            How many completed trials must clearly dominate the running one before it is
            pruned; more than 1 guards against one lucky outlier.
    """

    def __init__(
        self, n_startup_trials: int = 4, n_warmup_epochs: int = 1, margin: float = 0.0, min_dominating: int = 1
    ) -> None:
        if n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be 0 or more, got {n_startup_trials}")
        if n_warmup_epochs < 0:
            raise ValueError(f"n_warmup_epochs must be 0 or more, got {n_warmup_epochs}")
        if not margin >= 0:  # written this way so NaN is refused too
            raise ValueError(f"margin must be 0 or more, got {margin}")
        if min_dominating < 1:
            raise ValueError(f"min_dominating must be 1 or more, got {min_dominating}")
        self._n_startup_trials = n_startup_trials
        self._n_warmup_epochs = n_warmup_epochs
        self._margin = margin
        self._min_dominating = min_dominating

    @property
    def n_startup_trials(self) -> int:
        return self._n_startup_trials

    @property
    def n_warmup_epochs(self) -> int:
        return self._n_warmup_epochs

    def decide(
        self,
        epoch: int,
        accuracy: float,
        costs: Sequence[float],
        completed: Sequence[TrialHistory],
        margin: float | None = None,
    ) -> PruneDecision | None:
        """Whether the running trial stops after ``epoch``; None = keep training.

        Args:
            epoch: The epoch just finished, counted from 1.
            accuracy: The running trial's validation accuracy after that epoch (higher is better).
            costs: The running trial's costs, in the same order as every history's (lower is better).
            completed: The trials that finished training; those that stopped before ``epoch`` are ignored.
            margin: The lead that counts as clear at this epoch, when it is known better than the
                pruner's own ``margin`` (e.g. measured from seeds); never below it.
        """
        if epoch < 1:
            raise ValueError(f"epoch must be 1 or more (epochs count from 1), got {epoch}")
        for history in completed:
            # Checked on every call, not only when comparing, so a mismatch shows up at the first epoch.
            if len(history.costs) != len(costs):
                raise ValueError(
                    f"trial {history.number} has {len(history.costs)} costs but the running trial has "
                    f"{len(costs)}: every trial must report the same cost objectives in the same order"
                )
        if epoch <= self._n_warmup_epochs:
            return None
        peers = [history for history in completed if len(history.accuracies) >= epoch]
        if len(peers) < self._n_startup_trials:
            return None
        lead = max(self._margin, margin or 0.0)
        dominating = sorted(
            (history for history in peers if self._clearly_dominates(history, epoch, accuracy, costs, lead)),
            key=lambda history: history.number,
        )
        if len(dominating) < self._min_dominating:
            return None
        numbers = tuple(history.number for history in dominating)
        weakest = min(history.accuracies[epoch - 1] for history in dominating)
        trials = f"trial{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
        reason = f"dominated at epoch {epoch} by {trials}: accuracy {accuracy:.4g} vs >= {weakest:.4g} at no more cost"
        return PruneDecision(epoch, reason, numbers)

    def _clearly_dominates(
        self, history: TrialHistory, epoch: int, accuracy: float, costs: Sequence[float], lead: float
    ) -> bool:
        theirs = history.accuracies[epoch - 1]
        no_costlier = all(their <= own for their, own in zip(history.costs, costs, strict=True))
        strictly_better = theirs > accuracy or any(their < own for their, own in zip(history.costs, costs, strict=True))
        return theirs >= accuracy + lead and no_costlier and strictly_better
