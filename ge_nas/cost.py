"""Cost of an architecture, known before any training: parameters, GFLOPs and latency.

Latency is the median forward time at batch 1 on the search device, measured on the
fused eval model after warm-up. Absolute times drift on shared machines, so the
candidate and the baseline are timed in alternating rounds in the same process and
the ratio of their medians is stored too.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from ge_nas.ultralytics_bridge import count_gflops, inference_copy

COST_NAMES: tuple[str, ...] = ("gflops", "params", "latency")


@dataclass(frozen=True)
class Cost:
    """One architecture's costs; ``latency_ratio`` is latency over the baseline's."""

    params: int
    gflops: float
    latency_ms: float
    latency_ratio: float

    def value(self, name: str) -> float:
        """The cost called ``name`` in ``--objectives`` and ``--max-*`` (latency in ms)."""
        return {"gflops": self.gflops, "params": float(self.params), "latency": self.latency_ms}[name]


def torch_device(device: str) -> torch.device:
    """Ultralytics' device strings ('cpu', '0', '0,1', 'cuda:1', 'mps') as a torch device."""
    first = device.split(",")[0].strip().lower()
    if first.isdigit():
        return torch.device(f"cuda:{first}")
    return torch.device(first or "cpu")


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
