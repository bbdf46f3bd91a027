"""Does a search find the true front, and does its verdict say so? Searches replayed on the true table.

``ground_truth.py`` trained every architecture of a small space with several seeds, as the
search's proxy and as a reference. Here each sampler searches that space again, over several
seeds and budgets, as ``ge-nas search`` would with its shipped seed settings, but each trial
reads its accuracy from the table instead of training:

* exploring trials are sampled by the real sampler (:func:`ge_nas.search.suggest_candidate`,
  baseline first), and read the architecture's seed-0 entry; an architecture sampled again
  reuses its result and counts, as in a search;
* the baseline's further seeds (the noise floor) and the confirmation rounds are chosen by
  ge-nas's own :func:`~ge_nas.search.confirmation.noise_runs` and
  :func:`~ge_nas.search.confirmation.confirmation_runs` and read seed ``s`` from the table;
* the search ends with :meth:`ge_nas.ranking.fronts.Ranking.verdict`, computed by
  :func:`ge_nas.ranking.fronts.rank` on the replayed trial records.

Replayed trials read the proxy's entries (``--values proxy``: what a shipped search sees) and,
where the table has them, the reference's (``reference``: a search with a perfect proxy, which
isolates the sampler and the confirmation). Against the truth (each architecture's mean over the
reference seeds, or over the proxy seeds when the table has no reference) it reports, per sampler
and budget:

* ``hit``: seeds whose verdict names an architecture of the true front other than the baseline;
  ``best``: seeds whose verdict names the truly most accurate architecture;
* ``regret``: the truly best mean accuracy minus that of the architecture the verdict names
  (the baseline's when it names none: a user keeps the baseline);
* ``hv``: the share of the true front's hypervolume that the architectures the search evaluated
  reach, at their true values. The reference point sits at the baseline's true accuracy (and
  the worst GFLOPs plus a 10 % slack), so the baseline alone holds none of it and the share
  measures only what beats the baseline;
* ``runs``: proxy trainings the search would pay for, exploring and confirmation (reuses are free).

It also prints the proxy's fidelity to the truth: Kendall's tau between the proxy's seed-0
accuracies (what exploring trials see) and the true means, and between the proxy's mean over
its seeds and the true means, each with a bootstrap 95 % interval over architectures. Pruning
is not replayed: the table holds final accuracies only. Run from the repository root, after
``ground_truth.py``:

    python benchmarks/search_efficiency.py --dataset context
    python benchmarks/search_efficiency.py --tiny     # a made-up table: no ground truth needed
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from ground_truth import ACCURACY, DEFAULTS, Truth, read_truth, show_fidelity
from optuna.trial import Trial
from report import write_table

from ge_nas.ranking.fronts import Ranking, rank
from ge_nas.ranking.pareto import hypervolume, reference_point, to_minimization
from ge_nas.search.config import BASELINE_SEEDS, CONFIRM, MAX_SEEDS, SAMPLERS, Objectives, ProxySettings, SearchConfig
from ge_nas.search.confirmation import confirmation_runs, enqueue, noise_runs
from ge_nas.search.sampling import make_sampler, suggest_candidate
from ge_nas.space.candidate import BASELINE_KEY
from ge_nas.space.search_space import SearchSpace, load_space
from ge_nas.storage.records import (
    Stage,
    Status,
    Strategy,
    TrialRecord,
    TrialWriter,
    counted,
    evaluation_of,
    read_records,
    seed_run_of,
)

OBJECTIVES = Objectives(ACCURACY, ("gflops",))


@dataclass(frozen=True)
class Seeds:
    """A replayed search's seed settings: the baseline's (the noise floor) and any architecture's at most."""

    baseline: int
    most: int


