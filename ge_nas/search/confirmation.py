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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from ge_nas.ranking.fronts import Ranking
from ge_nas.search.config import SearchConfig
from ge_nas.search.sampling import candidate_params
from ge_nas.space.candidate import BASELINE_KEY, Candidate
from ge_nas.storage.records import Stage, Status, TrialRecord

__all__ = ["SeedRun", "confirmation_runs", "enqueue", "noise_runs"]


@dataclass(frozen=True)
class SeedRun:
    """One seeded run a search still wants: which architecture, which seed, and why."""

    key: str
    seed_index: int
    stage: Stage


def noise_runs(config: SearchConfig) -> list[SeedRun]:
    """The baseline's exploring run (seed 0) and its further seeds, up to ``--baseline-seeds``."""
    return [SeedRun(BASELINE_KEY, 0, Stage.EXPLORE)] + [
        SeedRun(BASELINE_KEY, s, Stage.NOISE) for s in range(1, config.baseline_seeds)
    ]


def confirmation_runs(ranking: Ranking, config: SearchConfig) -> list[SeedRun]:
    """The next round: one more seed for each undecided front candidate, and the baseline's seed to pair it with.

    Candidates are front-1 members other than the baseline, most promising (highest mean
    gain) first, at most ``config.confirm``. One is undecided while it has fewer than
    ``config.max_seeds`` seeds and no paired gain interval that excludes 0.
    """
    baseline = ranking.baseline
    if baseline is None or config.confirm == 0:
        return []
    members = [a for a in ranking.front(1) if not a.record.baseline and a.gain_estimate is not None]
    candidates = sorted(members, key=lambda a: (-a.gain_estimate.mean, a.record.number))[: config.confirm]
    runs = []
    for candidate in candidates:
        if len(candidate.seeds) >= config.max_seeds or (len(candidate.seeds) >= 2 and candidate.significant):
            continue
        seed = next(s for s in range(config.max_seeds) if s not in candidate.seeds)
        runs.append(SeedRun(candidate.record.key or "", seed, Stage.CONFIRM))
        if seed not in baseline.seeds:
            runs.append(SeedRun(BASELINE_KEY, seed, Stage.NOISE))
    return list(dict.fromkeys(runs))


def enqueue(study: optuna.Study, config: SearchConfig, records: Sequence[TrialRecord], runs: Sequence[SeedRun]) -> int:
    """Queue the runs not already done, running or queued; returns how many were queued."""
    queued = 0
    for run in runs:
        if _done_or_coming(records, run):
            continue
        params = candidate_params(config.space, Candidate.from_key(run.key))
        attrs = {"key": run.key, "stage": run.stage.value, "seed_index": run.seed_index}
        study.enqueue_trial(params, user_attrs=attrs)
        queued += 1
    return queued


def _done_or_coming(records: Sequence[TrialRecord], run: SeedRun) -> bool:
    return any(
        record.key == run.key
        and record.seed_index == run.seed_index
        and (record.has_result or record.status in (Status.RUNNING, Status.WAITING))
        for record in records
    )
