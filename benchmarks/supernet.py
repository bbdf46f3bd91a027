"""Does a supernet rank architectures as well as proxies, and how many more does it score per CPU-hour?

On a ground-truth table (``ground_truth.py``: every architecture of a small space, trained
with several seeds), this trains the space's supernet (``ge-nas search --strategy supernet``'s,
from the same parent, as many times as ``--supernet-seeds``), scores every architecture of the
table with it, and times proxies side by side in the same process. It reports:

* **ranking**: Kendall tau (tau-b) between the supernet's scores and the table's truth (the
  mean over its reference seeds, or over its proxy seeds when it has no reference), against
  the tau of the proxy strategy (one proxy seed, which is what a search explores with). When
  the truth is the proxies' own mean, each proxy seed is compared with the mean of the other
  seeds, and the supernet with those same means, so neither sees its own noise. 95 %
  intervals from a paired bootstrap over architectures;
* **throughput**: architectures scored per CPU-hour (process CPU time, which the machine's
  other load inflates less than wall time): a proxy trains ``--epochs`` inherited epochs; a
  supernet costs its training once, then each candidate a score. Both measure the
  candidate's costs (params, GFLOPs, latency, memory) as a search does;
* **equal compute**: replayed searches given the CPU time the supernet search took. The
  supernet search scores every architecture; the proxy search trains as many as that time
  buys (baseline first, then drawn at random). Each confirms its front's best ``--confirm``
  candidates with the table's proxy seeds and picks the best; reported: the share of the true
  front on its own front (hit rate) and the regret (true accuracy of the space's best minus
  its pick's).

Run from the repository root:

    python benchmarks/supernet.py --table benchmarks/results/ground_truth_context_yolov8n_p3.csv \\
        --weights studies/ground-truth-context_yolov8n_p3/parent-context-1024img/parent-128px-40ep-seed0.pt
    python benchmarks/supernet.py --table benchmarks/results/ground_truth_shapes_yolov8n_small.csv \\
        --weights studies/ground-truth-shapes_yolov8n_small/parent-shapes-128img/parent-128px-20ep-seed0.pt
    python benchmarks/supernet.py --tiny      # a made-up table of 3 architectures, tiny data: a smoke run
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ground_truth import ACCURACY, Truth, front_of, read_truth
from report import percentile_interval, write_table

from ge_nas.data.synthetic import KINDS, make_synthetic_dataset
from ge_nas.ranking.correlation import kendall
from ge_nas.search.config import CALIBRATION_BATCHES, CONFIRM, DEMO, SUPERNET_EPOCHS, ProxySettings, training_seed
from ge_nas.space.candidate import BASELINE_KEY, Candidate
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import SearchSpace, load_space
from ge_nas.yolo.costs import Cost, CostMeter
from ge_nas.yolo.inheritance import Inheritance, load_parent_state
from ge_nas.yolo.latency import LATENCY_ROUNDS_SHOWN_ONLY
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.supernet import SupernetScorer, train_space_supernet
from ge_nas.yolo.training import train_parent, train_proxy

BOOTSTRAP = 2000
REPLAYS = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, help="ground-truth CSV (ground_truth.py's, long or the older wide form)")
    parser.add_argument("--data", type=Path, help="the table's dataset YAML (default: the built-in data it names)")
    parser.add_argument("--weights", type=Path, help="the table's parent checkpoint (default: train one like it)")
    parser.add_argument("--supernet-epochs", type=int, default=SUPERNET_EPOCHS)
    parser.add_argument("--calibration-batches", type=int, default=CALIBRATION_BATCHES)
    parser.add_argument("--supernet-seeds", type=int, default=2, help="supernets trained, each with its own seed")
    parser.add_argument("--proxies", type=int, default=3, help="proxies trained here to time them side by side")
    parser.add_argument("--confirm", type=int, default=CONFIRM, help="front candidates a replayed search confirms")
    parser.add_argument("--workdir", type=Path, help="parent, supernets and runs (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/supernet_<table name>.csv")
    parser.add_argument("--tiny", action="store_true", help="smoke run: a made-up table of 3 architectures, tiny data")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ge-nas-supernet-"))
    if args.tiny:
        args.supernet_epochs, args.supernet_seeds, args.proxies, args.calibration_batches = 1, 1, 1, 1
        space = load_space("yolov8n_small")
        table = made_up_table(space)
        settings = {"images": 8, "imgsz": 64, "parent_epochs": 1, "epochs": 1, "batch": 4, "mosaic": True}
        out = args.out or workdir / "supernet.csv"
    else:
        if args.table is None or not args.table.is_file():
            raise SystemExit(f"--table {args.table}: give a ground-truth CSV (run benchmarks/ground_truth.py first)")
        table = read_truth(args.table)
        if table.truth_schedule == "proxy" and table.seeds("proxy") < 2:
            raise SystemExit(f"{args.table} has one proxy seed and no reference: its truth would be a proxy's noise")
        space = load_space(table.settings.get("space", "yolov8n_small"))
        settings = {
            "images": int(table.settings.get("images", 128)),
            "imgsz": int(table.settings.get("imgsz", DEMO.imgsz)),
            "parent_epochs": int(table.settings.get("parent_epochs", DEMO.parent_epochs)),
            "epochs": int(table.settings.get("proxy_epochs", DEMO.epochs)),
            "batch": int(table.settings.get("batch", 16)),
            "mosaic": table.settings.get("mosaic") != "off",  # trained as the table was
        }
        out = args.out or Path(f"benchmarks/results/supernet_{args.table.stem.removeprefix('ground_truth_')}.csv")
    data_yaml = args.data or builtin_data(table, settings, workdir)
    proxy = ProxySettings(
        epochs=settings["epochs"], imgsz=settings["imgsz"], batch=settings["batch"], mosaic=settings["mosaic"]
    )
    parent = args.weights or trained_parent(space, data_yaml, proxy, settings["parent_epochs"], workdir)
    keys = list(table.codes)
    print(f"{len(keys)} architectures of {space.name}; truth: {table.truth_schedule}; data {data_yaml}; work {workdir}")

    measured = Measurements()
    parent_state = load_parent_state(parent)
    meter = CostMeter(
        build_model(generate_model_yaml(space, Candidate.baseline()).model),
        proxy.imgsz,
        rounds=LATENCY_ROUNDS_SHOWN_ONLY,  # as a search whose objectives leave latency out
    )
    for key in keys:
        generated = generate_model_yaml(space, Candidate.from_key(key))
        cost = measured.time("cost", key, measure_cost, meter, generated.model, key)
        measured.gflops[key] = cost.gflops
    for n, key in enumerate(keys[: args.proxies]):
        generated = generate_model_yaml(space, Candidate.from_key(key))
        model_yaml = generated.write(workdir / "proxies" / f"{n}" / "model.yaml")
        inheritance = Inheritance(parent_state, generated.index_map)
        measured.time(
            "proxy", key, train_proxy, model_yaml, data_yaml, proxy, model_yaml.parent, None, False, inheritance
        )
    for j in range(args.supernet_seeds):
        seeded = ProxySettings(**{**vars(proxy), "seed": training_seed(0, j)})
        folder = workdir / f"supernet-{j}"
        checkpoint = measured.time(
            "supernet",
            str(j),
            train_space_supernet,
            space,
            data_yaml,
            seeded,
            args.supernet_epochs,
            folder,
            parent_state,
        )
        score = scoring(SupernetScorer(checkpoint, data_yaml, seeded, args.calibration_batches), space)
        for key in keys:
            measured.scores.setdefault(j, {})[key] = measured.time("score", f"{j}:{key}", score, key)
        print(f"supernet {j}: " + ", ".join(f"{table.codes[k]} {measured.scores[j][k]:.4f}" for k in keys))

    summary = summarise(table, measured, args.confirm, args.supernet_epochs)
    header_settings = {
        "table": (args.table.name if args.table else "made-up"),
        "truth": table.truth_schedule,
        "space": space.name,
        "architectures": len(keys),
        "images": settings["images"],
        "imgsz": settings["imgsz"],
        "proxy_epochs": settings["epochs"],
        "supernet_epochs": args.supernet_epochs,
        "supernet_seeds": args.supernet_seeds,
        "calibration_batches": args.calibration_batches,
        "timed_proxies": args.proxies,
        "confirm": args.confirm,
        "bootstrap": BOOTSTRAP,
        "replays": REPLAYS,
    }
    write_table(out, header_settings, SUMMARY_FIELDS, summary)
    rows = architecture_rows(table, measured)
    write_table(out.with_name(out.stem + "_architectures.csv"), header_settings, list(rows[0]), rows)
    print(f"figures written to {out} and {out.with_name(out.stem + '_architectures.csv')}")


def measure_cost(meter: CostMeter, model_yaml: dict[str, Any], key: str) -> Cost:
    """A candidate's costs as a search's trial measures them: its model built, then measured."""
    return meter.measure(build_model(model_yaml), key)


def scoring(scorer: SupernetScorer, space: SearchSpace) -> Callable[[str], float]:
    """The supernet's score of an architecture key, as a supernet search's trial reads it."""

    def score(key: str) -> float:
        candidate = Candidate.from_key(key)
        return scorer.validate(scorer.candidate_model(candidate, generate_model_yaml(space, candidate).model))[ACCURACY]

    return score


@dataclass
class Measurements:
    """What this run measured: CPU and wall seconds per step, the supernets' scores, GFLOPs."""

    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # step -> item -> CPU seconds
    wall: dict[str, dict[str, float]] = field(default_factory=dict)
    scores: dict[int, dict[str, float]] = field(default_factory=dict)  # supernet seed -> key -> score
    gflops: dict[str, float] = field(default_factory=dict)

    def time(self, step: str, item: str, run: Callable[..., Any], *args: Any) -> Any:
        """Run ``run(*args)`` and keep its CPU time (this process, every thread) and wall time."""
        cpu, wall = time.process_time(), time.perf_counter()
        result = run(*args)
        self.cpu.setdefault(step, {})[item] = time.process_time() - cpu
        self.wall.setdefault(step, {})[item] = time.perf_counter() - wall
        return result

    def mean(self, step: str, clock: str = "cpu") -> float:
        return statistics.fmean((self.cpu if clock == "cpu" else self.wall)[step].values())


