"""The true front of a small space: every architecture evaluated once, as a search would.

On an enumerable search space (default ``yolov8n_small``, 16 architectures) this runs a
real ``run_search`` with the exhaustive ``grid`` sampler, no pruning, and as many trials
as the space has architectures, on the built-in synthetic dataset with the demo's proxy
(a parent trained once, proxies that inherit from it for 4 epochs). Every architecture is
then known with the same proxy settings, so the table is the "true front" that
``search_efficiency.py`` measures samplers against. Run from the repository root:

    python benchmarks/ground_truth.py                 # writes benchmarks/results/ground_truth_yolov8n_small.csv
    python benchmarks/ground_truth.py --tiny          # a smoke run: 3 architectures, tiny data
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from report import write_table

from ge_nas.data.synthetic import make_synthetic_dataset
from ge_nas.ranking.pareto import hypervolume, nondominated_fronts, reference_point, to_minimization
from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
from ge_nas.search.runner import run_search
from ge_nas.space.search_space import load_space

# Columns of the table; objective names are column names, so a lookup needs no mapping.
FIELDS = ("key", "code", "units", "map50-95", "map50", "gflops", "params", "latency", "latency_ratio", "train_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="yolov8n_small")
    parser.add_argument("--images", type=int, default=128, help="training images (validation: a quarter)")
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4, help="proxy epochs")
    parser.add_argument("--parent-epochs", type=int, default=20)
    parser.add_argument("--objectives", default="map50-95,gflops", help="the study's objectives (front shown)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="evaluate only N architectures (default: all)")
    parser.add_argument("--workdir", type=Path, help="keep the study and parent.pt here (default: a temp folder)")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/ground_truth_<space>.csv")
    parser.add_argument("--tiny", action="store_true", help="smoke run: 8 images at 64 px, 1 epoch, 3 architectures")
    args = parser.parse_args()
    if args.tiny:
        args.images, args.imgsz, args.epochs, args.parent_epochs, args.limit = 8, 64, 1, 1, 3
    space = load_space(args.space)
    out = args.out or Path(f"benchmarks/results/ground_truth_{space.name}.csv")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ge-nas-ground-truth-"))
    objectives = Objectives.parse(args.objectives)
    trials = min(args.limit or space.size, space.size)
    config = SearchConfig(
        space=space,
        data_yaml=make_synthetic_dataset(
            n_train=args.images, n_val=max(2, args.images // 4), imgsz=args.imgsz, seed=args.seed
        ),
        objectives=objectives,
        proxy=ProxySettings(epochs=args.epochs, imgsz=args.imgsz, batch=16, seed=args.seed),
        trials=trials,
        study_name=f"ground-truth-{space.name}",
        storage_url=f"sqlite:///{workdir.resolve() / 'study.db'}",
        workdir=workdir,
        sampler="grid",
        pruner="none",  # the truth needs every proxy trained to the end
        seed=args.seed,
        parent_epochs=args.parent_epochs,
    )
    print(f"evaluating {trials} of {space.size} architectures of {space.name}; study and parent in {workdir}")
    start = time.perf_counter()
    study = run_search(config)
    seconds = time.perf_counter() - start
    rows = table_rows(study)
    if len(rows) < trials:
        print(f"warning: only {len(rows)} distinct architectures were evaluated (failed trials?)")
    settings = {
        "space": space.name,
        "architectures": f"{len(rows)}/{space.size}",
        "images": args.images,
        "imgsz": args.imgsz,
        "proxy_epochs": args.epochs,
        "parent_epochs": args.parent_epochs,
        "batch": 16,
        "seed": args.seed,
        "sampler": "grid",
        "pruner": "none",
        "latency": "ms_batch1_fused_cpu",
        "seconds": round(seconds),
    }
    write_table(out, settings, FIELDS, rows)
    show_front(rows, objectives)
    print(f"{len(rows)} architectures in {seconds:.0f}s (parent included); table written to {out}")


def table_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per architecture the study trained itself (reused and failed trials left out)."""
    rows = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        if "reused_from" in attrs or "infeasible" in attrs:
            continue
        rows.append(
            {
                "key": attrs["key"],
                "code": attrs["code"],
                "units": attrs["units"],
                "map50-95": attrs["map50-95"],
                "map50": attrs["map50"],
                "gflops": attrs["gflops"],
                "params": attrs["params"],
                "latency": attrs["latency_ms"],
                "latency_ratio": attrs["latency_ratio"],
                "train_s": attrs["train_seconds"],
            }
        )
    return rows


def show_front(rows: list[dict[str, Any]], objectives: Objectives) -> None:
    """Print the true front and its hypervolume (reference point anchored at the baseline)."""
    values = np.array([[row[name] for name in objectives.names] for row in rows])
    points = to_minimization(values, objectives.directions)
    fronts = nondominated_fronts(points)
    print(f"\n{'code':<12} " + " ".join(f"{name:>10}" for name in objectives.names) + "  front")
    for row, front in sorted(zip(rows, fronts.tolist(), strict=True), key=lambda pair: pair[1]):
        print(f"{row['code']:<12} " + " ".join(f"{row[name]:>10.4g}" for name in objectives.names) + f"  {front}")
    baseline = next((p for row, p in zip(rows, points, strict=True) if row["key"] == "base"), None)
    if baseline is not None:
        volume = hypervolume(points, reference_point(baseline, points))
        print(f"true front: {int((fronts == 1).sum())} architectures, hypervolume {volume:.6g} ({objectives.names})")


if __name__ == "__main__":
    main()
