"""What does the Pareto-aware pruner save, and what does it cost the front?

Two real searches on the built-in synthetic dataset with demo-like settings (candidates
inherit from one parent, trained once and shared by both; 4 proxy epochs), the same
space, sampler, seed and trial count: one with ``pruner="pareto"``, one with
``pruner="none"``. It prints the share of training epochs the pruner saved (epochs are
counted from each trial's stored ``epochs``) and the hypervolume of the pruned search's
final front relative to the unpruned one's, under one reference point (anchored at the
baseline, over the trained architectures of both searches). Targets: >= 40% of epochs
saved while keeping >= 95% of the hypervolume. Because the baseline alone may hold most of
that hypervolume, it also prints the share kept of what the unpruned front adds to the
baseline's (``gain kept``), and names every unpruned front member the pruner stopped.
A finished pair of studies in ``--workdir`` is read again, not retrained. Run from the
repository root:

    python benchmarks/pruning.py                           # 16 trials each, parent trained here
    python benchmarks/pruning.py --weights parent.pt       # reuse a parent (e.g. ground_truth.py's)
    python benchmarks/pruning.py --tiny                    # a smoke run
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from report import write_table

from ge_nas.data.synthetic import make_synthetic_dataset
from ge_nas.ranking.pareto import hypervolume, nondominated_fronts, reference_point, to_minimization
from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
from ge_nas.search.pruning import ParetoPruning, make_pruner
from ge_nas.search.runner import run_search
from ge_nas.space.candidate import Candidate
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import load_space
from ge_nas.yolo.training import train_parent

PRUNERS = ("none", "pareto")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="yolov8n_ge")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--sampler", default="tpe")
    parser.add_argument("--objectives", default="map50-95,gflops")
    parser.add_argument("--images", type=int, default=128, help="training images (validation: a quarter)")
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4, help="proxy epochs")
    parser.add_argument("--parent-epochs", type=int, default=20)
    parser.add_argument("--weights", type=Path, help="a trained parent (base model checkpoint) to share instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="keep both studies here (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pruning.csv"))
    parser.add_argument("--tiny", action="store_true", help="smoke run: 8 images at 64 px, 2 trials of 2 epochs")
    args = parser.parse_args()
    if args.tiny:
        args.images, args.imgsz, args.epochs, args.parent_epochs, args.trials = 8, 64, 2, 1, 2
    space = load_space(args.space)
    objectives = Objectives.parse(args.objectives)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ge-nas-pruning-"))
    data = make_synthetic_dataset(n_train=args.images, n_val=max(2, args.images // 4), imgsz=args.imgsz, seed=args.seed)
    proxy = ProxySettings(epochs=args.epochs, imgsz=args.imgsz, batch=16, seed=args.seed)
    parent = args.weights
    if parent is None:
        print(f"training the shared parent for {args.parent_epochs} epochs")
        base_yaml = generate_model_yaml(space, Candidate.baseline()).write(workdir / "parent" / "model.yaml")
        parent = train_parent(base_yaml, data, proxy, args.parent_epochs, workdir / "parent")

    studies: dict[str, optuna.Study] = {}
    for pruner in PRUNERS:
        config = SearchConfig(
            space=space,
            data_yaml=data,
            objectives=objectives,
            proxy=proxy,
            trials=args.trials,
            study_name=f"pruning-{pruner}",
            storage_url=f"sqlite:///{workdir.resolve() / 'studies.db'}",
            workdir=workdir / pruner,
            sampler=args.sampler,
            pruner=pruner,
            seed=args.seed,
            weights=parent.resolve(),
        )
        studies[pruner] = run_search(config)  # a finished study in --workdir is only read again

    rows = [trial_row(pruner, t) for pruner, study in studies.items() for t in study.get_trials(deepcopy=False)]
    epochs = {pruner: sum(r["epochs_trained"] for r in rows if r["pruner"] == pruner) for pruner in PRUNERS}
    seconds = {pruner: sum(r["seconds"] for r in rows if r["pruner"] == pruner) for pruner in PRUNERS}
    saved = 1 - epochs["pareto"] / epochs["none"] if epochs["none"] else float("nan")
    volumes, baseline_volume = front_volumes(studies, objectives)
    kept = volumes["pareto"] / volumes["none"] if volumes["none"] else float("nan")  # 0 when nothing beat 0 mAP
    gain = volumes["none"] - baseline_volume
    gain_kept = (volumes["pareto"] - baseline_volume) / gain if gain > 0 else float("nan")
    pruned = sum(r["state"] == "pruned" for r in rows if r["pruner"] == "pareto")
    # How the search configures "pareto" for inherited proxies; used only to print the most it could save.
    pruning = make_pruner("pareto", objectives, args.epochs, inherited=True)
    assert isinstance(pruning, ParetoPruning)
    pareto = pruning.pruner
    startup, warmup = pareto.n_startup_trials, pareto.n_warmup_epochs
    at_most = max(0, args.trials - startup) * max(0, args.epochs - warmup - 1)
    print(f"\n{args.trials} trials each, {args.sampler} sampler, seed {args.seed}, {args.epochs} proxy epochs")
    print(f"epochs trained: {epochs['none']} without pruning, {epochs['pareto']} with ({pruned} trials pruned)")
    print(f"epochs saved       {saved:.3f}  (target >= 0.40)")
    print(f"hypervolume kept   {kept:.3f}  (target >= 0.95)")
    print(f"gain kept          {gain_kept:.3f}  (of the hypervolume the unpruned front adds to the baseline's)")
    print(f"trial time ratio   {seconds['pareto'] / seconds['none']:.3f}  (pruned / unpruned, sum of trial durations)")
    print(
        f"most these settings could save: {at_most / (args.trials * args.epochs):.3f} (the first "
        f"{startup} trials train fully; a trial stops after epoch {warmup + 1} at the "
        "earliest; reused architectures train in neither search)"
    )
    for line in lost_front_members(studies, objectives):
        print(line)
    settings = {
        "space": space.name,
        "trials": args.trials,
        "sampler": args.sampler,
        "objectives": objectives.names[0] + "+" + "+".join(objectives.costs),
        "images": args.images,
        "imgsz": args.imgsz,
        "proxy_epochs": args.epochs,
        "parent": "--weights" if args.weights else f"trained_{args.parent_epochs}_epochs",
        "seed": args.seed,
        "epochs_saved": f"{saved:.3f}",
        "hypervolume_kept": f"{kept:.3f}",
        "gain_kept": f"{gain_kept:.3f}",
        "trial_seconds_none": round(seconds["none"]),
        "trial_seconds_pareto": round(seconds["pareto"]),
    }
    fields = ["pruner", "trial", "code", "state", "epochs_trained", "accuracy", "gflops", "seconds", "prune_reason"]
    print(f"figures written to {write_table(args.out, settings, fields, rows)}")


def trial_row(pruner: str, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """What one trial trained and scored (a pruned one: its last epoch's accuracy); a reused result trained nothing."""
    attrs = trial.user_attrs
    reused = "reused_from" in attrs
    if trial.state == TrialState.PRUNED:
        state = "pruned (reused)" if reused else "pruned"
    else:
        state = "reused" if reused else trial.state.name.lower()
    epochs = attrs.get("epochs") or []
    finished = trial.datetime_complete is not None and trial.datetime_start is not None
    return {
        "pruner": pruner,
        "trial": trial.number,
        "code": attrs.get("code", ""),
        "state": state,
        "epochs_trained": 0 if reused else len(epochs),
        "accuracy": epochs[-1]["map50-95"] if epochs else "",
        "gflops": attrs.get("gflops", ""),
        "seconds": (trial.datetime_complete - trial.datetime_start).total_seconds() if finished else 0.0,
        "prune_reason": attrs.get("prune_reason", ""),
    }


def lost_front_members(studies: dict[str, optuna.Study], objectives: Objectives) -> list[str]:
    """Members of the unpruned front that the pruned search stopped early: what pruning cost, by name."""
    unpruned = studies["none"].get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    points = to_minimization(np.array([t.values for t in unpruned]), objectives.directions)
    front = {t.user_attrs["key"]: t for t, f in zip(unpruned, nondominated_fronts(points), strict=True) if f == 1}
    lines = []
    for trial in studies["pareto"].get_trials(deepcopy=False, states=(TrialState.PRUNED,)):
        member = front.get(trial.user_attrs.get("key"))
        if member is not None:
            accuracy = f"{objectives.accuracy} {member.values[0]:.4f} when trained to the end"
            reason = trial.user_attrs["prune_reason"]
            lines.append(f"pruned although on the unpruned front: {member.user_attrs['code']} ({accuracy}): {reason}")
    return lines


def front_volumes(studies: dict[str, optuna.Study], objectives: Objectives) -> tuple[dict[str, float], float]:
    """Hypervolume of each study's trained architectures, and the baseline's own, under one reference point."""
    points = {}
    for pruner, study in studies.items():
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        values = np.array([t.values for t in trials if "infeasible" not in t.user_attrs])
        points[pruner] = to_minimization(values, objectives.directions)
    baseline = next(t for t in studies["none"].get_trials(deepcopy=False) if t.user_attrs.get("baseline"))
    anchor = to_minimization(np.array([baseline.values]), objectives.directions)[0]
    reference = reference_point(anchor, np.vstack(list(points.values())))
    volumes = {pruner: hypervolume(p, reference) for pruner, p in points.items()}
    return volumes, hypervolume(anchor[np.newaxis], reference)


if __name__ == "__main__":
    main()
