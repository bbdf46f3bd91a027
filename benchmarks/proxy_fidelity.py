"""How faithful are short inherited proxies? Each recipe's ranking against seed-averaged references.

On an enumerable search space and the built-in synthetic dataset, a parent (the base model)
is trained once; every architecture is then trained

  * by each reference (:data:`REFERENCES`), several seeds, ranked on their mean: ``inherited``
    continues from the parent for longer (as ``ge-nas train --weights`` continues a found
    architecture), ``scratch`` trains from scratch for longer (as ``ge-nas train`` and
    ``ge-nas retrain`` do);
  * by each proxy recipe (:data:`RECIPES`), inheriting the parent, with the seeds a search uses
    (``training_seed(--seed, i)``): seed 0 is what an exploring trial sees, the mean of three
    what a confirmed candidate gets.

For each reference it prints its ceiling, Kendall tau between the means of two disjoint
halves of its seeds (over every split; the most a proxy can be expected to reach), and for
each recipe Kendall tau against the reference's mean with a 95 % bootstrap interval over
architectures (one seed, and the mean of the seeds), the paired bootstrap difference to
today's recipe ``joint``, and compute relative to the reference. Every run is appended to the
CSV as it finishes; a second call with the same settings (the parent's tensors are hashed
into the header) trains only what is missing, so a crash keeps what finished and recipes,
seeds or references can be added later.

With ``--truth`` a ``ground_truth.py`` table is the reference instead: its reference runs (from
scratch, seeds disjoint from the proxies') are the truth, its proxy runs are recipe ``joint``
(the shipped one, the table's seeds), and only the other recipes train, on the table's own
parent and data (its settings, mosaic included, come from the table's first line). Run from
the repository root:

    python benchmarks/proxy_fidelity.py                                  # the figures in RESULTS.md
    python benchmarks/proxy_fidelity.py --truth benchmarks/results/ground_truth_context_yolov8n_p3.csv \\
        --recipes joint,gate-0,inherited-5x --proxy-seeds 0,1,2          # the README's context figures
    python benchmarks/proxy_fidelity.py --recipes units-alone,gate-1 --proxy-seeds 3   # a pilot on a held-out seed
    python benchmarks/proxy_fidelity.py --analyse-only                   # print the tables from the CSV
    python benchmarks/proxy_fidelity.py --tiny                           # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import math
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ground_truth import (
    REFERENCE_SEEDS,
    default_workdir,
    parent_path,
    read_truth,
    reference_search_seed,
    settings_of,
)
from report import header, percentile_interval

import ge_nas  # noqa: F401  (registers the GE layers)
from ge_nas.data.synthetic import make_synthetic_dataset
from ge_nas.ranking.correlation import kendall, spearman
from ge_nas.search.config import FineTune, ProxySettings, file_sha256, fine_tune_recipe, training_seed
from ge_nas.space.candidate import Candidate
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import SearchSpace, load_space
from ge_nas.yolo.inheritance import Inheritance, load_parent_state
from ge_nas.yolo.training import train_parent, train_proxy


@dataclass(frozen=True)
class Recipe:
    """How one proxy (or the reference) trains: a fine-tune recipe, for some epochs, on some of the images."""

    fine_tune: FineTune
    epochs_scale: int = 1  # epochs = --proxy-epochs x this
    fraction: float = 1.0  # of the training images (Ultralytics takes the first ones)
    note: str = ""


# Today's recipe is "joint": every layer trains from the first step, GE units at 10x the rate
# from an almost open gate (sigmoid(3)). The others are the candidates tried against it.
RECIPES: dict[str, Recipe] = {
    "joint": Recipe(FineTune(), note="all layers from the start, GE units 10x, gate sigmoid(3)"),
    "units-alone": Recipe(FineTune(units_alone_epochs=1), note="epoch 1: GE units alone on the frozen parent"),
    "units-alone-2": Recipe(FineTune(units_alone_epochs=2), note="epochs 1-2: GE units alone"),
    "gate-1": Recipe(FineTune(gate_bias=1.0), note="a less open gate, sigmoid(1) = 0.73"),
    "gate-0": Recipe(FineTune(gate_bias=0.0), note="a half-open gate, sigmoid(0) = 0.5"),
    "units-alone-gate-1": Recipe(FineTune(units_alone_epochs=1, gate_bias=1.0), note="both"),
    "units-30x": Recipe(FineTune(new_unit_lr_factor=30.0), note="GE units at 30x"),
    "longer-fewer": Recipe(FineTune(), epochs_scale=2, fraction=0.5, note="twice the epochs on half the images"),
    "inherited-5x": Recipe(
        FineTune(lr0=1e-3, new_unit_lr_factor=2.0), note="inherited layers at 5x (1e-3), GE units at the same 2e-3"
    ),
}


@dataclass(frozen=True)
class Reference:
    """A longer training of every architecture, over several seeds: what the proxies should rank like."""

    name: str  # "inherited" (from the parent, recipe joint) or "scratch"
    epochs: int
    seeds: int

    @property
    def row_name(self) -> str:
        return f"reference-{self.name}"

    @property
    def inherits(self) -> bool:
        return self.name == "inherited"

    @classmethod
    def parse(cls, text: str) -> Reference:
        """``inherited:16x4``: the name, its epochs, its seeds."""
        name, _, size = text.partition(":")
        epochs, _, seeds = size.partition("x")
        if name not in ("inherited", "scratch") or not epochs.isdigit() or not seeds.isdigit() or int(seeds) < 2:
            raise SystemExit(f"--references {text!r}: write inherited:EPOCHSxSEEDS or scratch:EPOCHSxSEEDS, 2+ seeds")
        return cls(name, int(epochs), int(seeds))


FIELDS = (
    "recipe",
    "fine_tune",
    "epochs",
    "fraction",
    "key",
    "code",
    "seed_index",
    "seed",
    "map50-95",
    "by_epoch",
    "seconds",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="yolov8n_small")
    parser.add_argument("--images", type=int, default=128, help="training images (validation: a quarter)")
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--parent-epochs", type=int, default=20)
    parser.add_argument("--proxy-epochs", type=int, default=4, help="the demo's proxy length")
    parser.add_argument(
        "--references", default="inherited:16x4", help="NAME:EPOCHSxSEEDS, comma-separated: inherited, scratch"
    )
    parser.add_argument("--reference-seed", type=int, default=1, help="their seeds: training_seed(this, i)")
    parser.add_argument("--seed", type=int, default=0, help="the search's --seed: proxy seeds training_seed(this, i)")
    parser.add_argument("--proxy-seeds", default="0,1,2", help="seed indices of the proxies (a search's 0, 1, 2)")
    parser.add_argument("--recipes", default="joint,units-alone", help=f"from {', '.join(RECIPES)}")
    parser.add_argument("--bootstrap", type=int, default=2000, help="resamples of the architectures")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N architectures")
    parser.add_argument("--workdir", type=Path, help="runs and the parent (default: a temp folder)")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/proxy_fidelity[_<truth's name>].csv")
    parser.add_argument("--truth", type=Path, help="a ground_truth.py table as the reference (see above)")
    parser.add_argument("--analyse-only", action="store_true", help="train nothing; print the table from --out")
    parser.add_argument("--tiny", action="store_true", help="smoke run: 8 images at 64 px, 3 architectures")
    args = parser.parse_args()
    if args.tiny:
        args.images, args.imgsz, args.parent_epochs, args.limit, args.bootstrap = 8, 64, 1, 3, 200
        args.proxy_epochs, args.references, args.proxy_seeds = 2, "inherited:2x2,scratch:1x2", "0,1"
    args.dataset, args.mosaic, truth_rows = "shapes", True, []
    if args.truth is not None:
        truth_rows = adopt_truth(args)
    args.out = args.out or Path("benchmarks/results/proxy_fidelity.csv")
    recipes = {name: RECIPES[name] for name in args.recipes.split(",")}
    references = [Reference.parse(text) for text in args.references.split(",")]
    seeds = {i: training_seed(args.seed, i) for i in (int(i) for i in args.proxy_seeds.split(","))}
    most = max(r.seeds for r in references)
    if set(seeds.values()) & {training_seed(args.reference_seed, i) for i in range(most)}:
        raise SystemExit("the references and the proxies share a training seed: choose another --reference-seed")

    space = load_space(args.space)
    candidates = list(space.enumerate())[: args.limit or None]
    if args.analyse_only:
        _, rows = read_rows(args.out)
    else:
        rows = run_missing(args, space, candidates, recipes, seeds, references, truth_rows)
    rows = [*truth_rows, *rows]
    for reference in references:
        analyse(args, rows, candidates, recipes, seeds, reference)


def run_missing(
    args: argparse.Namespace,
    space: SearchSpace,
    candidates: list[Candidate],
    recipes: Mapping[str, Recipe],
    seeds: Mapping[int, int],
    references: Sequence[Reference],
    truth_rows: Sequence[Mapping[str, str]],
) -> list[dict[str, str]]:
    """Train the parent (or load the truth table's), then every run that neither the CSV nor the truth holds."""
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ge-nas-fidelity-"))
    images, imgsz = args.images, args.imgsz
    data = make_synthetic_dataset(
        work / "data", n_train=images, n_val=max(2, images // 4), imgsz=imgsz, kind=args.dataset
    )
    if args.truth is not None:
        parent = load_parent_state(args.parent)
    else:
        base_yaml = generate_model_yaml(space, Candidate.baseline()).write(work / "parent" / "model.yaml")
        start = time.perf_counter()
        parent_settings = ProxySettings(epochs=args.proxy_epochs, imgsz=args.imgsz, batch=16, seed=args.seed)
        parent = load_parent_state(train_parent(base_yaml, data, parent_settings, args.parent_epochs, work / "parent"))
        print(f"parent: {args.parent_epochs} epochs in {time.perf_counter() - start:.0f}s")
    settings = {
        "space": args.space,
        "images": args.images,
        "imgsz": args.imgsz,
        "batch": 16,
        "parent_epochs": args.parent_epochs,
        "parent_seed": args.seed,
        "parent_state": state_digest(parent),
        "metric": "map50-95",
        **({"truth": args.truth.name, "mosaic": "off" if not args.mosaic else "on"} if args.truth else {}),
    }
    rows = open_table(args.out, settings)
    done = {run_id(row) for row in [*rows, *truth_rows]}
    jobs: list[tuple[str, Recipe | None, int, int, int]] = []  # name, recipe (None: from scratch), epochs, seed
    for reference in references if args.truth is None else ():  # a truth table's are ground_truth.py's to train
        recipe = RECIPES["joint"] if reference.inherits else None
        jobs += [
            (reference.row_name, recipe, reference.epochs, i, training_seed(args.reference_seed, i))
            for i in range(reference.seeds)
        ]
    jobs += [
        (name, r, args.proxy_epochs * r.epochs_scale, i, s)
        for name, r in recipes.items()
        if args.truth is None or name != "joint"  # so is the shipped recipe's proxy
        for i, s in seeds.items()
    ]
    with args.out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        for name, recipe, epochs, seed_index, seed in jobs:
            for n, candidate in enumerate(candidates):
                row = {
                    "recipe": name,
                    "fine_tune": fine_tune_recipe(recipe.fine_tune) if recipe else "none (from scratch)",
                    "epochs": str(epochs),
                    "fraction": f"{recipe.fraction if recipe else 1:g}",
                    "key": candidate.key,
                    "code": candidate.code,
                    "seed_index": str(seed_index),
                    "seed": str(seed),
                }
                if run_id(row) in done:
                    continue
                settings = ProxySettings(epochs, args.imgsz, 16, float(row["fraction"]), seed=seed, mosaic=args.mosaic)
                row.update(train_run(space, candidate, recipe, data, parent, settings, work / name / f"{n:03d}-{seed}"))
                writer.writerow(row)
                f.flush()
                rows.append(row)
                print(f"{name:<20} seed {seed_index} {candidate.code:<12} {row['map50-95']:>8} {row['seconds']:>7}s")
    return rows


def train_run(
    space: SearchSpace,
    candidate: Candidate,
    recipe: Recipe | None,
    data: Path,
    parent: dict[str, torch.Tensor],
    settings: ProxySettings,
    run_dir: Path,
) -> dict[str, str]:
    """Train one architecture (from the parent with ``recipe``, or from scratch): final and per-epoch mAP, seconds."""
    generated = generate_model_yaml(space, candidate)
    model_yaml = generated.write(run_dir / "model.yaml")
    start = time.perf_counter()
    if recipe is None:
        history = train_proxy(model_yaml, data, settings, run_dir)
    else:
        inheritance = Inheritance(parent, generated.index_map)
        history = train_proxy(model_yaml, data, settings, run_dir, inheritance=inheritance, recipe=recipe.fine_tune)
    return {
        "seconds": f"{time.perf_counter() - start:.2f}",
        "map50-95": f"{history[-1]['map50-95']:.6g}",
        "by_epoch": ";".join(f"{epoch['map50-95']:.5f}" for epoch in history),
    }


def adopt_truth(args: argparse.Namespace) -> list[dict[str, str]]:
    """Take the settings, parent and reference from the ground-truth table ``args.truth``; its runs as rows here.

    Its reference runs become ``reference-scratch`` rows and its proxy runs ``joint`` rows,
    exactly as this script would have written them, so they are analysed and never retrained.
    """
    settings = settings_of(args.truth)
    if settings.get("reference_seeds") != REFERENCE_SEEDS or not int(settings.get("reference_epochs", 0)):
        raise SystemExit(
            f"--truth {args.truth}: give a ground_truth.py table with a reference whose seeds no proxy shares "
            f"(reference_seeds={REFERENCE_SEEDS} in its first line)"
        )
    args.dataset, args.space, args.mosaic = settings["dataset"], settings["space"], settings.get("mosaic") != "off"
    args.images, args.imgsz = int(settings["images"]), int(settings["imgsz"])
    args.parent_epochs, args.proxy_epochs = int(settings["parent_epochs"]), int(settings["proxy_epochs"])
    args.seed = int(settings["search_seed"])
    args.reference_seed = reference_search_seed(args.seed)
    args.workdir = args.workdir or default_workdir(args.dataset, args.space)
    args.parent = parent_path(args.workdir, args.dataset, args.images, args.imgsz, args.parent_epochs, args.seed)
    if not args.parent.is_file() or file_sha256(args.parent)[:16] != settings["parent_sha256"]:
        raise SystemExit(
            f"--truth {args.truth}: its parent (sha256 {settings['parent_sha256']}...) is not at {args.parent}; "
            "give the --workdir ground_truth.py trained it in"
        )
    reference_seeds = max((len(runs) for runs in read_truth(args.truth).accuracy["reference"].values()), default=0)
    args.references = f"scratch:{settings['reference_epochs']}x{max(reference_seeds, 2)}"
    args.out = args.out or Path(
        f"benchmarks/results/proxy_fidelity_{args.truth.stem.removeprefix('ground_truth_')}.csv"
    )
    rows = []
    for row in csv.DictReader(args.truth.read_text().splitlines()[1:]):
        reference = row["schedule"] == "reference"
        rows.append(
            {
                "recipe": "reference-scratch" if reference else "joint",
                "fine_tune": "none (from scratch)" if reference else fine_tune_recipe(RECIPES["joint"].fine_tune),
                "epochs": settings["reference_epochs"] if reference else settings["proxy_epochs"],
                "fraction": "1",
                **{name: row[name] for name in ("key", "code", "seed_index", "seed", "map50-95")},
                "by_epoch": "",
                "seconds": row["train_s"],
            }
        )
    return rows


def run_id(row: Mapping[str, str]) -> tuple[str, ...]:
    """What makes two rows the same run: recipe (name and settings), length, images, architecture, seed."""
    return tuple(row[k] for k in ("recipe", "fine_tune", "epochs", "fraction", "key", "seed"))


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """A short hash of the parent's tensors: a resumed CSV must come from the same parent."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].numpy().tobytes())
    return digest.hexdigest()[:16]


def open_table(path: Path, settings: Mapping[str, Any]) -> list[dict[str, str]]:
    """The rows already in ``path`` (measured with the same settings), or a new file with its header line."""
    pairs = " ".join(f"{name}={value}" for name, value in settings.items())
    if path.is_file():
        first, rows = read_rows(path)
        if not first.endswith(pairs):
            raise SystemExit(f"{path} holds runs with other settings ({first}); give another --out")
        return rows
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        f.write(header(settings) + "\n")
        csv.DictWriter(f, fieldnames=FIELDS).writeheader()
    return []


def read_rows(path: Path) -> tuple[str, list[dict[str, str]]]:
    first, *lines = path.read_text().splitlines()
    return first, list(csv.DictReader(lines))


@dataclass(frozen=True)
class Interval:
    """A statistic and its percentile 95 % bootstrap interval."""

    value: float
    low: float
    high: float

    @classmethod
    def of(cls, value: float, draws: np.ndarray) -> Interval:
        """``value`` with the 2.5 and 97.5 percentiles of its bootstrap ``draws`` (draws without a tau skipped)."""
        return cls(value, *percentile_interval(draws.tolist()))

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.value:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def bootstrap_taus(proxies: Sequence[Sequence[float]], reference: Sequence[float], resamples: int) -> np.ndarray:
    """Tau of every proxy against the reference on each resample of the architectures (resamples x proxies).

    All proxies are resampled with the same draws, so the difference between two proxies'
    taus on the same draw is a paired bootstrap of their difference.
    """
    rng = np.random.default_rng(0)
    n = len(reference)
    ref = np.asarray(reference)
    values = [np.asarray(p) for p in proxies]
    draws = np.empty((resamples, len(proxies)))
    for b in range(resamples):
        pick = rng.integers(0, n, n)
        draws[b] = [kendall(v[pick].tolist(), ref[pick].tolist()) for v in values]
    return draws


def half_splits(seed_indices: Sequence[int]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every split of the seeds into two disjoint halves, each once: 4 seeds give 3 splits (2 + 2), 3 give 3 (1 + 2)."""
    size = len(seed_indices) // 2
    halves = list(itertools.combinations(seed_indices, size))
    if 2 * size == len(seed_indices):  # each split would come twice, once from each half
        halves = [half for half in halves if seed_indices[0] in half]
    return [(half, tuple(i for i in seed_indices if i not in half)) for half in halves]


@dataclass(frozen=True)
class Measured:
    """One recipe's final accuracy per seed index, in the order of the architectures, and the seconds it took."""

    name: str
    epochs: int
    fraction: float
    scores: dict[int, list[float]]
    seconds: dict[int, float]

    def mean(self, seed_indices: Sequence[int]) -> list[float]:
        return [statistics.fmean(column) for column in zip(*(self.scores[i] for i in seed_indices), strict=True)]

    def seed_agreement(self) -> float:
        """Mean Kendall tau of one seed's ranking against another's: how reproducible one seed is."""
        pairs = itertools.combinations(self.scores, 2)
        return statistics.fmean(kendall(self.scores[i], self.scores[j]) for i, j in pairs)


def measured(
    rows: Sequence[Mapping[str, str]],
    name: str,
    epochs: int,
    fraction: float,
    seeds: Mapping[int, int],
    keys: Sequence[str],
) -> Measured:
    """The seeds of ``seeds`` for which the CSV holds every architecture of ``keys`` (others left out)."""
    index = {str(seed): i for i, seed in seeds.items()}
    found: dict[int, dict[str, Mapping[str, str]]] = {i: {} for i in seeds}
    for row in rows:
        if row["recipe"] == name and row["epochs"] == str(epochs) and row["seed"] in index:
            found[index[row["seed"]]][row["key"]] = row
    complete = [i for i in seeds if all(k in found[i] for k in keys)]
    return Measured(
        name,
        epochs,
        fraction,
        {i: [float(found[i][k]["map50-95"]) for k in keys] for i in complete},
        {i: math.fsum(float(found[i][k]["seconds"]) for k in keys) for i in complete},
    )


def analyse(
    args: argparse.Namespace,
    rows: list[dict[str, str]],
    candidates: list[Candidate],
    recipes: Mapping[str, Recipe],
    seeds: Mapping[int, int],
    reference: Reference,
) -> None:
    """Print the reference and its ceiling, each recipe's tau with its interval and compute, and the differences."""
    reference_seeds = {i: training_seed(args.reference_seed, i) for i in range(reference.seeds)}
    done = {
        (r["key"], r["seed"])
        for r in rows
        if r["recipe"] == reference.row_name and r["epochs"] == str(reference.epochs)
    }
    keys = [c.key for c in candidates if all((c.key, str(s)) in done for s in reference_seeds.values())]
    if len(keys) < 3:
        print(f"\nreference {reference.name}: {len(keys)} architectures have all its seeds in {args.out}; run it first")
        return
    truth_runs = measured(rows, reference.row_name, reference.epochs, 1.0, reference_seeds, keys)
    code = {c.key: c.code for c in candidates}
    truth = truth_runs.mean(list(reference_seeds))
    reference_seconds = math.fsum(truth_runs.seconds.values())
    show_reference(args, reference, truth_runs, truth, [code[k] for k in keys])

    runs = [measured(rows, n, args.proxy_epochs * r.epochs_scale, r.fraction, seeds, keys) for n, r in recipes.items()]
    columns: list[tuple[Measured, str, list[float], float]] = []  # recipe, which seeds, scores, seconds
    for run in runs:
        if not run.scores:
            print(f"{run.name}: no seed with every architecture in {args.out}")
            continue
        columns += [(run, f"seed {i}", run.scores[i], run.seconds[i]) for i in run.scores]
        if len(run.scores) > 1:
            columns.append((run, f"mean of {len(run.scores)}", run.mean(list(run.scores)), sum(run.seconds.values())))
    draws = bootstrap_taus([c[2] for c in columns], truth, args.bootstrap)
    taus = [Interval.of(kendall(c[2], truth), draws[:, j]) for j, c in enumerate(columns)]
    reference_work = reference.epochs * reference.seeds
    titles = ("recipe", "seeds", "Kendall tau [95% interval]", "Spearman", "compute", "vs reference", "image-epochs")
    print("{:<18} {:<10} {:>27} {:>9} {:>9} {:>13} {:>13}".format(*titles))
    for (run, label, values, spent), tau in zip(columns, taus, strict=True):
        work = run.epochs * run.fraction * (len(run.scores) if label.startswith("mean") else 1) / reference_work
        print(
            f"{run.name:<18} {label:<10} {tau!s:>27} {spearman(values, truth):>9.3f} {spent:>8.0f}s "
            f"{spent / reference_seconds:>12.3f}x {work:>12.3f}x"
        )
    label = f"mean of {reference.seeds}"
    print(f"{reference.row_name:<18} {label:<10} {'':>27} {'':>9} {reference_seconds:>8.0f}s {1:>12.3f}x {1:>12.3f}x")
    for run in runs:
        if len(run.scores) > 1:
            print(f"{run.name}: one proxy seed against another, tau {run.seed_agreement():+.3f} on average")
    baseline = {label: j for j, (run, label, _, _) in enumerate(columns) if run.name == "joint"}
    for j, (run, label, _, _) in enumerate(columns):
        if run.name != "joint" and label in baseline:
            k = baseline[label]
            difference = Interval.of(taus[j].value - taus[k].value, draws[:, j] - draws[:, k])
            print(f"tau of {run.name} minus tau of joint, {label}: {difference} (paired bootstrap)")
    print(f"(bootstrap: {args.bootstrap} resamples of the {len(keys)} architectures, percentile 95 % interval)")


def show_reference(
    args: argparse.Namespace, reference: Reference, runs: Measured, truth: list[float], codes: list[str]
) -> None:
    """Each architecture's reference accuracy (mean, spread over seeds) and the ceiling: half the seeds against half."""
    splits = half_splits(list(runs.scores))
    ceilings = [kendall(runs.mean(a), runs.mean(b)) for a, b in splits]
    how = "inherited epochs (recipe joint)" if reference.inherits else "epochs from scratch"
    print(
        f"\nreference {reference.name}: {len(codes)} architectures of {args.space}, {reference.epochs} {how}, "
        f"mean of {reference.seeds} seeds (training_seed({args.reference_seed}, i)); figures in {args.out}"
    )
    spreads = [statistics.stdev(column) for column in zip(*runs.scores.values(), strict=True)]
    for code, mean, spread in sorted(zip(codes, truth, spreads, strict=True), key=lambda t: -t[1]):
        print(f"  {code:<12} {mean:.4f} (sd {spread:.4f} over seeds)")
    print(
        f"reference ceiling: tau between the means of two halves of its seeds ({len(splits[0][0])} + "
        f"{len(splits[0][1])}, all {len(splits)} splits) {statistics.fmean(ceilings):+.3f} "
        f"(each: {', '.join(f'{c:+.3f}' for c in ceilings)}); "
        f"one seed against another {runs.seed_agreement():+.3f}"
    )


if __name__ == "__main__":
    main()