SUMMARY_FIELDS = ("metric", "strategy", "value", "low", "high", "note")


def summarise(table: Truth, measured: Measurements, confirm: int, supernet_epochs: int) -> list[dict[str, Any]]:
    """Print and return the figures: ranking (tau with intervals), throughput, and search at equal compute."""
    rows: list[dict[str, Any]] = []
    keys = list(table.codes)
    seeds = table.seed_indices("proxy")
    truths = {s: table.means(without_seed=s) for s in seeds}
    proxy_scores = {s: {k: table.accuracy["proxy"][k][s] for k in keys} for s in seeds}
    print(f"\nKendall tau against the truth ({table.truth_schedule}, mean over its seeds), {len(keys)} architectures:")
    tau = paired_bootstrap(keys, proxy_scores, measured.scores, truths)
    for name, (value, low, high) in tau.items():
        print(f"  {name:<28} {value:+.3f}  (95 % CI {low:+.3f} to {high:+.3f})")
        rows.append({"metric": "kendall_tau", "strategy": name, "value": value, "low": low, "high": high, "note": ""})
    for j, scores in measured.scores.items():
        value = statistics.fmean(kendall_over(scores, truths[s], keys) for s in seeds)
        rows.append({"metric": "kendall_tau", "strategy": f"supernet seed {j}", "value": value, "note": ""})
        print(f"  supernet seed {j:<14} {value:+.3f}")
    proxy_seed_taus = [kendall_over(proxy_scores[s], truths[s], keys) for s in seeds]
    for s, value in zip(seeds, proxy_seed_taus, strict=True):
        rows.append({"metric": "kendall_tau", "strategy": f"proxy seed {s}", "value": value, "note": ""})

    n = len(keys)
    proxy_s = measured.mean("proxy") + measured.mean("cost")
    score_s = measured.mean("score") + measured.mean("cost")
    supernet_s = measured.mean("supernet")
    per_hour = {
        "proxy": 3600 / proxy_s,
        "supernet, per candidate (supernet trained)": 3600 / score_s,
        f"supernet, {n} candidates (its training included)": 3600 * n / (supernet_s + n * score_s),
        "supernet, 1000 candidates (its training included)": 3600 * 1000 / (supernet_s + 1000 * score_s),
        "supernet score without costs": 3600 / measured.mean("score"),
        "proxy training without costs": 3600 / measured.mean("proxy"),
    }
    print("\narchitectures per CPU-hour (CPU seconds of this process, measured side by side):")
    for name, value in per_hour.items():
        ratio = value / per_hour["proxy"]
        print(f"  {name:<50} {value:>9.0f}  ({ratio:.1f}x proxies)")
        rows.append({"metric": "architectures_per_cpu_hour", "strategy": name, "value": value, "note": f"{ratio:.2f}x"})
    seconds = {
        "proxy_train_cpu_s": measured.mean("proxy"),
        "cost_cpu_s": measured.mean("cost"),
        "score_cpu_s": measured.mean("score"),
        "supernet_train_cpu_s": supernet_s,
        "proxy_train_wall_s": measured.mean("proxy", "wall"),
        "score_wall_s": measured.mean("score", "wall"),
        "supernet_train_wall_s": measured.mean("supernet", "wall"),
    }
    print("  " + ", ".join(f"{name} {value:.2f}" for name, value in seconds.items()))
    rows += [{"metric": name, "strategy": "", "value": value, "note": ""} for name, value in seconds.items()]

    budget = supernet_s + n * score_s
    explored = max(1, min(n, math.floor(budget / proxy_s)))
    print(
        f"\nsearches at equal compute ({budget:.0f} CPU s: the supernet scores all {n}, proxies buy {explored}); "
        f"each confirms {confirm} front candidates with the table's {len(seeds)} proxy seeds:"
    )
    outcomes = replay(table, measured, keys, explored, confirm, seeds)
    for name, values in outcomes.items():
        for metric in ("hit_rate", "regret"):
            sample = [v[metric] for v in values]
            low, high = percentile_interval(sample)
            mean = statistics.fmean(sample)
            print(f"  {name:<8} {metric:<9} {mean:.3f}  (over {len(sample)} searches: {low:.3f} to {high:.3f})")
            note = f"{len(sample)} replays; 2.5-97.5 percentiles" if len(sample) > 1 else "1 replay"
            rows.append({"metric": metric, "strategy": name, "value": mean, "low": low, "high": high, "note": note})
    return rows


