"""Cost of an architecture, known before any training: parameters, GFLOPs and latency.

GFLOPs follow Ultralytics' convention (twice thop's multiply-adds, on the unfused model),
with every operation of a GE unit counted (:mod:`ge_nas.yolo.op_count`); a count that
fails raises :class:`~ge_nas.errors.CostError` instead of reading 0.

Latency is the median forward time at batch 1 on the search device, measured on the
fused eval model after warm-up. Absolute times drift on shared machines, so the
candidate and the baseline are timed in alternating rounds in the same process and
the ratio of their medians is stored too.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import torch

from ge_nas.yolo.console import quiet
from ge_nas.yolo.devices import torch_device
from ge_nas.yolo.op_count import count_ops

__all__ = ["Cost", "count_gflops", "inference_copy", "measure_cost"]


@dataclass(frozen=True)
class Cost:
    """One architecture's costs, named as a trial record stores them; ``latency_ratio`` is over the baseline's."""

    params: int
    gflops: float
    latency_ms: float
    latency_ratio: float


def measure_cost(
    model: torch.nn.Module,
    baseline: torch.nn.Module,
    imgsz: int,
    device: str = "cpu",
    warmup: int = 3,
    rounds: int = 15,
) -> Cost:
    """Parameters, GFLOPs at ``imgsz`` and latency of ``model``, with latency relative to ``baseline``."""
    params = sum(p.numel() for p in model.parameters())
    gflops = count_gflops(model, imgsz)
    latency, baseline_latency = _paired_latency(model, baseline, imgsz, torch_device(device), warmup, rounds)
    return Cost(params, gflops, latency, latency / baseline_latency)


def count_gflops(model: torch.nn.Module, imgsz: int) -> float:
    """GFLOPs of one forward at ``imgsz`` x ``imgsz``: ``2 * multiply-adds / 1e9``, as Ultralytics reports them.

    A model without GE counts what Ultralytics' own summary says; GE units count every
    operation (see :mod:`ge_nas.yolo.op_count`).

    Raises:
        CostError: the count failed or came to 0.
    """
    parameter = next(model.parameters())
    image = torch.zeros(1, parameter.shape[1], imgsz, imgsz, device=parameter.device, dtype=parameter.dtype)
    return 2 * count_ops(model, image) / 1e9


def inference_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy in eval mode with Conv+BN fused, as a deployed model runs (for latency)."""
    fused = copy.deepcopy(model).eval()
    with quiet():
        return fused.fuse(verbose=False)


def _paired_latency(
    model: torch.nn.Module, baseline: torch.nn.Module, imgsz: int, device: torch.device, warmup: int, rounds: int
) -> tuple[float, float]:
    """Median ms per forward of each model, timed in alternating rounds so drift hits both alike."""
    models = [inference_copy(model).to(device), inference_copy(baseline).to(device)]
    image = torch.zeros(1, 3, imgsz, imgsz, device=device)
    times: list[list[float]] = [[], []]
    with torch.inference_mode():
        for _ in range(warmup):
            for m in models:
                m(image)
        for _ in range(rounds):
            for m, record in zip(models, times, strict=True):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                m(image)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                record.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])
