"""The attention modules against timm and their papers: speed, parameters, operations.

Part 1, speed: forward (eval, inference mode) and forward+backward (train mode) time of
each module (``SqueezeExcite``, ``EfficientChannelAttention``, ``ConvBlockAttention``,
``CoordinateAttention``) against timm's equivalent (``SEModule``, ``EcaModule``,
``CbamModule`` with ``mlp_bias=True``, ``CoordAttn`` in the authors' settings), and
``SimAM`` against a transcription of its paper's code (timm has none), at the maps yolov8n's
head reads for a 640 px image (64 ch at 80x80, 128 at 40x40, 256 at 20x20). Before timing,
the reference gets our weights and both must agree to 1e-5 (ECA's bias, ours alone, is 0).
Each setting is timed in alternating rounds with ``torch.utils.benchmark.Timer`` (as
``ge_unit.py`` times GE); the figure is the median of the per-round ratios ours/reference,
with their smallest and largest as the spread (target: no slower, a median <= 1 within the
spread of timing the same computation twice).

Part 2, parameters and operations: for each module and channel count, the parameters
counted on the layer against the paper's formula (its weights; the biases and BatchNorm the
authors' code adds are listed apart), and on maps of several sizes (odd, rectangular, 1x1)
the operations ``ge_nas.yolo.op_count.count_ops`` counts (thop plus each unit's formula)
against an independent count (``FlopCounterMode`` for convolutions plus an aten trace of
everything else, shared with ``costs.py``). Run from the repository root:

    python benchmarks/modules.py           # the figures in benchmarks/RESULTS.md
    python benchmarks/modules.py --tiny    # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import timm
import torch
from costs import independent_ops
from ge_unit import PASSES, time_pair
from report import write_table
from timm.layers.cbam import CbamModule
from timm.layers.coord_attn import CoordAttn
from timm.layers.eca import EcaModule
from timm.layers.squeeze_excite import SEModule
from torch import nn

from ge_nas.layers.choices import MODULES
from ge_nas.layers.coord_attention import coord_hidden_channels
from ge_nas.layers.eca import EfficientChannelAttention, eca_kernel_size
from ge_nas.layers.registry import make_unit
from ge_nas.layers.simam import LAMBDA
from ge_nas.layers.unit import reduced_channels
from ge_nas.yolo.op_count import count_ops

# (channels, map side): what yolov8n's P3, P4 and P5 outputs hold for a 640 px image.
DETECTOR_MAPS = ((64, 80), (128, 40), (256, 20))
OTHERS = tuple(name for name in MODULES if name != "ge")
COUNT_CHANNELS = (16, 64, 256, 1024)
COUNT_SIZES = ((20, 20), (13, 7), (4, 4), (1, 1))


class PapersSimAM(nn.Module):
    """SimAM as the paper's code writes it (Yang et al., 2021, Figure 3): the timing reference."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
        v = d.sum(dim=[2, 3], keepdim=True) / n
        return x * torch.sigmoid(d / (4 * (v + LAMBDA)) + 0.5)


def reference(module: str, channels: int) -> tuple[nn.Module, str]:
    """timm's module computing what ours does, or the paper's code for SimAM; and its name."""
    if module == "se":
        return SEModule(channels, rd_channels=reduced_channels(channels)), "timm SEModule"
    if module == "eca":
        return EcaModule(kernel_size=eca_kernel_size(channels)), "timm EcaModule"
    if module == "cbam":
        return CbamModule(channels, rd_channels=reduced_channels(channels), mlp_bias=True), "timm CbamModule"
    if module == "coord":
        settings = {"rd_channels": coord_hidden_channels(channels), "bias": True, "act_layer": nn.Hardswish}
        return CoordAttn(channels, **settings), "timm CoordAttn"
    return PapersSimAM(), "the paper's code"


def same_computation(ours: nn.Module, theirs: nn.Module, x: torch.Tensor) -> bool:
    """Give the reference our (random) weights, tensor by tensor in order, and check both compute the same."""
    torch.manual_seed(0)
    with torch.no_grad():
        if isinstance(ours, EfficientChannelAttention):
            ours.conv.bias.zero_()  # the paper's ECA has no bias
        mine = [t for name, t in [*ours.named_parameters(), *ours.named_buffers()] if name != "conv.bias"]
        their = [*theirs.parameters(), *theirs.buffers()]
        if [t.shape for t in mine] != [t.shape for t in their]:
            return False
        for tensor, copy in zip(mine, their, strict=True):
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            copy.copy_(tensor)
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        return torch.allclose(ours(x), theirs(x), atol=1e-5)