def kendall_over(scores: dict[str, float], truth: dict[str, float], keys: Sequence[str]) -> float:
    """Kendall's tau of ``scores`` against ``truth`` over ``keys``; NaN when either ranks nothing (all equal)."""
    return kendall([scores[k] for k in keys], [truth[k] for k in keys])


def paired_bootstrap(
    keys: list[str],
    proxy_scores: dict[int, dict[str, float]],
    supernet_scores: dict[int, dict[str, float]],
    truths: dict[int, dict[str, float]],
) -> dict[str, tuple[float, float, float]]:
    """Mean tau of each strategy (over its seeds and the held-out truths) and their difference, with bootstrap CIs."""

    def taus(sample: list[str]) -> tuple[float, float]:
        proxy = statistics.fmean(kendall_over(proxy_scores[s], truths[s], sample) for s in truths)
        supernet = statistics.fmean(
            kendall_over(scores, truths[s], sample) for scores in supernet_scores.values() for s in truths
        )
        return proxy, supernet

    rng = random.Random(0)
    point = taus(keys)
    draws = [taus([rng.choice(keys) for _ in keys]) for _ in range(BOOTSTRAP)]
    results = {}
    for i, name in enumerate(("proxy (one seed)", "supernet")):
        low, high = percentile_interval([d[i] for d in draws])
        results[name] = (point[i], low, high)
    low, high = percentile_interval([d[1] - d[0] for d in draws])
    results["supernet minus proxy"] = (point[1] - point[0], low, high)
    return results


