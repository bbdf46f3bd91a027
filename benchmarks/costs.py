"""Are the costs right? GFLOPs against an independent count, latency against its own noise, θ− no longer free.

Part 1, GFLOPs: for every architecture of ``yolov8n_small`` and 20 sampled from
``yolov8n_ge``, ``ge_nas.yolo.costs.count_gflops`` (thop plus our rule for GE units) against
a second count that shares no code with it: ``torch.utils.flop_counter.FlopCounterMode``
for the convolutions (it sees every one, GE's included), plus the ops it ignores counted
from a trace of the aten operations actually run, by the convention of the README (thop's
rules: BatchNorm 4 per input element, an average pool its in-bounds window inputs, found
here by walking every window, plus one divide per output, a mean its inputs plus one per
output; inside a GE unit also ReLU 1, nearest interpolation 1, sigmoid 3 and multiply 1
per element; outside GE nothing else, as thop counts it). Both totals, and the part the GE
units add over the baseline, must agree to 1 %. Ultralytics' own ``get_flops`` and the
peak activation memory are listed too.

Part 2, latency noise: the baseline timed against itself (two separately prepared copies,
as trial 0 of a search is), in ABBA rounds, repeated, for several round counts and for the
torch and onnxruntime backends: the median ratio and its 95 % bootstrap interval, which
should hold 1 and stay within ±2 % at the default round count. The load average of the
machine is recorded with every row.

Part 3, the ground truth re-ranked: the accuracies of ``results/ground_truth_yolov8n_small.csv``
(measured earlier, not retrained) ranked into fronts on (map50-95, GFLOPs) with three
GFLOPs: as stored (Ultralytics' ``get_flops``, which thop extrapolates from 32 px tall
images), thop run on the real 128 px image (extrapolation out, θ−'s operations still
missing), and ``count_gflops`` (both fixed). Run from the repository root:

    python benchmarks/costs.py            # the figures in benchmarks/RESULTS.md
    python benchmarks/costs.py --tiny     # a smoke run
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time
from collections.abc import Iterator
from itertools import product
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import thop
import torch
from report import write_table
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode
from ultralytics.utils.torch_utils import get_flops

from ge_nas.layers.unit import AttentionUnit
from ge_nas.ranking.pareto import nondominated_fronts, to_minimization
from ge_nas.space.candidate import Candidate
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import SearchSpace, load_space
from ge_nas.yolo.costs import count_gflops
from ge_nas.yolo.latency import LATENCY_ROUNDS, paired_latency, prepare_runner
from ge_nas.yolo.memory import peak_activation_mb
from ge_nas.yolo.model_files import build_model

BACKENDS = ("torch", "onnxruntime")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imgsz", type=int, default=128, help="the demo's proxy image size")
    parser.add_argument("--sampled", type=int, default=20, help="architectures sampled from yolov8n_ge")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", default=f"25,50,{LATENCY_ROUNDS},200", help="round counts of the A/A runs")
    parser.add_argument("--repeats", type=int, default=10, help="A/A measurements per backend and round count")
    parser.add_argument("--truth", type=Path, default=Path("benchmarks/results/ground_truth_yolov8n_small.csv"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder of the three CSVs")
    parser.add_argument("--tiny", action="store_true", help="smoke run: 64 px, few architectures and rounds")
    args = parser.parse_args()
    limit = None
    if args.tiny:
        args.imgsz, args.sampled, args.rounds, args.repeats, limit = 64, 2, "6,10", 2, 3
    rounds = [int(r) for r in args.rounds.split(",")]

    gflops_rows = count_architectures(args, limit)
    settings = {"imgsz": args.imgsz, "sampled": args.sampled, "seed": args.seed}
    fields = ["space", "code", "units", "ultralytics_gflops", "gflops", "independent_gflops", "rel_diff"]
    fields += ["ge_added", "ge_added_independent", "ge_added_rel_diff", "memory_mb"]
    print(f"figures written to {write_table(args.out / 'costs_gflops.csv', settings, fields, gflops_rows)}\n")

    latency_rows = time_a_a(args.imgsz, rounds, args.repeats)
    settings = {"imgsz": args.imgsz, "repeats": args.repeats, "rounds": "/".join(map(str, rounds))}
    settings |= {"default_rounds": LATENCY_ROUNDS, "threads": torch.get_num_threads()}
    fields = ["backend", "rounds", "repeat", "ratio", "low", "high", "candidate_ms", "baseline_ms", "seconds", "load1"]
    print(f"figures written to {write_table(args.out / 'costs_latency.csv', settings, fields, latency_rows)}\n")

    truth_rows = rerank_ground_truth(args.truth, limit)
    fields = ["code", "map50-95", "gflops_before", "gflops_thop", "gflops", "front_before", "front_thop", "front"]
    path = write_table(args.out / "costs_ground_truth.csv", {"table": args.truth.name}, fields, truth_rows)
    print(f"figures written to {path}")


# --- part 1: GFLOPs ---


def architectures(args: argparse.Namespace, limit: int | None) -> Iterator[tuple[SearchSpace, Candidate]]:
    """Every architecture of yolov8n_small, then distinct samples of yolov8n_ge (seeded)."""
    small = load_space("yolov8n_small")
    yield from ((small, c) for c in list(small.enumerate())[:limit])
    space = load_space("yolov8n_ge")
    rng = random.Random(args.seed)
    seen: set[str] = set()
    while len(seen) < args.sampled:
        candidate = space.sample(rng)
        if candidate.key not in seen and candidate.units:
            seen.add(candidate.key)
            yield space, candidate


def count_architectures(args: argparse.Namespace, limit: int | None) -> list[dict[str, Any]]:
    rows = []
    baselines: dict[str, tuple[float, float]] = {}
    print(f"{'space':<14} {'architecture':<26} {'thop':>10} {'counted':>12} {'independent':>12} {'GE added':>10}")
    for space, candidate in architectures(args, limit):
        model = build_model(generate_model_yaml(space, candidate).model)
        counted, independent = count_gflops(model, args.imgsz), independent_gflops(model, args.imgsz)
        if space.name not in baselines:
            base = build_model(generate_model_yaml(space, Candidate.baseline()).model)
            baselines[space.name] = (count_gflops(base, args.imgsz), independent_gflops(base, args.imgsz))
        added, added_independent = counted - baselines[space.name][0], independent - baselines[space.name][1]
        rows.append(
            {
                "space": space.name,
                "code": candidate.code,
                "units": candidate.units,
                "ultralytics_gflops": get_flops(model, args.imgsz),
                "gflops": counted,
                "independent_gflops": independent,
                "rel_diff": independent / counted - 1,
                "ge_added": added,
                "ge_added_independent": added_independent,
                "ge_added_rel_diff": added_independent / added - 1 if added else 0.0,
                "memory_mb": peak_activation_mb(model, args.imgsz),
            }
        )
        print(
            f"{space.name:<14} {candidate.code:<26} {rows[-1]['ultralytics_gflops']:10.6f} {counted:12.9f} "
            f"{independent:12.9f} {added:10.3g}"
        )
    worst = max(abs(r["rel_diff"]) for r in rows)
    worst_added = max(abs(r["ge_added_rel_diff"]) for r in rows)
    print(
        f"{len(rows)} architectures: counted and independent GFLOPs differ by at most {worst:.3%} (total) and "
        f"{worst_added:.3%} (what GE adds); target 1%"
    )
    return rows


def independent_gflops(model: nn.Module, imgsz: int) -> float:
    """GFLOPs from FlopCounterMode (convolutions) plus the aten trace of everything else (see the docstring)."""
    return 2 * independent_ops(model, torch.zeros(1, 3, imgsz, imgsz)) / 1e9


def independent_ops(model: nn.Module, image: torch.Tensor) -> int:
    """Multiply-adds of one eval forward of ``model`` (a detector, or one unit) on ``image``, counted independently."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as convolutions:
        model(image)
    with torch.no_grad(), _OtherOps(model) as others:
        model(image)
    return convolutions.get_total_flops() // 2 + others.ops


