"""What does ge-nas add to a training run? One search trial against plain Ultralytics training.

The same generated model YAML (a candidate of the search space, with GE units) is trained
two ways, with the same epochs, image size, batch, seed and workers:

  (A) ge-nas: what one search trial runs: build the candidate, measure its costs
      (params, GFLOPs, latency against the baseline), then ``train_proxy``;
  (B) Ultralytics: ``YOLO(yaml).train(..., plots=False, val=True)``, as a user would.

Each run is a fresh subprocess, so its peak resident memory is its own; A and B alternate
(ABBA...) so that drift on a shared machine hits both alike. It prints the ratios A/B of
wall time and of peak memory (target: time <= 1.05), and writes every run to a CSV.
ge-nas's proxy trainer keeps no checkpoints and skips Ultralytics' final re-validation of
``best.pt``, so A may well be faster than B. Run from the repository root:

    python benchmarks/overhead.py                  # 3 A/B rounds of the demo proxy (4 epochs)
    python benchmarks/overhead.py --tiny           # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report import median_ratio, write_table

RESULT_PREFIX = "RESULT "
RUNS = ("ge-nas", "ultralytics")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="yolov8n_ge")
    parser.add_argument("--candidate-seed", type=int, default=0, help="which candidate of the space to train")
    parser.add_argument("--rounds", type=int, default=3, help="A/B pairs")
    parser.add_argument("--images", type=int, default=128, help="training images of the built-in dataset")
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, or a GPU index such as 0 (both runs)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/overhead.csv"))
    parser.add_argument("--tiny", action="store_true", help="smoke run: 8 images at 64 px, 1 epoch, 1 round")
    parser.add_argument("--run", choices=RUNS, help=argparse.SUPPRESS)  # internal: one run in this process
    parser.add_argument("--yaml", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tiny:
        args.images, args.imgsz, args.epochs, args.rounds = 8, 64, 1, 1
    if args.run:
        print(RESULT_PREFIX + json.dumps(run_once(args)), flush=True)
    else:
        compare(args)


def compare(args: argparse.Namespace) -> None:
    """Write the candidate's YAML and the dataset once, then alternate A and B subprocesses."""
    from ge_nas.data.synthetic import make_synthetic_dataset
    from ge_nas.space.candidate import Candidate
    from ge_nas.space.model_yaml import generate_model_yaml
    from ge_nas.space.search_space import load_space

    space = load_space(args.space)
    candidate = space.sample(random.Random(args.candidate_seed))
    work = Path(tempfile.mkdtemp(prefix="ge-nas-overhead-"))
    model_yaml = generate_model_yaml(space, candidate).write(work / "model.yaml")
    generate_model_yaml(space, Candidate.baseline()).write(work / "baseline.yaml")
    data = make_synthetic_dataset(
        work / "data", n_train=args.images, n_val=max(2, args.images // 4), imgsz=args.imgsz, seed=args.seed
    )
    print(f"candidate {candidate.code} of {args.space}; {args.epochs} epochs, {args.images} images at {args.imgsz} px")
    runs: list[dict[str, Any]] = []
    for n in range(args.rounds):
        order = RUNS if n % 2 == 0 else RUNS[::-1]  # ABBA: a slow drift hits A and B alike
        for name in order:
            result = subprocess_run(args, name, model_yaml, data, work / f"{name}-{n}")
            runs.append({"round": n, "run": name, **result})
            print(
                f"round {n} {name:<11} train {result['train_s']:6.1f}s  trial {result['trial_s']:6.1f}s  "
                f"peak RSS {result['peak_rss_mib']:6.0f} MiB"
            )
    a = [r for r in runs if r["run"] == "ge-nas"]
    b = [r for r in runs if r["run"] == "ultralytics"]
    time_ratio = median_ratio([r["trial_s"] for r in a], [r["train_s"] for r in b])
    train_ratio = median_ratio([r["train_s"] for r in a], [r["train_s"] for r in b])
    rss_ratio = median_ratio([r["peak_rss_mib"] for r in a], [r["peak_rss_mib"] for r in b])
    print(f"\nge-nas trial / plain Ultralytics training, median of {args.rounds} A/B rounds:")
    print(f"  wall time, whole trial (costs + proxy training) {time_ratio:.3f}x  (target <= 1.05)")
    print(f"  wall time, training only                         {train_ratio:.3f}x")
    print(f"  peak resident memory                             {rss_ratio:.3f}x")
    print(
        f"  medians: ge-nas trial {statistics.median(r['trial_s'] for r in a):.1f}s "
        f"(of which costs {statistics.median(r['cost_s'] for r in a):.1f}s), "
        f"Ultralytics {statistics.median(r['train_s'] for r in b):.1f}s"
    )
    settings = {
        "space": args.space,
        "candidate": candidate.code.replace(" ", "_"),
        "images": args.images,
        "imgsz": args.imgsz,
        "epochs": args.epochs,
        "batch": args.batch,
        "workers": args.workers,
        "seed": args.seed,
        "device": args.device,
        "rounds": args.rounds,
        "time_ratio": f"{time_ratio:.3f}",
        "train_ratio": f"{train_ratio:.3f}",
        "rss_ratio": f"{rss_ratio:.3f}",
    }
    fields = ["round", "run", "train_s", "cost_s", "trial_s", "peak_rss_mib"]
    print(f"figures written to {write_table(args.out, settings, fields, runs)}")


def subprocess_run(args: argparse.Namespace, name: str, model_yaml: Path, data: Path, workdir: Path) -> dict[str, Any]:
    """Run one training in a fresh interpreter and return what it measured about itself."""
    command = [
        sys.executable,
        __file__,
        "--run",
        name,
        "--yaml",
        str(model_yaml),
        "--data",
        str(data),
        "--workdir",
        str(workdir),
        *("--epochs", str(args.epochs), "--imgsz", str(args.imgsz), "--batch", str(args.batch)),
        *("--workers", str(args.workers), "--seed", str(args.seed), "--device", args.device),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the {name} run failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX))


