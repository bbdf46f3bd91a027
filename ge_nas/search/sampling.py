"""A search space as Optuna parameters, and the samplers that draw from it.

Each insertion point is one boolean parameter ("does it get GE?") and, when it does, one
categorical parameter (which variant, extent and mode). Points are offered in layer order
and skipped once ``max_units`` points have GE, so every sampled architecture is valid.
"""

from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import Trial

from ge_nas.search.config import SAMPLERS
from ge_nas.space.candidate import Candidate
from ge_nas.space.search_space import SearchSpace
from ge_nas.storage.records import constraint_violation

__all__ = ["candidate_params", "make_sampler", "run_seed", "suggest_candidate"]


def make_sampler(name: str, seed: int, constrained: bool) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for ``--sampler``; budget constraints steer those that support them."""
    constraints = constraint_violation if constrained else None
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constraints_func=constraints)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, constraints_func=constraints, warn_independent_sampling=False)
    if name == "grid":
        return optuna.samplers.BruteForceSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}")


def run_seed(seed: int, started: int) -> int:
    """The sampler seed of a run that resumes a study holding ``started`` trials.

    Seeding every run with ``--seed`` alone would make a resumed random (or NSGA-II) search
    draw the first run's architectures again, which are then only reused; mixing in the
    number of trials keeps each run reproducible and its draws fresh.
    """
    return int(np.random.SeedSequence([seed, started]).generate_state(1)[0]) if started else seed


def candidate_params(space: SearchSpace, candidate: Candidate) -> dict[str, bool | str]:
    """The parameters that sample ``candidate`` (:func:`suggest_candidate` inverted), for ``enqueue_trial``."""
    placements = dict(candidate.placements)
    budget = space.max_units if space.max_units is not None else len(space.points)
    params: dict[str, bool | str] = {}
    placed = 0
    for point in space.points:
        if placed >= budget:
            break  # later points are not sampled once the budget is used
        name = _use_param(point.index, point.alias)
        params[name] = point.index in placements
        if point.index in placements:
            params[f"{name}:choice"] = placements[point.index].label
            placed += 1
    return params


def suggest_candidate(trial: Trial, space: SearchSpace) -> Candidate:
    """Sample one architecture: per point, whether it gets GE, and if so which choice."""
    budget = space.max_units if space.max_units is not None else len(space.points)
    placements = {}
    for point in space.points:
        name = _use_param(point.index, point.alias)
        if len(placements) < budget and trial.suggest_categorical(name, [False, True]):
            label = trial.suggest_categorical(f"{name}:choice", [c.label for c in point.choices])
            placements[point.index] = next(c for c in point.choices if c.label == label)
    return Candidate.of(placements)


def _use_param(index: int, alias: str) -> str:
    return f"{index}:{alias}"
