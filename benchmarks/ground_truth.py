"""The true table of a small space: every architecture trained with several seeds, as a proxy and as a reference.

On an enumerable search space and one of the built-in datasets (``shapes``: ``yolov8n_small``,
16 architectures, 128 images; ``context``: ``yolov8n_p3``, 25 architectures, 1,024 images,
mosaic off), this trains a parent once (the base model, as ``ge-nas search --parent-epochs``
does), then for every architecture and seed:

* ``proxy``: the search's own proxy, inheriting the parent's weights and fine-tuned for a few
  epochs with the shipped recipe (what an exploring or confirmation trial measures);
* ``reference``: the schedule the proxy stands in for, by default a from-scratch training long
  enough for new units to learn (``--reference-epochs``, Ultralytics' own recipe); 0 skips it,
  and the proxy's seeds are then the only truth (the shapes table of earlier versions).

Proxy seed ``s`` trains with :func:`ge_nas.search.config.training_seed` ``(--seed, s)``,
exactly the seed a search with that ``--seed`` gives the ``s``-th run of an architecture, so a
replay (``search_efficiency.py``) can read a search's confirmation seeds from the table.
Reference seed ``s`` trains with ``training_seed(--seed + 1, s)``: no reference shares a seed
(data order, augmentation, new units' initialisation) with a proxy, whose noise would then
agree with the truth's by construction and flatter the proxy's fidelity.

Runs go seed by seed over every architecture, the reference (the truth) before the proxy.
Each run appends one row to the CSV as soon as it ends, so a crash keeps what finished, and
running the same command again resumes: it trains only the runs the table lacks (under the
same settings and parent; anything else is refused). ``--shard K/N`` takes every N-th run from the
K-th (of all runs, done or not), so N processes (started once the parent exists) fill one table side by
side: Ultralytics trains on one CPU thread on a 2-core machine. It prints the true front, the
noise floor (the baseline's seed spread), each architecture's gain over the baseline paired by
seed, and the premise check: does the best placement beat the baseline by 3 times the spread?
Run from the repository root:

    python benchmarks/ground_truth.py --dataset context   # benchmarks/results/ground_truth_context_yolov8n_p3.csv
    python benchmarks/ground_truth.py --dataset context --shard 1/2   # a second process beside the first
    python benchmarks/ground_truth.py --tiny              # a smoke run: 3 architectures, tiny data
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import os
import shutil
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from report import header, percentile_interval

from ge_nas.data.synthetic import make_synthetic_dataset
from ge_nas.ranking.correlation import kendall
from ge_nas.ranking.intervals import mean_interval, paired_gain
from ge_nas.ranking.pareto import nondominated_fronts, to_minimization
from ge_nas.search.config import DEMO, ProxySettings, file_sha256, training_seed
from ge_nas.space.candidate import BASELINE_KEY, Candidate
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import SearchSpace, load_space
from ge_nas.yolo.costs import count_gflops
from ge_nas.yolo.inheritance import Inheritance, load_parent_state
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.training import train_parent, train_proxy

# One row per run: architecture, schedule, seed; accuracy names are the study objectives' names.
FIELDS = ("key", "code", "units", "schedule", "seed_index", "seed", "map50-95", "map50", "gflops", "params", "train_s")
SCHEDULES = ("proxy", "reference")
ACCURACY = "map50-95"


@dataclass(frozen=True)
class Defaults:
    """A dataset's table: its space, data size and schedules (each can be overridden on the command line)."""

    space: str
    images: int  # training images; validation: a quarter
    parent_epochs: int
    reference_epochs: int  # 0: no reference, the proxy's seeds are the truth
    seeds: int  # of every reference
    mosaic: bool  # Ultralytics' mosaic augmentation, in every run of the table