def replay(
    table: Truth, measured: Measurements, keys: list[str], explored: int, confirm: int, seeds: list[int]
) -> dict[str, list[dict[str, float]]]:
    """Replayed searches: the proxy search many times (architectures and exploring seed drawn), each supernet once."""
    truth = table.means()
    front = front_of(truth, measured.gflops, keys)
    best = max(truth[k] for k in keys)
    confirmation = {k: statistics.fmean(table.accuracy["proxy"][k][s] for s in seeds) for k in keys}

    def outcome(scores: dict[str, float]) -> dict[str, float]:
        ranked = list(scores)
        own_front = front_of(scores, measured.gflops, ranked)
        candidates = sorted((k for k in own_front if k != BASELINE_KEY), key=lambda k: -scores[k])[:confirm]
        pick = max([BASELINE_KEY, *candidates], key=lambda k: confirmation[k])
        return {"hit_rate": len(own_front & front) / len(front), "regret": best - truth[pick]}

    rng = random.Random(0)
    proxy = []
    for _ in range(REPLAYS):
        seed = rng.choice(seeds)
        drawn = [BASELINE_KEY, *rng.sample([k for k in keys if k != BASELINE_KEY], explored - 1)]
        proxy.append(outcome({k: table.accuracy["proxy"][k][seed] for k in drawn}))
    supernet = [outcome(scores) for scores in measured.scores.values()]
    return {"proxy": proxy, "supernet": supernet}