class _OtherOps(TorchDispatchMode):
    """Multiply-adds of the aten operations FlopCounterMode ignores, by the README's rules.

    Inside an attention unit (GE's and the other modules'), every elementwise step counts per
    output element: ReLU 1, hard swish 4, nearest interpolation 1, sigmoid 3, multiply, add,
    subtract, square and divide 1; a sum its inputs; a max over a map 0 (as thop's max pool).
    """

    _INSIDE_UNIT: ClassVar[dict[str, int]] = {
        "relu": 1,
        "relu_": 1,
        "hardswish": 4,
        "upsample_nearest2d": 1,
        "sigmoid": 3,
        "mul": 1,
        "add": 1,
        "sub": 1,
        "pow": 1,
        "div": 1,
    }

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.ops = 0
        self.inside_unit = 0
        self._hooks = []
        for module in model.modules():
            if isinstance(module, AttentionUnit):
                self._hooks.append(module.register_forward_pre_hook(lambda *_: self._enter(1)))
                self._hooks.append(module.register_forward_hook(lambda *_: self._enter(-1)))

    def _enter(self, step: int) -> None:
        self.inside_unit += step

    def __exit__(self, *exc: object) -> None:
        for hook in self._hooks:
            hook.remove()
        super().__exit__(*exc)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if "batch_norm" in name:
            self.ops += 4 * args[0].numel()
        elif self.inside_unit and name == "avg_pool2d":
            self.ops += _pooled_inputs(*args[:6]) + out.numel()
        elif self.inside_unit and name == "mean":
            self.ops += args[0].numel() + out.numel()
        elif self.inside_unit and name == "sum":
            self.ops += args[0].numel()
        elif self.inside_unit and name in self._INSIDE_UNIT:
            self.ops += self._INSIDE_UNIT[name] * tree_flatten(out)[0][0].numel()
        return out