@dataclass(frozen=True)
class Outcome:
    """What one replayed search ended with, judged against the truth."""

    winner: str | None  # the key the verdict names, None when it names no architecture
    hit: bool
    best: bool
    regret: float
    hv_share: float
    runs: int
    distinct: int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DEFAULTS), default="shapes")
    parser.add_argument("--space", help="default: the dataset's ground-truth space (yolov8n_small, yolov8n_p3)")
    parser.add_argument("--table", type=Path, help="default: benchmarks/results/ground_truth_<dataset>_<space>.csv")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="comma-separated")
    parser.add_argument("--seeds", type=int, default=10, help="search seeds per sampler and budget")
    parser.add_argument("--budgets", default="4,8,16", help="exploring trials (--trials), baseline included")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/search_efficiency_<dataset>_<space>.csv")
    parser.add_argument("--tiny", action="store_true", help="smoke run on a made-up table, 1 seed, budgets 4 and 16")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = load_space(args.space or DEFAULTS[args.dataset].space)
    name = f"{args.dataset}_{space.name}"
    out = args.out or Path(f"benchmarks/results/search_efficiency_{name}.csv")
    if args.tiny:
        args.seeds, args.budgets, truth, source = 1, "4,16", made_up_truth(space), "made-up"
    else:
        path = args.table or Path(f"benchmarks/results/ground_truth_{name}.csv")
        if not path.is_file():
            raise SystemExit(
                f"{path} not found: run `python benchmarks/ground_truth.py --dataset {args.dataset} "
                f"--space {space.name}` first (or --tiny for a made-up table)"
            )
        truth, source = read_truth(path), str(path)
    missing = [c.code for c in space.enumerate() if c.key not in truth.ran()]
    if missing:
        raise SystemExit(
            f"the table's {truth.truth_schedule} lacks {len(missing)} architectures of {space.name}, e.g. "
            f"{missing[0]}: finish ground_truth.py first (it resumes)"
        )
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    budgets = [int(b) for b in args.budgets.split(",")]
    front = truth.front()
    print(
        f"{space.name} on the {args.dataset} data ({source}): {len(truth.keys)} architectures; truth: the "
        f"{truth.truth_schedule}'s mean over {truth.seeds(truth.truth_schedule)} seeds; true front: "
        + ", ".join(sorted(truth.codes[key] for key in front))
    )
    show_fidelity(truth)
    rows = []
    schedules = ("proxy", "reference") if truth.accuracy["reference"] else ("proxy",)
    for values in schedules:
        # A replay can only read the seeds the table holds: fewer than a search's defaults, it says so.
        seeds = Seeds(min(BASELINE_SEEDS, truth.seeds(values)), min(MAX_SEEDS, truth.seeds(values)))
        print(
            f"\nreplayed trials read the {values}'s entries; baseline seeds {seeds.baseline}, confirm {CONFIRM}, "
            f"max seeds {seeds.most}"
            + (
                f" (all the table holds; a search's defaults are {BASELINE_SEEDS} and {MAX_SEEDS})"
                if seeds.most < MAX_SEEDS
                else ""
            )
        )
        columns = ("hit", "best", "no winner", "regret (worst)", "hv (worst)", "runs")
        print(
            f"{'sampler':<8} {'trials':>6} "
            + " ".join(f"{c:>{w}}" for c, w in zip(columns, (6, 6, 9, 16, 15, 5), strict=True))
        )
        for sampler in samplers:
            for budget in budgets:
                outcomes = [
                    judge(replay(truth, space, sampler, seed, budget, values, seeds), truth, front)
                    for seed in range(args.seeds)
                ]
                row = summary_row(values, sampler, budget, seeds, outcomes)
                rows.append(row)
                print(
                    f"{sampler:<8} {budget:>6} {row['hit']:>3}/{args.seeds:<2} {row['best']:>3}/{args.seeds:<2} "
                    f"{row['no_winner']:>6}/{args.seeds:<2} {row['regret_mean']:>7.4f} (≤{row['regret_max']:.3f}) "
                    f"{row['hv_mean']:>6.3f} (≥{row['hv_min']:.2f}) {row['runs_mean']:>5.1f}"
                )
    settings = {
        "dataset": args.dataset,
        "space": space.name,
        "table": source,
        "truth": f"{truth.truth_schedule}_mean",
        "seeds": args.seeds,
        "confirm": CONFIRM,
        "hv_reference": "baseline_true_accuracy,worst_gflops+10%",
        "pruning": "not_replayed",
    }
    fields = list(rows[0])
    print(f"figures written to {write_table(out, settings, fields, rows)}")


class _TableObjective:
    """A search's trial that reads the table instead of training, recorded as ``ge-nas search`` records it."""

    def __init__(self, truth: Truth, space: SearchSpace, values: str) -> None:
        self.truth, self.space, self.values = truth, space, values

    def __call__(self, trial: Trial) -> list[float]:
        writer = TrialWriter(trial)
        stage = Stage(trial.user_attrs.get("stage", Stage.EXPLORE.value))
        seed_index = int(trial.user_attrs.get("seed_index", 0))
        candidate = suggest_candidate(trial, self.space)
        writer.sampled(candidate.key, candidate.code, candidate.units, stage, seed_index, Strategy.PROXY)
        records = read_records(trial.study)
        previous = (
            evaluation_of(records, candidate.key)
            if stage == Stage.EXPLORE
            else seed_run_of(records, candidate.key, seed_index)
        )
        if previous is not None and previous.values is not None:
            writer.reused(previous)
            return list(previous.values)
        accuracy = self.truth.accuracy[self.values][candidate.key][seed_index]
        gflops = self.truth.gflops[candidate.key]
        trial.set_user_attr("gflops", gflops)
        writer.epochs([{"epoch": 1, ACCURACY: accuracy}])
        writer.trained(0.0, {ACCURACY: accuracy})
        return [accuracy, gflops]