def architecture_rows(table: Truth, measured: Measurements) -> list[dict[str, Any]]:
    """One row per architecture: its truth, proxy seeds, supernet scores, GFLOPs and CPU seconds."""
    truth = table.means()
    rows = []
    for key, code in table.codes.items():
        row: dict[str, Any] = {"key": key, "code": code, "truth": truth[key], "gflops": measured.gflops[key]}
        row.update({f"proxy_seed{s}": table.accuracy["proxy"][key][s] for s in table.seed_indices("proxy")})
        row.update({f"supernet{j}": scores[key] for j, scores in measured.scores.items()})
        row["cost_cpu_s"] = measured.cpu["cost"][key]
        scored = [v for item, v in measured.cpu["score"].items() if item.split(":", 1)[1] == key]
        row["score_cpu_s"] = statistics.fmean(scored)
        rows.append(row)
    return rows


def made_up_table(space: SearchSpace) -> Truth:
    """For --tiny: the space's first 3 architectures with 2 made-up proxy seeds each."""
    rng = random.Random(0)
    candidates = list(space.enumerate())[:3]
    return Truth(
        {"space": space.name},
        {c.key: c.code for c in candidates},
        {c.key: 0.0 for c in candidates},  # unused: this benchmark measures every candidate's GFLOPs itself
        {"proxy": {c.key: {s: rng.uniform(0.5, 0.7) for s in range(2)} for c in candidates}, "reference": {}},
    )


def builtin_data(table: Truth, settings: dict[str, Any], workdir: Path) -> Path:
    """The built-in data the table names (shapes in tables from before kinds), made as ground_truth.py made it."""
    kind = table.settings.get("dataset", "shapes")
    if kind not in KINDS:
        raise SystemExit(f"the table was made on the {kind!r} data, not built in: give its data YAML with --data")
    images = settings["images"]
    return make_synthetic_dataset(
        workdir / "data", n_train=images, n_val=max(2, images // 4), imgsz=settings["imgsz"], kind=kind
    )


def trained_parent(space: SearchSpace, data_yaml: Path, proxy: ProxySettings, epochs: int, workdir: Path) -> Path:
    print(f"training a parent for {epochs} epochs (give the table's with --weights to skip this)")
    base_yaml = generate_model_yaml(space, Candidate.baseline()).write(workdir / "parent" / "model.yaml")
    return train_parent(base_yaml, data_yaml, proxy, epochs, workdir / "parent")


if __name__ == "__main__":
    main()
