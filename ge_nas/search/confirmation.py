"""Seeds beyond the first: the baseline's noise floor, and the confirmation of the front's candidates.

One proxy run per architecture ranks inside the seed noise. So the search trains the
baseline with several seeds first (``--baseline-seeds``): their spread is the noise floor.
After the exploring trials, the front's most promising candidates (at most ``--confirm``)
get further seeds, one round at a time, racing: a candidate whose paired gain interval
still straddles 0 gets another seed, up to ``--max-seeds``; one that is clearly better or
clearly worse stops. Every extra seed of a candidate is matched by the same seed of the
baseline, so gains stay paired.

Each extra seed is an ordinary trial of the study, enqueued with the architecture's
parameters and its stage and seed in its user attributes, so any worker runs it, and a
stopped search resumes its confirmation like everything else.

In a ``--strategy supernet`` search the exploring trials are supernet scores, so every
seeded run here is a proxy: the baseline's from seed 0 on, and the confirmation of the
supernet's front (most promising by supernet score first) from seed 0 on. The verdict rests
on those proxies alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from ge_nas.ranking.fronts import RankedArchitecture, Ranking
from ge_nas.search.config import SearchConfig
from ge_nas.search.sampling import candidate_params
from ge_nas.space.candidate import BASELINE_KEY, Candidate
from ge_nas.storage.records import Stage, Status, Strategy, TrialRecord

__all__ = ["SeedRun", "confirmation_runs", "done_or_coming", "enqueue", "noise_runs"]


@dataclass(frozen=True)
class SeedRun:
    """One seeded run a search still wants: which architecture, which seed, why, and how it measures accuracy."""

    key: str
    seed_index: int
    stage: Stage
    strategy: Strategy = Strategy.PROXY


def noise_runs(config: SearchConfig) -> list[SeedRun]:
    """The baseline's exploring run (seed 0) and its proxy seeds up to ``--baseline-seeds``.

    In a proxy search the exploring run is the baseline's seed 0; in a supernet search it is
    the baseline's supernet score, and its proxies start at seed 0.
    """
    explore = SeedRun(BASELINE_KEY, 0, Stage.EXPLORE, Strategy(config.strategy))
    first = 0 if config.uses_supernet else 1
    return [explore] + [SeedRun(BASELINE_KEY, s, Stage.NOISE) for s in range(first, config.baseline_seeds)]


def confirmation_runs(ranking: Ranking, config: SearchConfig) -> list[SeedRun]:
    """The next round: one more seed for each undecided front candidate, and the baseline's seed to pair it with.

    Candidates are front-1 members other than the baseline, most promising (highest mean
    gain, or for supernet scores the highest score) first, at most ``config.confirm``. One is
    undecided while it has fewer than ``config.max_seeds`` seeds and no paired gain interval
    that excludes 0.
    """
    baseline = ranking.baseline
    if baseline is None or config.confirm == 0:
        return []
    members = [a for a in ranking.front(1) if not a.record.baseline and _promise(a) is not None]
    candidates = sorted(members, key=lambda a: (-_promise(a), a.record.number))[: config.confirm]
    runs = []
    for candidate in candidates:
        if len(candidate.seeds) >= config.max_seeds or (len(candidate.seeds) >= 2 and candidate.significant):
            continue
        seed = next(s for s in range(config.max_seeds) if s not in candidate.seeds)
        runs.append(SeedRun(candidate.record.key or "", seed, Stage.CONFIRM))
        if seed not in baseline.seeds:
            runs.append(SeedRun(BASELINE_KEY, seed, Stage.NOISE))
    return list(dict.fromkeys(runs))


def _promise(architecture: RankedArchitecture) -> float | None:
    """How promising a front member is: its paired proxy gain, or its supernet score (None: not yet known)."""
    if architecture.record.strategy == Strategy.SUPERNET:
        return architecture.accuracy
    return None if architecture.gain_estimate is None else architecture.gain_estimate.mean


def enqueue(study: optuna.Study, config: SearchConfig, records: Sequence[TrialRecord], runs: Sequence[SeedRun]) -> int:
    """Queue the runs not already done, running or queued; returns how many were queued."""
    queued = 0
    for run in runs:
        if done_or_coming(records, run):
            continue
        params = candidate_params(config.space, Candidate.from_key(run.key))
        attrs = {"key": run.key, "stage": run.stage.value, "seed_index": run.seed_index, "strategy": run.strategy.value}
        study.enqueue_trial(params, user_attrs=attrs)
        queued += 1
    return queued


def done_or_coming(records: Sequence[TrialRecord], run: SeedRun, finished_only: bool = False) -> bool:
    """Whether a record holds ``run``'s result (or, unless ``finished_only``, runs it or waits to)."""
    return any(
        record.key == run.key
        and record.seed_index == run.seed_index
        and record.strategy == run.strategy
        and (record.has_result or (not finished_only and record.status in (Status.RUNNING, Status.WAITING)))
        for record in records
    )