# shapes: the demo's data, where GE changes little. context: the band scenes, whose cue a model
# cut at stride 8 (yolov8n_p3) cannot see; with 1,024 images and 20 epochs from scratch, mosaic
# off, the cut model stays at chance (0.33) and one global GE unit reaches 0.85 (pilot, one seed
# each; at 512 images or fewer no model learned the class). Its parent needs about 40 epochs to
# localise the objects.
DEFAULTS = {
    "shapes": Defaults("yolov8n_small", 128, DEMO.parent_epochs, 0, 1, mosaic=True),
    "context": Defaults("yolov8n_p3", 1024, 40, 20, 3, mosaic=False),
}
# The premise: the best placement's mean gain over the baseline, in baseline seed spreads.
PREMISE_RATIO = 3.0
BOOTSTRAP = 2000  # resamples of the architectures for a tau's interval
# How reference runs are seeded, as the table's settings line records it (see the module's notes).
REFERENCE_SEEDS = "search_seed+1"


@dataclass(frozen=True)
class Truth:
    """A table read back: per architecture, its costs and its accuracies by schedule and seed index."""

    settings: dict[str, str]  # the table's first line, ``name=value`` (see :func:`settings_of`)
    codes: dict[str, str]
    gflops: dict[str, float]
    accuracy: dict[str, dict[str, dict[int, float]]]  # schedule -> key -> seed index -> map50-95

    @property
    def keys(self) -> list[str]:
        return list(self.codes)

    @property
    def truth_schedule(self) -> str:
        """What the truth is: the reference as soon as the table has one run of it, else the proxy's seeds."""
        return "reference" if self.accuracy["reference"] else "proxy"

    def ran(self, schedule: str | None = None) -> list[str]:
        """The architectures with at least one run under ``schedule`` (default: the truth's), in table order."""
        runs = self.accuracy[schedule or self.truth_schedule]
        return [key for key in self.keys if runs.get(key)]

    def seeds(self, schedule: str) -> int:
        """Seeds every architecture has under ``schedule`` (0 when some architecture has none)."""
        return len(self.seed_indices(schedule))

    def seed_indices(self, schedule: str) -> list[int]:
        """The seed indices every architecture has a run of under ``schedule``."""
        runs = self.accuracy[schedule]
        return sorted(set.intersection(*(set(runs.get(key, {})) for key in self.keys))) if self.keys else []

    def mean(self, key: str, schedule: str | None = None) -> float:
        return statistics.fmean(self.accuracy[schedule or self.truth_schedule][key].values())

    def means(self, without_seed: int | None = None) -> dict[str, float]:
        """Every architecture's true accuracy, the mean over the truth's seeds.

        ``without_seed``: when the truth is the proxy's own seeds, leave that seed out, so a
        proxy seed compared with it is not compared with itself (a reference truth is kept whole).
        """
        drop = without_seed if self.truth_schedule == "proxy" else None
        runs = self.accuracy[self.truth_schedule]
        return {key: statistics.fmean(v for s, v in runs[key].items() if s != drop) for key in self.ran()}

    def front(self) -> set[str]:
        """The true front: architectures non-dominated on (true mean accuracy, GFLOPs), among those that ran."""
        return front_of(self.means(), self.gflops, self.ran())