def _pooled_inputs(
    x: torch.Tensor, kernel: list[int], stride: list[int], padding: list[int], ceil_mode: bool, include_pad: bool
) -> int:
    """Inputs summed by an average pool, window by window (a pad counts only when it is included)."""
    channels = x.shape[0] * x.shape[1]
    total = 1
    for size, k, s, p in zip(x.shape[-2:], kernel, stride or kernel, padding, strict=True):
        outputs = (size + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
        lower, upper = (-p, size + p) if include_pad else (0, size)
        total *= sum(len(range(max(i * s - p, lower), min(i * s - p + k, upper))) for i in range(outputs))
    return channels * total


# --- part 2: latency noise ---


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0]) if Path("/proc/loadavg").is_file() else float("nan")


def time_a_a(imgsz: int, rounds: list[int], repeats: int) -> list[dict[str, Any]]:
    """The baseline against a second copy of itself, per backend and round count."""
    baseline = build_model(generate_model_yaml(load_space("yolov8n_small"), Candidate.baseline()).model)
    rows = []
    print(f"yolov8n at {imgsz} px against itself (A/A), {repeats} measurements each; load average now {load_average()}")
    print(f"{'backend':<12} {'rounds':>6} {'median ratio':>12} {'worst':>7} {'widest 95% interval':>21} {'s each':>7}")
    for backend, count in product(BACKENDS, rounds):
        a = prepare_runner(baseline, imgsz, backend)
        b = prepare_runner(baseline, imgsz, backend)
        for repeat in range(repeats):
            start = time.perf_counter()
            latency = paired_latency(a, b, rounds=count)
            rows.append(
                {
                    "backend": backend,
                    "rounds": count,
                    "repeat": repeat,
                    "ratio": latency.ratio,
                    "low": latency.low,
                    "high": latency.high,
                    "candidate_ms": latency.candidate_ms,
                    "baseline_ms": latency.baseline_ms,
                    "seconds": time.perf_counter() - start,
                    "load1": load_average(),
                }
            )
        mine = rows[-repeats:]
        worst = max(mine, key=lambda r: abs(r["ratio"] - 1))["ratio"]
        widest = max(mine, key=lambda r: r["high"] - r["low"])
        print(
            f"{backend:<12} {count:>6} {statistics.median(r['ratio'] for r in mine):12.4f} {worst:7.4f} "
            f"{widest['low']:10.4f}-{widest['high']:.4f} {statistics.median(r['seconds'] for r in mine):7.2f}"
        )
    for backend in BACKENDS:
        default = [r for r in rows if r["backend"] == backend and r["rounds"] == LATENCY_ROUNDS]
        if default:
            inside = sum(r["low"] >= 0.98 and r["high"] <= 1.02 for r in default)
            holds = sum(r["low"] <= 1 <= r["high"] for r in default)
            worst = max(abs(r["ratio"] - 1) for r in default)
            print(
                f"A/A {backend} at the default {LATENCY_ROUNDS} rounds: ratio within ±{worst:.2%} in all "
                f"{len(default)}; interval inside ±2% in {inside}, holds 1 in {holds}"
            )
    return rows


