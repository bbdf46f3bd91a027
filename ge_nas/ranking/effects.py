"""What a unit adds: the trained architectures that have it against those that do not, with an interval.

Under a random or TPE search, the architectures with a unit of some kind at some point
(or of some module anywhere) and those without it differ in that unit, with the other
units averaged out. So the difference of their mean accuracies estimates what the unit adds,
and Welch's interval over the two groups says whether that is beyond the noise. The
dashboard's "where attention pays" groups by insertion point and unit; ``ge-nas show``
groups by module. Both read it here.

Example:
    >>> from ge_nas.space.candidate import Placement
    >>> trained = [
    ...     Trained({}, 0.60, 1, 1.0),
    ...     Trained({9: Placement("se", 0)}, 0.63, 1, 1.1),
    ...     Trained({9: Placement("cbam", 0)}, 0.59, 2, 1.2),
    ... ]
    >>> effect = module_effects(trained)["se"]
    >>> effect.n, effect.n_without, round(effect.accuracy, 3), round(effect.cost, 1)
    (1, 2, 0.035, 0.0)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ge_nas.layers.choices import MODULES
from ge_nas.ranking.intervals import Estimate, difference_interval
from ge_nas.space.candidate import Placement

__all__ = ["Trained", "UnitEffect", "module_effects", "unit_effects"]

Group = TypeVar("Group", bound=Hashable)


@dataclass(frozen=True)
class Trained:
    """What an effect needs of one trained architecture: its units, accuracy, front and one cost."""

    placements: Mapping[int, Placement]
    accuracy: float | None
    front: int | None
    cost: float | None


@dataclass(frozen=True)
class UnitEffect:
    """One group's effect, over the trained architectures."""

    n: int  # architectures in the group (with the unit)
    on_front: int  # of which on front 1
    n_without: int  # architectures of the comparison group
    effect: Estimate | None  # mean accuracy with the unit minus mean accuracy without, Welch's interval
    cost: float | None  # the same for the cost, in percent: GFLOPs and parameters differ by orders of magnitude

    @property
    def accuracy(self) -> float | None:
        return None if self.effect is None else self.effect.mean

    @property
    def clear(self) -> bool:
        """The accuracy effect's interval excludes 0."""
        return self.effect is not None and self.effect.excludes_zero


def unit_effects(
    trained: Sequence[Trained],
    groups_of: Callable[[Trained], set[Group]],
    compared_by: Callable[[Group], Hashable],
    lacks: Callable[[Hashable, Trained], bool],
) -> dict[Group, UnitEffect]:
    """Each group's effect: its architectures against the comparison group ``compared_by`` names.

    ``groups_of`` gives the groups an architecture belongs to; ``lacks(k, t)`` says whether
    architecture ``t`` belongs to comparison group ``k`` (found once per ``k``, shared by the
    groups that name it).
    """
    members: dict[Group, list[Trained]] = defaultdict(list)
    for t in trained:
        for group in groups_of(t):
            members[group].append(t)
    without: dict[Hashable, tuple[list[float], float | None]] = {}
    effects = {}
    for group, with_it in members.items():
        key = compared_by(group)
        if key not in without:
            others = [t for t in trained if lacks(key, t)]
            without[key] = ([t.accuracy for t in others if t.accuracy is not None], _mean([t.cost for t in others]))
        accuracies_without, cost_without = without[key]
        unit_cost = _mean([t.cost for t in with_it])
        effects[group] = UnitEffect(
            n=len(with_it),
            on_front=sum(t.front == 1 for t in with_it),
            n_without=len(accuracies_without),
            effect=difference_interval([t.accuracy for t in with_it if t.accuracy is not None], accuracies_without),
            cost=(unit_cost / cost_without - 1) * 100 if unit_cost is not None and cost_without else None,
        )
    return effects


def module_effects(trained: Sequence[Trained]) -> dict[str, UnitEffect]:
    """Per attention module, in :data:`~ge_nas.layers.choices.MODULES` order: the architectures with a unit of it
    anywhere against those with none of it."""
    effects = unit_effects(
        trained,
        groups_of=lambda t: {p.module for p in t.placements.values()},
        compared_by=lambda module: module,
        lacks=lambda module, t: all(p.module != module for p in t.placements.values()),
    )
    return {name: effects[name] for name in MODULES if name in effects}


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None
