"""How fast is one Gather-Excite unit, against timm's, and what latency does it add to yolov8n?

Part 1, the unit: forward (eval, inference mode) and forward+backward (train mode) time of
``ge_nas.layers.GatherExcite`` against ``timm.layers.GatherExcite`` with the equivalent
settings (θ−: ``extra_params=False, use_mlp=False``; θ: ``extra_params=True,
use_mlp=False``; θ+: ``extra_params=True, use_mlp=True``), at the maps yolov8n's Detect
head reads for a 640 px image (64 ch at 80x80, 128 at 40x40, 256 at 20x20). Both run the
same inputs, timed with ``torch.utils.benchmark.Timer`` (blocked autorange, median) in
alternating rounds; the figure is the median of the per-round ratios ours/timm (target:
<= 1, no slower than timm). Before timing, the two are given the same weights and must
agree to 1e-5, so the comparison is between equal computations.

timm 1.0.31 cannot build θ or θ+: its constructor passes ``*dd`` (the keys of a
``{device, dtype}`` dict) as positional arguments to ``create_conv2d``, ``ConvMlp`` and
``BatchNorm2d``. This script detects that and runs timm's own constructor with those
two stray strings dropped from its calls (and BatchNorm's ``eps``/``momentum``, which
received them, put back to their defaults); no timm code is copied. If that does not
give a module equal to ours, the row says "timm reference unavailable (bug)". Global θ
and θ+ have no timm equivalent: timm's global θ gathers with one depthwise kernel as
large as the map (tied to ``feat_size``), ours with three stride-2 convs and a mean.

Part 2, the model: the latency one GE unit adds to yolov8n (batch 1, fused, eval) at
each insertion point of a search space, for each variant, at extent 4 and global, as
``ge_nas.yolo.costs.measure_cost`` measures it during a search (candidate and baseline timed
in ABBA rounds; the median of the per-round ratios). Run from the repository root:

    python benchmarks/ge_unit.py                  # the figures in benchmarks/RESULTS.md
    python benchmarks/ge_unit.py --tiny           # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import timm.layers
import timm.layers.gather_excite as timm_ge
import torch
from report import median_ratio, write_table
from torch import nn
from torch.utils.benchmark import Timer

import ge_nas  # noqa: F401  (registers the GE layers)
from ge_nas.layers.choices import GLOBAL_EXTENT, VARIANTS
from ge_nas.layers.gather_excite import GatherExcite
from ge_nas.space.candidate import Candidate, Placement
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import load_space
from ge_nas.yolo.costs import measure_cost
from ge_nas.yolo.model_files import build_model

# (channels, map side): what yolov8n's P3, P4 and P5 outputs hold for a 640 px image.
DETECTOR_MAPS = ((64, 80), (128, 40), (256, 20))
EXTENTS = (2, 4, 8, GLOBAL_EXTENT)
MODEL_EXTENTS = (4, GLOBAL_EXTENT)
TIMM_SETTINGS = {
    "theta-minus": {"extra_params": False, "use_mlp": False},
    "theta": {"extra_params": True, "use_mlp": False},
    "theta-plus": {"extra_params": True, "use_mlp": True},
}
# What timm 1.0.31's ``*dd`` puts into its calls: the keys of {"device": ..., "dtype": ...}.
_STRAY_ARGUMENTS = ("device", "dtype")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="batch of the unit timings")
    parser.add_argument("--rounds", type=int, default=5, help="alternating ours/timm rounds per setting")
    parser.add_argument("--min-run-time", type=float, default=0.1, help="seconds of each blocked autorange")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on a shared CPU)")
    parser.add_argument("--space", default="yolov8n_ge", help="search space whose insertion points part 2 tries")
    parser.add_argument("--imgsz", type=int, default=640, help="image size of the part 2 latencies")
    parser.add_argument("--latency-rounds", type=int, default=15, help="measure_cost rounds per candidate")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ge_unit.csv"))
    parser.add_argument("--model-out", type=Path, default=Path("benchmarks/results/ge_unit_yolov8n_latency.csv"))
    parser.add_argument("--tiny", action="store_true", help="smoke run: small maps, few settings and points")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    maps, extents, points = DETECTOR_MAPS, EXTENTS, None
    if args.tiny:
        maps, extents, points = ((16, 16),), (4, GLOBAL_EXTENT), 1
        args.batch, args.rounds, args.min_run_time, args.imgsz, args.latency_rounds = 2, 2, 0.01, 64, 3

    workaround = timm_needs_workaround()
    timm_note = "theta/theta-plus built with its *dd constructor bug worked around" if workaround else "as it is"
    print(f"timm {timm.__version__}: {timm_note}")
    unit_rows = time_units(args, maps, extents, workaround)
    settings = {
        "batch": args.batch,
        "rounds": args.rounds,
        "min_run_time": args.min_run_time,
        "threads": args.threads,
        "timm": timm.__version__,
        "timm_note": timm_note.replace(" ", "_"),
    }
    fields = ["channels", "side", "variant", "extent", "pass", "ours_ms", "timm_ms", "ratio", "reference"]
    print(f"figures written to {write_table(args.out, settings, fields, unit_rows)}\n")

    model_rows = time_in_model(args, points)
    model_settings = {
        "space": args.space,
        "imgsz": args.imgsz,
        "batch": 1,
        "latency_rounds": args.latency_rounds,
        "threads": args.threads,
    }
    model_fields = ["index", "alias", "channels", "variant", "extent", "latency_ratio", "latency_ms", "params_added"]
    print(f"figures written to {write_table(args.model_out, model_settings, model_fields, model_rows)}")


def timm_needs_workaround() -> bool:
    """Whether this timm fails to build a learned-gather GE unit (the ``*dd`` bug of timm 1.0.31)."""
    try:
        timm.layers.GatherExcite(8, extra_params=True, extent=2, use_mlp=True)
    except TypeError:
        return True
    return False


@contextlib.contextmanager
def _without_stray_arguments() -> Iterator[None]:
    """While timm's GatherExcite is constructed, drop the two stray positional strings from its calls."""

    def dropping(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        return lambda *args, **kwargs: build(*(a for a in args if a not in _STRAY_ARGUMENTS), **kwargs)

    originals = {"create_conv2d": timm_ge.create_conv2d, "ConvMlp": timm_ge.ConvMlp}
    try:
        for name, build in originals.items():
            setattr(timm_ge, name, dropping(build))
        yield
    finally:
        for name, build in originals.items():
            setattr(timm_ge, name, build)


def timm_unit(channels: int, variant: str, extent: int) -> nn.Module | None:
    """timm's GatherExcite equivalent to ours, or None where timm has none (global θ/θ+)."""
    settings = TIMM_SETTINGS[variant]
    if extent == GLOBAL_EXTENT and settings["extra_params"]:
        return None
    try:
        return timm.layers.GatherExcite(channels, extent=extent, **settings)
    except TypeError:
        pass
    with _without_stray_arguments():
        unit = timm.layers.GatherExcite(channels, extent=extent, **settings)
    for module in unit.modules():
        if isinstance(module, nn.BatchNorm2d) and isinstance(module.eps, str):  # got "device", "dtype"
            module.eps, module.momentum = 1e-5, 0.1
    return unit


def same_computation(ours: nn.Module, theirs: nn.Module, x: torch.Tensor) -> bool:
    """Give timm's unit our weights (same order, same shapes) and check both compute the same gate."""
    ours_tensors = [*ours.parameters(), *ours.buffers()]
    their_tensors = [*theirs.parameters(), *theirs.buffers()]
    if [t.shape for t in ours_tensors] != [t.shape for t in their_tensors]:
        return False
    with torch.no_grad():
        for mine, their in zip(ours_tensors, their_tensors, strict=True):
            mine.copy_(torch.randn_like(mine.float()).abs().to(mine.dtype) if mine.is_floating_point() else mine)
            their.copy_(mine)
        ours.eval()
        theirs.eval()
        return torch.allclose(ours(x), theirs(x), atol=1e-5)


def _forward(unit: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    def run() -> torch.Tensor:
        with torch.inference_mode():
            return unit(x)

    return run


def _forward_backward(unit: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    leaf = x.detach().clone().requires_grad_(True)  # so θ−, which has no weights, has a backward too

    def run() -> None:
        unit(leaf).sum().backward()

    return run


PASSES: dict[str, Callable[[nn.Module, torch.Tensor], Callable[[], Any]]] = {
    "forward": _forward,
    "fwd+bwd": _forward_backward,
}


def _median_ms(run: Callable[[], Any], threads: int, min_run_time: float) -> float:
    timer = Timer(stmt="run()", globals={"run": run}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1000


def time_units(
    args: argparse.Namespace, maps: tuple[tuple[int, int], ...], extents: tuple[int, ...], workaround: bool
) -> list[dict[str, Any]]:
    """Part 1: every (map, variant, extent, pass), ours and timm's in alternating rounds."""
    rows = []
    print(f"{'map':<12} {'unit':<16} {'pass':<8} {'ours ms':>8} {'timm ms':>8} {'ours/timm':>9}")
    for channels, side in maps:
        x = torch.randn(args.batch, channels, side, side)
        for variant in VARIANTS:
            for extent in extents:
                ours, theirs = GatherExcite(channels, variant, extent), timm_unit(channels, variant, extent)
                reference = "timm, *dd bug worked around" if workaround and variant != "theta-minus" else "timm"
                if theirs is None:
                    reference = "no timm equivalent (timm's global theta/theta-plus uses a map-sized kernel)"
                elif not same_computation(ours, theirs, x):
                    theirs, reference = None, "timm reference unavailable (bug)"
                for pass_name in PASSES:
                    ours_ms, timm_ms = time_pair(ours, theirs, x, pass_name, args)
                    ratio = median_ratio(ours_ms, timm_ms) if timm_ms else None
                    row = {"channels": channels, "side": side, "variant": variant, "extent": extent}
                    row |= {"pass": pass_name, "ours_ms": statistics.median(ours_ms), "reference": reference}
                    row |= (
                        {"timm_ms": statistics.median(timm_ms), "ratio": ratio}
                        if ratio
                        else {"timm_ms": "", "ratio": ""}
                    )
                    rows.append(row)
                    shown = f"{row['timm_ms']:8.3f} {ratio:9.3f}" if ratio else f"{'-':>8} {'-':>9}  {reference}"
                    unit = f"{variant} e{extent}"
                    print(f"{channels:>3}@{side}x{side:<5} {unit:<16} {pass_name:<8} {row['ours_ms']:8.3f} {shown}")
    compared = [r["ratio"] for r in rows if r["ratio"] != ""]
    if compared:
        print(
            f"ours/timm over {len(compared)} compared settings: median {statistics.median(compared):.3f}, "
            f"worst {max(compared):.3f} (target <= 1)"
        )
    return rows


def time_pair(
    ours: nn.Module, theirs: nn.Module | None, x: torch.Tensor, pass_name: str, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    """Per-round median times (ms) of ours and timm's unit, alternating which goes first."""
    runs = {}
    for name, unit in (("ours", ours), ("timm", theirs)):
        if unit is not None:
            unit.train(pass_name == "fwd+bwd")
            runs[name] = PASSES[pass_name](unit, x)
    times: dict[str, list[float]] = {"ours": [], "timm": []}
    for n in range(args.rounds):
        for name in sorted(runs, reverse=n % 2 == 1):
            times[name].append(_median_ms(runs[name], args.threads, args.min_run_time))
    return times["ours"], times["timm"]


def time_in_model(args: argparse.Namespace, limit_points: int | None) -> list[dict[str, Any]]:
    """Part 2: the latency ratio over yolov8n of one GE unit after each insertion point."""
    space = load_space(args.space)
    baseline = build_model(generate_model_yaml(space, Candidate.baseline()).model)
    rows = []
    print(f"one GE unit in {space.base_name} at {args.imgsz} px, batch 1: latency / baseline's")
    labels = [f"{v} e{e}" for v in VARIANTS for e in MODEL_EXTENTS]
    print(f"{'point':<22} " + " ".join(f"{label:>14}" for label in labels))
    for point in space.points[:limit_points]:
        cells = []
        for variant in VARIANTS:
            for extent in MODEL_EXTENTS:
                candidate = Candidate.of({point.index: Placement(variant, extent, "after")})
                model = build_model(generate_model_yaml(space, candidate).model)
                cost = measure_cost(model, baseline, args.imgsz, "cpu", rounds=args.latency_rounds)
                rows.append(
                    {
                        "index": point.index,
                        "alias": point.alias,
                        "channels": point.layer.channels,
                        "variant": variant,
                        "extent": extent,
                        "latency_ratio": cost.latency_ratio,
                        "latency_ms": cost.latency_ms,
                        "params_added": cost.params - sum(p.numel() for p in baseline.parameters()),
                    }
                )
                cells.append(f"{cost.latency_ratio:>14.3f}")
        print(f"{str(point.index) + ' ' + point.alias:<22} " + " ".join(cells))
    ratios = [r["latency_ratio"] for r in rows]
    print(
        f"latency ratio over {len(ratios)} single-unit models: median {statistics.median(ratios):.3f}, "
        f"max {max(ratios):.3f}"
    )
    return rows


if __name__ == "__main__":
    main()