def front_of(accuracy: dict[str, float], gflops: dict[str, float], keys: Sequence[str]) -> set[str]:
    """The keys non-dominated on (``accuracy``, maximised; ``gflops``, minimised)."""
    points = to_minimization(np.array([[accuracy[k], gflops[k]] for k in keys]), ["maximize", "minimize"])
    return {key for key, front in zip(keys, nondominated_fronts(points).tolist(), strict=True) if front == 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DEFAULTS), default="shapes", help="built-in dataset kind")
    parser.add_argument("--space", help="default: yolov8n_small for shapes, yolov8n_p3 for context")
    parser.add_argument("--images", type=int, help="training images (validation: a quarter); 128 shapes, 1024 context")
    parser.add_argument("--imgsz", type=int, default=DEMO.imgsz)
    parser.add_argument("--epochs", type=int, default=DEMO.epochs, help="proxy epochs (inherited fine-tune)")
    parser.add_argument("--parent-epochs", type=int, help="default: 20 for shapes, 40 for context")
    parser.add_argument("--reference-epochs", type=int, help="from scratch; 0: none (default: 0 shapes, 20 context)")
    parser.add_argument("--seeds", type=int, help="seeds of every reference (default: 1 shapes, 3 context)")
    parser.add_argument("--proxy-seeds", type=int, help="seeds of every proxy (default: --seeds, at least 5)")
    parser.add_argument("--seed", type=int, default=0, help="the search seed whose training seeds the table holds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=0, help="only the first N architectures (default: all)")
    parser.add_argument("--shard", default="0/1", help="K/N: every N-th run from the K-th (0-based)")
    parser.add_argument("--workdir", type=Path, help="parent.pt and run folders (default: studies/ground-truth-...)")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/ground_truth_<dataset>_<space>.csv")
    parser.add_argument("--tiny", action="store_true", help="smoke run: 8 images at 64 px, 1 epoch, 3 architectures")
    parser.add_argument("--summary", action="store_true", help="print the table's figures as they stand; train nothing")
    args = parser.parse_args()
    defaults = DEFAULTS[args.dataset]
    args.space = args.space or defaults.space
    args.images = args.images or defaults.images
    args.parent_epochs = defaults.parent_epochs if args.parent_epochs is None else args.parent_epochs
    args.reference_epochs = defaults.reference_epochs if args.reference_epochs is None else args.reference_epochs
    args.seeds = args.seeds or defaults.seeds
    shard, shards = _shard(args.shard)
    if args.tiny:
        args.images, args.imgsz, args.epochs, args.parent_epochs, args.limit = 8, 64, 1, 1, 3
        args.reference_epochs, args.seeds = min(args.reference_epochs, 1), min(args.seeds, 2)
    # A search confirms with up to 5 seeds (MAX_SEEDS); proxies are cheap, so the table holds
    # that many unless told otherwise, and a replay can confirm as the shipped search does.
    args.proxy_seeds = args.proxy_seeds or (args.seeds if args.tiny else max(args.seeds, 5))
    space = load_space(args.space)
    name = f"{args.dataset}_{space.name}"
    out = args.out or Path(f"benchmarks/results/ground_truth_{name}.csv")
    if args.summary:
        summarise(read_truth(out))
        return
    workdir = args.workdir or default_workdir(args.dataset, space.name)
    data_yaml = make_synthetic_dataset(
        workdir / "data", n_train=args.images, n_val=max(2, args.images // 4), imgsz=args.imgsz, kind=args.dataset
    )
    proxy = ProxySettings(
        epochs=args.epochs, imgsz=args.imgsz, batch=16, device=args.device, seed=args.seed, mosaic=defaults.mosaic
    )
    candidates = list(space.enumerate())[: args.limit or None]
    start = time.perf_counter()
    parent = parent_path(workdir, args.dataset, args.images, args.imgsz, args.parent_epochs, args.seed)
    if not parent.is_file():
        if shard:
            raise SystemExit(
                f"--shard {args.shard}: the parent is not trained yet; start shard 0 first, this one after"
            )
        _train_parent(space, data_yaml, proxy, args.parent_epochs, parent)
    # What decides each run's result; how many architectures and seeds a table holds is not a
    # setting, so a finished table can be extended with more seeds by running again with --seeds.
    settings = {
        "dataset": args.dataset,
        "space": space.name,
        "images": args.images,
        "imgsz": args.imgsz,
        "proxy_epochs": args.epochs,
        "proxy": "inherited_shipped_fine_tune",
        "parent_epochs": args.parent_epochs,
        "parent_sha256": file_sha256(parent)[:16],
        "reference_epochs": args.reference_epochs,
        "reference": "from_scratch_ultralytics_recipe" if args.reference_epochs else "none",
        **({"reference_seeds": REFERENCE_SEEDS} if args.reference_epochs else {}),
        "batch": 16,
        "search_seed": args.seed,
        **({} if defaults.mosaic else {"mosaic": "off"}),  # only when off: tables made before it resume
    }
    table = _Table(out, settings)
    print(
        f"{len(candidates)} of {space.size} architectures of {space.name} on the {args.dataset} data; "
        f"{len(table.done)} runs already in {out}; parent, data and runs in {workdir}"
    )
    state = load_parent_state(parent)
    # Shards split the whole list, not what is missing: a shard started after another one ran
    # still takes only its own runs.
    runs = list(_runs(candidates, args.proxy_seeds, args.seeds if args.reference_epochs else 0))[shard::shards]
    for run in (run for run in runs if (run.candidate.key, run.schedule, run.seed_index) not in table.done):
        epochs = args.epochs if run.schedule == "proxy" else args.reference_epochs
        search_seed = reference_search_seed(args.seed) if run.schedule == "reference" else args.seed
        seed = training_seed(search_seed, run.seed_index)
        settings_of_run = dataclasses.replace(proxy, epochs=epochs, seed=seed)
        inherited = state if run.schedule == "proxy" else None
        table.append(_train(space, run, data_yaml, settings_of_run, workdir, inherited))
    print(
        f"{len(candidates)} architectures x ({args.proxy_seeds} proxy + "
        f"{args.seeds if args.reference_epochs else 0} reference seeds) in {out}; "
        f"{time.perf_counter() - start:.0f}s this run (runs already there not counted)"
    )
    summarise(read_truth(out))


@dataclass(frozen=True)
class _Run:
    candidate: Candidate
    schedule: str
    seed_index: int


def _runs(candidates: Sequence[Candidate], proxy_seeds: int, reference_seeds: int) -> Iterator[_Run]:
    """Seed by seed, each seed over every architecture, the reference (the truth) before the proxy.

    A partial table is balanced across architectures, and after the first seed of both it
    already gives a first (one-seed) read of the proxy's fidelity.
    """
    for seed_index in range(max(proxy_seeds, reference_seeds)):
        for schedule, seeds in (("reference", reference_seeds), ("proxy", proxy_seeds)):
            if seed_index < seeds:
                yield from (_Run(candidate, schedule, seed_index) for candidate in candidates)


def _shard(text: str) -> tuple[int, int]:
    """``K/N`` as (K, N), refused unless 0 <= K < N."""
    try:
        shard, shards = (int(part) for part in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard {text}: give K/N, e.g. 0/2 and 1/2 for two processes") from None
    if not 0 <= shard < shards:
        raise SystemExit(f"--shard {text}: K counts from 0 to N-1, e.g. 0/2 and 1/2 for two processes")
    return shard, shards


def reference_search_seed(search_seed: int) -> int:
    """The search seed whose training seeds the reference runs use (:data:`REFERENCE_SEEDS`)."""
    return search_seed + 1


def default_workdir(dataset: str, space: str) -> Path:
    """Where a table's parent, data and runs live unless ``--workdir`` says otherwise."""
    return Path("studies") / f"ground-truth-{dataset}_{space}"


def parent_path(workdir: Path, dataset: str, images: int, imgsz: int, epochs: int, seed: int) -> Path:
    """The parent checkpoint a table with these settings trains once and every later run reuses."""
    return workdir / f"parent-{dataset}-{images}img" / f"parent-{imgsz}px-{epochs}ep-seed{seed}.pt"


def settings_of(path: Path) -> dict[str, str]:
    """A table's settings, as its first line names them (``name=value`` after the date and versions)."""
    return _settings_in(path.read_text().split("\n", 1)[0])


def _settings_in(line: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in line.split() if "=" in token)


def _train_parent(space: SearchSpace, data_yaml: Path, proxy: ProxySettings, epochs: int, parent: Path) -> None:
    """Train the base model ``epochs`` once into ``parent`` (a resumed table with these settings reuses it)."""
    print(f"training the parent (the base model) for {epochs} epochs")
    base_yaml = generate_model_yaml(space, Candidate.baseline()).write(parent.parent / "parent" / "model.yaml")
    shutil.copyfile(train_parent(base_yaml, data_yaml, proxy, epochs, parent.parent), parent)
    print(f"parent ready: {parent}")


def _train(
    space: SearchSpace,
    run: _Run,
    data_yaml: Path,
    settings: ProxySettings,
    workdir: Path,
    parent_state: dict[str, torch.Tensor] | None,
) -> dict[str, Any]:
    """Train one run (inheriting ``parent_state``, or from scratch without it) and return its table row."""
    generated = generate_model_yaml(space, run.candidate)
    folder = workdir / f"{run.schedule}-{run.seed_index}-{run.candidate.code.replace(' ', '_')}"
    model_yaml = generated.write(folder / "model.yaml")
    model = build_model(generated.model)
    start = time.perf_counter()
    inheritance = Inheritance(parent_state, generated.index_map) if parent_state is not None else None
    history = train_proxy(model_yaml, data_yaml, settings, folder, inheritance=inheritance)
    seconds = time.perf_counter() - start
    shutil.rmtree(folder, ignore_errors=True)
    row = {
        "key": run.candidate.key,
        "code": run.candidate.code,
        "units": run.candidate.units,
        "schedule": run.schedule,
        "seed_index": run.seed_index,
        "seed": settings.seed,
        "map50-95": history[-1]["map50-95"],
        "map50": history[-1]["map50"],
        "gflops": count_gflops(model, settings.imgsz),
        "params": sum(p.numel() for p in model.parameters()),
        "train_s": seconds,
    }
    print(f"{run.schedule:<9} seed {run.seed_index} {run.candidate.code:<10} {row[ACCURACY]:.4f}  {seconds:.0f}s")
    return row


class _Table:
    """The results CSV, appended one run at a time; resumed only under the same settings."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        settings_text = " ".join(f"{name}={value}" for name, value in settings.items())
        if not path.is_file():
            columns = io.StringIO()
            csv.DictWriter(columns, fieldnames=FIELDS).writeheader()
            _create(path, header(settings) + "\n" + columns.getvalue())
        first = path.read_text().splitlines()[0]
        if not first.endswith("; " + settings_text):
            raise SystemExit(f"{path} was made with other settings ({first}); give another --out or the same options")
        with path.open() as f:
            next(f)
            self.done = {(r["key"], r["schedule"], int(r["seed_index"])) for r in csv.DictReader(f)}

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=FIELDS).writerow(
                {k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()}
            )


def _create(path: Path, text: str) -> None:
    """Write ``path`` whole unless it exists: shards started together create the table once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.write_text(text)
    try:
        os.link(draft, path)  # atomic, and refused if another shard created it first
    except FileExistsError:
        pass
    finally:
        draft.unlink()


def read_truth(path: Path) -> Truth:
    """A table written by this script (first line: its settings): one row per run, or, in tables of
    earlier versions, one row per architecture (its proxy seed 0)."""
    lines = path.read_text().splitlines()
    codes: dict[str, str] = {}
    gflops: dict[str, float] = {}
    accuracy: dict[str, dict[str, dict[int, float]]] = {schedule: {} for schedule in SCHEDULES}
    for row in csv.DictReader(lines[1:]):
        codes.setdefault(row["key"], row["code"])
        gflops[row["key"]] = float(row["gflops"])
        schedule, seed_index = row.get("schedule", "proxy"), int(row.get("seed_index", 0))
        accuracy[schedule].setdefault(row["key"], {})[seed_index] = float(row[ACCURACY])
    return Truth(_settings_in(lines[0]), codes, gflops, accuracy)


def summarise(truth: Truth) -> None:
    """Print every architecture's accuracies, paired gains, the true front and the premise check."""
    schedule = truth.truth_schedule
    base = truth.accuracy[schedule].get(BASELINE_KEY)
    front = truth.front()
    ran = truth.ran()
    counts = sorted({len(truth.accuracy[schedule][key]) for key in ran})
    print(
        f"\ntruth: the {schedule}, {'-'.join(map(str, counts))} seeds each, {len(ran)} of {len(truth.keys)} "
        "architectures so far; front: non-dominated on mean accuracy and GFLOPs"
    )
    print(f"{'code':<10} {'proxy mean':>10} {f'{schedule} mean':>14} {'sd':>7} {'gain (95 % CI, paired)':>28} front")
    rows = sorted(ran, key=lambda key: -truth.mean(key))
    for key in rows:
        runs = truth.accuracy[schedule][key]
        sd = statistics.stdev(runs.values()) if len(runs) > 1 else float("nan")
        gain = paired_gain(runs, base) if base is not None and key != BASELINE_KEY else None
        interval = (
            f"{gain.mean:+.4f} ({gain.low:+.4f} to {gain.high:+.4f})"
            if gain is not None and gain.low is not None
            else (f"{gain.mean:+.4f} (one seed)" if gain is not None else "")
        )
        proxy = truth.mean(key, "proxy") if key in truth.accuracy["proxy"] else float("nan")
        mark = "*" if key in front else ""
        print(f"{truth.codes[key]:<10} {proxy:>10.4f} {truth.mean(key):>14.4f} {sd:>7.4f} {interval:>28} {mark}")
    show_fidelity(truth)
    if base is None or len(base) < 2 or len(rows) < 2:
        print("premise: needs the baseline with at least 2 seeds, and another architecture")
        return
    spread = statistics.stdev(base.values())
    best = rows[0] if rows[0] != BASELINE_KEY else rows[1]
    margin = truth.mean(best) - truth.mean(BASELINE_KEY)
    ratio = margin / spread if spread > 0 else (float("inf") if margin > 0 else 0.0)
    verdict = "holds" if margin > 0 and ratio >= PREMISE_RATIO else "fails"
    noise = mean_interval(list(base.values()))
    print(
        f"premise {verdict}: baseline {noise.mean:.4f} (sd {spread:.4f} over {len(base)} seeds); best placement "
        f"{truth.codes[best]} {truth.mean(best):.4f}, margin {margin:+.4f} = {ratio:.1f}x the baseline's seed spread "
        f"(needs >= {PREMISE_RATIO:g}x)"
    )


def kendall_interval(x: list[float], y: list[float], rng: np.random.Generator) -> tuple[float, float, float]:
    """Kendall's tau-b of ``x`` and ``y`` and its bootstrap 95 % interval (architectures resampled)."""
    tau = kendall(x, y)
    xs, ys, draws = np.array(x), np.array(y), []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(xs), len(xs))
        draws.append(kendall(xs[pick].tolist(), ys[pick].tolist()))  # NaN: the resample ranks nothing
    return tau, *percentile_interval(draws)


def show_fidelity(truth: Truth) -> None:
    """Kendall's tau of the proxy against the truth: its seed-0 runs, and its mean over seeds.

    Over the architectures that have both so far, so a table being built already gives a
    first read (the count says how many, and how many seeds each side has).
    """
    if truth.truth_schedule == "proxy":
        print("proxy fidelity: the table has no reference; the truth is the proxy itself")
        return
    proxy_runs = truth.accuracy["proxy"]
    keys = [key for key in truth.ran() if 0 in proxy_runs.get(key, {})]
    if len(keys) < 3:
        print(f"proxy fidelity: {len(keys)} architectures have a proxy seed 0 and the truth; needs 3")
        return
    true, rng = [truth.mean(key) for key in keys], np.random.default_rng(0)
    seeds = "-".join(map(str, sorted({len(proxy_runs[key]) for key in keys})))
    truth_seeds = "-".join(map(str, sorted({len(truth.accuracy["reference"][key]) for key in keys})))
    columns = [("seed 0 (what exploring trials see)", [proxy_runs[key][0] for key in keys])]
    if seeds != "1":
        columns.append((f"mean over {seeds} seeds", [truth.mean(key, "proxy") for key in keys]))
    for label, proxy in columns:
        tau, low, high = kendall_interval(proxy, true, rng)
        print(
            f"proxy fidelity, {label}: Kendall tau {tau:+.3f} (95 % bootstrap CI {low:+.3f} to {high:+.3f}; "
            f"{len(keys)} architectures, truth over {truth_seeds} reference seeds)"
        )


if __name__ == "__main__":
    main()
