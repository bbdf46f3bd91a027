"""How close does each sampler get to the true front, and how soon? No training: a table lookup.

``ground_truth.py`` evaluated every architecture of a small space once; here each sampler
searches that space again, its objective looking each sampled candidate up by key (the
candidate comes from ``ge_nas.search.suggest_candidate``, as in a real search, with the
baseline as trial 0). For budgets of 25%, 50% and 100% of the space's size (in trials, as
``--trials`` counts them: a repeated architecture is a trial too, though a real search
reuses its result instead of training it), over several seeds, it reports:

* ``hv``: the share of the true front's hypervolume reached (``ge_nas.ranking.hypervolume``,
  with the reference point derived from the baseline and every architecture of the table);
* ``gain``: the share of the hypervolume the true front adds to the baseline's own, reached.
  The baseline is trial 0 of every search, and with a reference point that must cover the
  worst architecture, the baseline alone may already hold most of the volume (it does on
  ``yolov8n_small``: ~99%), so ``hv`` barely separates samplers; ``gain`` measures what the
  search found beyond the model it started from;
* both relative to random search at the same budget, and the trials each sampler needs to
  reach 95% of each (median over seeds).

Run from the repository root, after ``ground_truth.py``:

    python benchmarks/search_efficiency.py
    python benchmarks/search_efficiency.py --tiny     # a synthetic table: no ground truth needed
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import Trial
from report import write_table

from ge_nas.ranking.pareto import hypervolume, reference_point, to_minimization
from ge_nas.search.config import SAMPLERS, Objectives
from ge_nas.search.sampling import candidate_params, make_sampler, suggest_candidate
from ge_nas.space.candidate import BASELINE_KEY, Candidate
from ge_nas.space.search_space import SearchSpace, load_space

BUDGET_SHARES = (0.25, 0.5, 1.0)
TARGET = 0.95
METRICS = {
    "hv": "share of the true front's hypervolume",
    "gain": "share of the hypervolume the true front adds to the baseline's",
}
SUMMARY_COLUMNS = ("mean", "min", "max", "vs_random", "seeds_at_95", "median_trials_to_95")
Table = dict[str, dict[str, float]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="yolov8n_small")
    parser.add_argument("--table", type=Path, help="default: benchmarks/results/ground_truth_<space>.csv")
    parser.add_argument("--objectives", default="map50-95,gflops")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="comma-separated; random is the yardstick")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--horizon", type=float, default=2.0, help="longest run, in space sizes (for 'trials to 95%%')")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search_efficiency.csv"))
    parser.add_argument("--tiny", action="store_true", help="smoke run on a synthetic table, 1 seed, 1 space size")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = load_space(args.space)
    objectives = Objectives.parse(args.objectives)
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    if args.tiny:
        args.seeds, args.horizon, source = 1, 1.0, "synthetic"
        table = synthetic_table(space)
    else:
        path = args.table or Path(f"benchmarks/results/ground_truth_{space.name}.csv")
        if not path.is_file():
            raise SystemExit(
                f"{path} not found: run `python benchmarks/ground_truth.py --space {space.name}` first "
                "(or --tiny for a synthetic table)"
            )
        table, source = read_table(path), str(path)
    missing = [c.key for c in space.enumerate() if c.key not in table]
    if missing:
        raise SystemExit(f"the table lacks {len(missing)} architectures of {space.name}, e.g. {missing[0]}")

    keys = list(table)
    points = to_minimization(np.array([[table[k][n] for n in objectives.names] for k in keys]), objectives.directions)
    baseline = points[keys.index(BASELINE_KEY)]
    reference = reference_point(baseline, points)
    volumes = (hypervolume(baseline[np.newaxis], reference), hypervolume(points, reference))
    horizon = math.ceil(args.horizon * space.size)
    print(
        f"{space.name}: {space.size} architectures ({source}); true hypervolume {volumes[1]:.6g}, "
        f"of which the baseline alone holds {volumes[0] / volumes[1]:.3f}"
    )

    curves: dict[str, list[dict[str, list[float]]]] = {}
    for name in samplers:
        curves[name] = []
        for seed in range(args.seeds):
            keys_seen = run_sampler(name, seed, space, table, objectives, horizon)
            curves[name].append(share_curves(keys_seen, table, objectives, reference, volumes, horizon))
    rows = summarise(curves, space.size, horizon)
    for metric, title in METRICS.items():
        show(rows, metric, title, space.size, args.seeds)
    print(
        "distinct architectures evaluated, mean: "
        + "; ".join(
            f"{name} " + "/".join(f"{r['distinct_mean']:.1f}" for r in rows if r["sampler"] == name)
            for name in samplers
        )
    )
    settings = {
        "space": space.name,
        "table": source,
        "objectives": objectives.names[0] + "+" + "+".join(objectives.costs),
        "seeds": args.seeds,
        "horizon_trials": horizon,
        "true_hypervolume": f"{volumes[1]:.6g}",
        "baseline_hypervolume": f"{volumes[0]:.6g}",
    }
    fields = ["sampler", "budget_trials", "budget_share", "distinct_mean"] + [
        f"{metric}_{column}" for metric in METRICS for column in SUMMARY_COLUMNS
    ]
    print(f"figures written to {write_table(args.out, settings, fields, rows)}")


def read_table(path: Path) -> Table:
    """The ground-truth CSV (first line: its settings) as ``key -> {column: value}``."""
    lines = path.read_text().splitlines()
    rows = csv.DictReader(lines[1:])
    return {row["key"]: {k: float(v) for k, v in row.items() if k not in ("key", "code")} for row in rows}


def synthetic_table(space: SearchSpace) -> Table:
    """A made-up but plausible table, so the smoke test needs no training: accuracy noise, cost per unit."""
    rng = np.random.default_rng(0)
    table = {}
    for candidate in space.enumerate():
        table[candidate.key] = {
            "map50-95": 0.6 + 0.02 * float(rng.standard_normal()),
            "map50": 0.95,
            "gflops": 0.354 + 0.0002 * candidate.units + 0.00005 * float(rng.random()),
            "params": 3.157e6 + 1e4 * candidate.units,
            "latency": 12.0 + candidate.units,
        }
    return table


def lookup(space: SearchSpace, table: Table, objectives: Objectives) -> Callable[[Trial], list[float]]:
    """An Optuna objective that samples as a search does and reads the result instead of training."""

    def objective(trial: Trial) -> list[float]:
        candidate = suggest_candidate(trial, space)
        trial.set_user_attr("key", candidate.key)
        return [table[candidate.key][name] for name in objectives.names]

    return objective


def run_sampler(
    name: str, seed: int, space: SearchSpace, table: Table, objectives: Objectives, trials: int
) -> list[str]:
    """The keys one seeded search samples, in order, baseline first (as ``run_search`` enqueues it)."""
    study = optuna.create_study(directions=objectives.directions, sampler=make_sampler(name, seed, constrained=False))
    study.enqueue_trial(candidate_params(space, Candidate.baseline()))
    study.optimize(lookup(space, table, objectives), n_trials=trials)
    return [t.user_attrs["key"] for t in study.trials]  # grid stops by itself once the space is exhausted


def share_curves(
    keys: list[str],
    table: Table,
    objectives: Objectives,
    reference: np.ndarray,
    volumes: tuple[float, float],
    horizon: int,
) -> dict[str, list[float]]:
    """``hv`` and ``gain`` shares, and distinct architectures, after 1, 2, ... ``horizon`` trials.

    ``volumes`` are the baseline's own hypervolume and the true front's. Curves stay flat
    after a search that ended early (grid, once the space is exhausted).
    """
    baseline_volume, true_volume = volumes
    curves: dict[str, list[float]] = {"hv": [], "gain": [], "distinct": []}
    for k in range(1, horizon + 1):
        seen = sorted(set(keys[:k]))
        curves["distinct"].append(len(seen))
        values = np.array([[table[key][n] for n in objectives.names] for key in seen])
        volume = hypervolume(to_minimization(values, objectives.directions), reference)
        curves["hv"].append(volume / true_volume)
        gain = true_volume - baseline_volume
        curves["gain"].append((volume - baseline_volume) / gain if gain > 0 else 1.0)
    return curves


def summarise(curves: dict[str, list[dict[str, list[float]]]], size: int, horizon: int) -> list[dict[str, Any]]:
    """One row per sampler and budget: per metric, the mean, min and max share over seeds and more."""
    budgets = sorted({max(1, round(share * size)) for share in BUDGET_SHARES} | {horizon})
    rows = []
    for name, runs in curves.items():
        for budget in budgets:
            row: dict[str, Any] = {"sampler": name, "budget_trials": budget, "budget_share": budget / size}
            row["distinct_mean"] = statistics.mean(run["distinct"][budget - 1] for run in runs)
            for metric in METRICS:
                at = [run[metric][budget - 1] for run in runs]
                to_target = [next((k + 1 for k, s in enumerate(run[metric]) if s >= TARGET), math.inf) for run in runs]
                median_to_target = statistics.median(to_target)
                random_mean = (
                    statistics.mean(run[metric][budget - 1] for run in curves["random"]) if "random" in curves else 0
                )
                row |= {
                    f"{metric}_mean": statistics.mean(at),
                    f"{metric}_min": min(at),
                    f"{metric}_max": max(at),
                    f"{metric}_vs_random": statistics.mean(at) / random_mean if random_mean else math.nan,
                    f"{metric}_seeds_at_95": sum(s >= TARGET for s in at),
                    f"{metric}_median_trials_to_95": median_to_target
                    if median_to_target != math.inf
                    else f">{horizon}",
                }
            rows.append(row)
    return rows


def show(rows: list[dict[str, Any]], metric: str, title: str, size: int, seeds: int) -> None:
    budgets = sorted({row["budget_trials"] for row in rows})
    print(f"\n{title}, mean over {seeds} seeds (and relative to random search at the same budget)")
    print(f"{'sampler':<8} " + " ".join(f"{f'{b} trials ({b / size:.0%})':>22}" for b in budgets) + "  trials to 95%")
    for name in dict.fromkeys(row["sampler"] for row in rows):
        mine = [row for row in rows if row["sampler"] == name]
        cells = [f"{row[f'{metric}_mean']:>13.3f} ({row[f'{metric}_vs_random']:.2f}x)" for row in mine]
        median = mine[0][f"{metric}_median_trials_to_95"]
        print(f"{name:<8} " + " ".join(f"{cell:>22}" for cell in cells) + f"  {median:>13}")


if __name__ == "__main__":
    main()