def replay(
    truth: Truth, space: SearchSpace, sampler: str, seed: int, budget: int, values: str, seeds: Seeds
) -> list[TrialRecord]:
    """One search's trial records, replayed: noise floor, ``budget`` exploring trials, then confirmation rounds.

    The loop is ``run_worker``'s, in one process: explore until ``budget`` trials count (or the
    grid has seen the whole space), then enqueue a round of confirmation runs while there is one.
    """
    config = SearchConfig(
        space=space,
        data_yaml=Path("replayed"),
        objectives=OBJECTIVES,
        proxy=ProxySettings(),
        trials=budget,
        study_name="replay",
        storage_url="replay",
        workdir=Path("replay"),
        sampler=sampler,
        seed=seed,
        baseline_seeds=seeds.baseline,
        confirm=CONFIRM,
        max_seeds=seeds.most,
    )
    study = optuna.create_study(directions=OBJECTIVES.directions, sampler=make_sampler(sampler, seed, False))
    objective = _TableObjective(truth, space, values)
    enqueue(study, config, [], noise_runs(config))
    while True:
        records = read_records(study)
        explored = {record.key for record in records if record.counts}
        if counted(records) >= budget or (sampler == "grid" and len(explored) >= space.size):
            break
        study.optimize(objective, n_trials=1)
    while True:
        records = read_records(study)
        queued = enqueue(study, config, records, confirmation_runs(ranked(records), config))
        if not queued:
            return records
        study.optimize(objective, n_trials=queued)


def ranked(records: list[TrialRecord]) -> Ranking:
    return rank(records, OBJECTIVES.names, OBJECTIVES.directions)


def judge(records: list[TrialRecord], truth: Truth, front: set[str]) -> Outcome:
    """A replayed search's verdict and exploration against the true table."""
    ranking = ranked(records)
    winner = ranking.winner()
    key = winner.record.key if winner is not None else None
    best_key = max(truth.keys, key=truth.mean)
    keys = truth.keys
    points = to_minimization(np.array([[truth.mean(k), truth.gflops[k]] for k in keys]), OBJECTIVES.directions)
    baseline = points[keys.index(BASELINE_KEY)]
    reference = reference_point(baseline, points)
    reference[0] = baseline[0]  # the baseline's own accuracy: only what beats it holds volume
    evaluated = {a.record.key for a in ranking.architectures if a.record.key in truth.codes}
    whole = hypervolume(points, reference)
    reached = hypervolume(points[[keys.index(k) for k in sorted(evaluated)]], reference)
    return Outcome(
        winner=key,
        hit=key is not None and key in front and key != BASELINE_KEY,
        best=key == best_key,
        regret=truth.mean(best_key) - truth.mean(key if key is not None else BASELINE_KEY),
        hv_share=reached / whole if whole > 0 else 1.0,
        runs=sum(record.status == Status.COMPLETE for record in records),
        distinct=len(evaluated),
    )


def summary_row(values: str, sampler: str, budget: int, seeds: Seeds, outcomes: list[Outcome]) -> dict[str, Any]:
    """One sampler and budget over seeds: counts of hits, and means (with the worst case) of the rest."""
    return {
        "values": values,
        "sampler": sampler,
        "budget_trials": budget,
        "baseline_seeds": seeds.baseline,
        "max_seeds": seeds.most,
        "hit": sum(o.hit for o in outcomes),
        "best": sum(o.best for o in outcomes),
        "no_winner": sum(o.winner is None for o in outcomes),
        "regret_mean": statistics.fmean(o.regret for o in outcomes),
        "regret_max": max(o.regret for o in outcomes),
        "hv_mean": statistics.fmean(o.hv_share for o in outcomes),
        "hv_min": min(o.hv_share for o in outcomes),
        "runs_mean": statistics.fmean(o.runs for o in outcomes),
        "distinct_mean": statistics.fmean(o.distinct for o in outcomes),
    }


def made_up_truth(space: SearchSpace) -> Truth:
    """A plausible table without training, for the smoke test: one unit helps, noise elsewhere, cost per unit."""
    rng = np.random.default_rng(0)
    codes, gflops, accuracy = {}, {}, {"proxy": {}, "reference": {}}
    for n, candidate in enumerate(space.enumerate()):
        effect = 0.05 * (n % 4 == 3)
        codes[candidate.key] = candidate.code
        gflops[candidate.key] = 0.354 + 0.0002 * candidate.units + 0.00001 * n
        for schedule, seeds in (("proxy", MAX_SEEDS), ("reference", 3)):
            accuracy[schedule][candidate.key] = {
                s: 0.6 + effect + 0.01 * float(rng.standard_normal()) for s in range(seeds)
            }
    return Truth({}, codes, gflops, accuracy)


if __name__ == "__main__":
    main()