def run_once(args: argparse.Namespace) -> dict[str, float]:
    """One run, in this (fresh) process; imports happen before the clock starts, in both runs."""
    from ultralytics import YOLO

    import ge_nas  # noqa: F401  (registers the GE layers, so Ultralytics can read the YAML)
    from ge_nas.search.config import ProxySettings
    from ge_nas.yolo.costs import measure_cost
    from ge_nas.yolo.model_files import build_model
    from ge_nas.yolo.training import train_proxy

    cost_s = 0.0
    if args.run == "ge-nas":
        baseline = build_model(args.yaml.with_name("baseline.yaml"))  # built once per search, not per trial
        start = time.perf_counter()
        measure_cost(build_model(args.yaml), baseline, args.imgsz, args.device)
        cost_s = time.perf_counter() - start
        settings = ProxySettings(
            epochs=args.epochs,
            imgsz=args.imgsz,
            batch=args.batch,
            device=args.device,
            seed=args.seed,
            workers=args.workers,
        )
        start = time.perf_counter()
        train_proxy(args.yaml, args.data, settings, args.workdir)
    else:
        start = time.perf_counter()
        YOLO(str(args.yaml)).train(
            data=str(args.data),
            epochs=args.epochs,
            imgsz=args.imgsz,
            batch=args.batch,
            seed=args.seed,
            workers=args.workers,
            device=args.device,
            plots=False,
            val=True,
            project=str(args.workdir.resolve()),
            name="train",
            exist_ok=True,
            verbose=False,
        )
    train_s = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"train_s": train_s, "cost_s": cost_s, "trial_s": train_s + cost_s, "peak_rss_mib": peak_kib / 1024}


if __name__ == "__main__":
    main()