def time_modules(args: argparse.Namespace, maps: tuple[tuple[int, int], ...]) -> list[dict[str, Any]]:
    """Part 1: every (map, module, pass), ours and the reference's in alternating rounds."""
    rows = []
    print(f"{'map':<12} {'module':<7} {'pass':<8} {'ours ms':>8} {'ref ms':>8} {'ratio':>6} {'spread':>13}  reference")
    for channels, side in maps:
        x = torch.randn(args.batch, channels, side, side)
        for module in OTHERS:
            ours = make_unit(channels, module, 0)
            theirs, name = reference(module, channels)
            if not same_computation(ours, theirs, x):
                raise SystemExit(f"{name} does not compute what our {module} does on {channels}@{side}: fix that first")
            for pass_name in PASSES:
                ours_ms, reference_ms = time_pair(ours, theirs, x, pass_name, args)
                ratios = [o / r for o, r in zip(ours_ms, reference_ms, strict=True)]
                row = {"channels": channels, "side": side, "module": module, "pass": pass_name, "reference": name}
                row |= {"ours_ms": statistics.median(ours_ms), "reference_ms": statistics.median(reference_ms)}
                row |= {"ratio": statistics.median(ratios), "ratio_low": min(ratios), "ratio_high": max(ratios)}
                rows.append(row)
                spread = f"{row['ratio_low']:.3f}-{row['ratio_high']:.3f}"
                print(
                    f"{channels:>3}@{side}x{side:<5} {module:<7} {pass_name:<8} {row['ours_ms']:8.3f} "
                    f"{row['reference_ms']:8.3f} {row['ratio']:6.3f} {spread:>13}  {name}"
                )
    for pass_name in PASSES:
        ratios = [r["ratio"] for r in rows if r["pass"] == pass_name]
        print(
            f"{pass_name}: ours/reference over {len(ratios)} settings: median {statistics.median(ratios):.3f}, "
            f"best {min(ratios):.3f}, worst {max(ratios):.3f} (target <= 1)"
        )
    return rows


# The papers' parameter formulas (their weights), and what the authors' code adds, per module.
PAPER_WEIGHTS: dict[str, Callable[[int], int]] = {
    "se": lambda c: 2 * c * reduced_channels(c),  # 2C²/r
    "eca": lambda c: eca_kernel_size(c),  # k
    "cbam": lambda c: 2 * c * reduced_channels(c) + 2 * 7 * 7,  # 2C²/r + a 7x7 conv on 2 maps
    "coord": lambda c: 3 * c * coord_hidden_channels(c),  # C·mip in, 2·mip·C out
    "simam": lambda c: 0,
}
EXTRAS: dict[str, tuple[Callable[[int], int], str]] = {
    "se": (lambda c: reduced_channels(c) + c, "biases of both layers (authors' code, timm)"),
    "eca": (lambda c: 1, "our bias, so the gate can start open"),
    "cbam": (lambda c: reduced_channels(c) + c + 2, "MLP biases and the spatial BatchNorm (authors' code)"),
    "coord": (lambda c: 3 * coord_hidden_channels(c) + 2 * c, "biases and the encoder's BatchNorm (authors' code)"),
    "simam": (lambda c: 0, "none: parameter-free"),
}


def count_modules(channels: tuple[int, ...], sizes: tuple[tuple[int, int], ...]) -> list[dict[str, Any]]:
    """Part 2: parameters against the papers' formulas, operations against an independent count."""
    rows = []
    columns = ("module", "C", "params", "paper", "extra", "HxW", "counted", "independent")
    print("\n" + " ".join(f"{c:<7}" if c == "module" else f"{c:>11}" for c in columns))
    for module in OTHERS:
        for c in channels:
            unit = make_unit(c, module, 0)
            params = sum(p.numel() for p in unit.parameters())
            extra, note = EXTRAS[module]
            for height, width in sizes:
                image = torch.randn(1, c, height, width)
                counted, independent = count_ops(unit, image), independent_ops(unit, image)
                rows.append(
                    {
                        "module": module,
                        "channels": c,
                        "params": params,
                        "paper_params": PAPER_WEIGHTS[module](c),
                        "extra_params": extra(c),
                        "extra_note": note,
                        "height": height,
                        "width": width,
                        "counted_ops": counted,
                        "independent_ops": independent,
                        "formula_ops": unit.ops(height, width).total,
                    }
                )
                shown = (c, params, PAPER_WEIGHTS[module](c), extra(c), f"{height}x{width}", counted, independent)
                print(f"{module:<7} " + " ".join(f"{value:>11}" for value in shown))
    params_match = all(r["params"] == r["paper_params"] + r["extra_params"] for r in rows)
    ops_match = all(r["counted_ops"] == r["independent_ops"] == r["formula_ops"] for r in rows)
    worst = max(abs(r["counted_ops"] / r["independent_ops"] - 1) for r in rows)
    print(
        f"{len(rows)} settings: parameters = paper's formula + the listed extras: {params_match}; counted, "
        f"independent and formula operations agree: {ops_match} (largest difference {worst:.3%})"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="batch of the timings")
    parser.add_argument("--rounds", type=int, default=5, help="alternating ours/reference rounds per setting")
    parser.add_argument("--min-run-time", type=float, default=0.1, help="seconds of each blocked autorange")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on a shared CPU)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/modules_speed.csv"))
    parser.add_argument("--counts-out", type=Path, default=Path("benchmarks/results/modules_counts.csv"))
    parser.add_argument("--tiny", action="store_true", help="smoke run: one small map, few rounds and sizes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    maps, channels, sizes = DETECTOR_MAPS, COUNT_CHANNELS, COUNT_SIZES
    if args.tiny:
        maps, channels, sizes = ((16, 16),), (16,), ((5, 3),)
        args.batch, args.rounds, args.min_run_time = 2, 2, 0.01
    speed = time_modules(args, maps)
    settings = {
        "batch": args.batch,
        "rounds": args.rounds,
        "min_run_time": args.min_run_time,
        "threads": args.threads,
        "timm": timm.__version__,
    }
    fields = ["channels", "side", "module", "pass", "ours_ms", "reference_ms", "ratio", "ratio_low", "ratio_high"]
    print(f"figures written to {write_table(args.out, settings, [*fields, 'reference'], speed)}")
    counts = count_modules(channels, sizes)
    count_fields = [*counts[0]]
    print(f"figures written to {write_table(args.counts_out, {'batch': 1}, count_fields, counts)}")


if __name__ == "__main__":
    main()