# --- part 3: the ground truth re-ranked ---


def rerank_ground_truth(table: Path, limit: int | None) -> list[dict[str, Any]]:
    """The table's accuracies with GFLOPs as stored, as thop counts them at 128 px, and counted: fronts of each."""
    lines = table.read_text().splitlines()
    truth = list(csv.DictReader(lines[1:]))[:limit]
    imgsz = int(next(p.split("=")[1] for p in lines[0].split() if p.startswith("imgsz=")))
    space = load_space("yolov8n_small")
    rows = []
    image = torch.zeros(1, 3, imgsz, imgsz)
    for row in truth:
        model = build_model(generate_model_yaml(space, Candidate.from_key(row["key"])).model)
        rows.append(
            {
                "code": row["code"],
                "map50-95": float(row["map50-95"]),
                "gflops_before": float(row["gflops"]),
                "gflops_thop": 2 * thop.profile(model, inputs=(image,), verbose=False)[0] / 1e9,
                "gflops": count_gflops(model, imgsz),
            }
        )
    for suffix, column in (("_before", "gflops_before"), ("_thop", "gflops_thop"), ("", "gflops")):
        values = np.array([[r["map50-95"], r[column]] for r in rows])
        fronts = nondominated_fronts(to_minimization(values, ["maximize", "minimize"]))
        for r, front in zip(rows, fronts.tolist(), strict=True):
            r["front" + suffix] = front
    print(f"ground truth ({len(rows)} architectures, {imgsz} px), fronts on map50-95 and GFLOPs:")
    columns = ("stored", 9), ("front", 5), ("thop 128px", 12), ("front", 5), ("counted", 12), ("front", 5)
    print(f"{'code':<12} {'map50-95':>8} " + " ".join(f"{name:>{width}}" for name, width in columns))
    for r in sorted(rows, key=lambda r: (r["front"], -r["map50-95"])):
        print(
            f"{r['code']:<12} {r['map50-95']:8.4f} {r['gflops_before']:9.6f} {r['front_before']:5d} "
            f"{r['gflops_thop']:12.9f} {r['front_thop']:5d} {r['gflops']:12.9f} {r['front']:5d}"
        )
    for label, column in (("as stored", "front_before"), ("thop at 128 px", "front_thop"), ("counted", "front")):
        print(f"front 1 {label}: {', '.join(r['code'] for r in rows if r[column] == 1)}")
    return rows


if __name__ == "__main__":
    main()
