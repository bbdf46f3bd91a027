"""Cost of an architecture, known before any training: parameters, GFLOPs, latency and peak memory.

* GFLOPs: Ultralytics' convention (twice thop's multiply-adds, on the unfused model),
  with every operation of a GE unit counted (:mod:`ge_nas.yolo.op_count`).
* Latency: median batch-1 forward time of the fused model in the chosen runtime, and its
  ratio over the baseline's with a 95 % interval, from ABBA rounds (:mod:`ge_nas.yolo.latency`).
* Memory: peak activation memory of one batch-1 inference forward (:mod:`ge_nas.yolo.memory`).

A cost that cannot be measured raises :class:`~ge_nas.errors.CostError`; none is ever 0.

Example:
    >>> meter = CostMeter(baseline, imgsz=128, backend="onnxruntime")  # doctest: +SKIP
    >>> cost = meter.measure(candidate_model, candidate.key)  # doctest: +SKIP
    >>> cost.latency_ratio, (cost.latency_ratio_low, cost.latency_ratio_high)  # doctest: +SKIP
    (1.013, (0.998, 1.027))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ge_nas.yolo.latency import (
    LATENCY_ROUNDS,
    LATENCY_WARMUP,
    Runner,
    export_name,
    inference_copy,
    paired_latency,
    prepare_runner,
)
from ge_nas.yolo.memory import peak_activation_mb
from ge_nas.yolo.op_count import count_ops

__all__ = ["Cost", "CostMeter", "count_gflops", "inference_copy", "measure_cost"]


@dataclass(frozen=True)
class Cost:
    """One architecture's costs, named as a trial record stores them; latency ratios are over the baseline's."""

    params: int
    gflops: float
    latency_ms: float
    latency_ratio: float
    latency_ratio_low: float  # 95 % interval of latency_ratio
    latency_ratio_high: float
    memory_mb: float


class CostMeter:
    """Measures candidates' costs against one baseline, the same way for every candidate of a study.

    The baseline is made ready once (exported and loaded, for the ONNX backends); each
    candidate is then timed against it in ABBA rounds.

    Args:
        baseline: the architecture without GE, built.
        imgsz: the proxy image size: GFLOPs, latency and memory are measured there.
        device: where torch latency and memory are measured ('cpu', '0', ...).
        backend: the latency runtime, one of :data:`ge_nas.yolo.latency.BACKEND_PACKAGES`.
        exports: folder that caches ONNX exports, one per architecture (None: exported in memory).
        keep_exports: leave the exports there after timing.
        rounds: ABBA rounds per candidate.
    """

    def __init__(
        self,
        baseline: torch.nn.Module,
        imgsz: int,
        device: str = "cpu",
        backend: str = "torch",
        exports: Path | None = None,
        keep_exports: bool = False,
        rounds: int = LATENCY_ROUNDS,
        warmup: int = LATENCY_WARMUP,
    ) -> None:
        self.imgsz, self.device, self.backend = imgsz, device, backend
        self.exports, self.keep_exports = exports, keep_exports
        self.rounds, self.warmup = rounds, warmup
        self.baseline = self._runner(baseline, "base")

    def measure(self, model: torch.nn.Module, key: str = "candidate") -> Cost:
        """Parameters, GFLOPs, latency against the baseline, and peak memory of ``model`` (architecture ``key``)."""
        latency = paired_latency(self._runner(model, key), self.baseline, self.rounds, self.warmup)
        return Cost(
            params=sum(p.numel() for p in model.parameters()),
            gflops=count_gflops(model, self.imgsz),
            latency_ms=latency.candidate_ms,
            latency_ratio=latency.ratio,
            latency_ratio_low=latency.low,
            latency_ratio_high=latency.high,
            memory_mb=peak_activation_mb(model, self.imgsz, self.device),
        )

    def _runner(self, model: torch.nn.Module, key: str) -> Runner:
        cache = None if self.exports is None else self.exports / export_name(key, self.imgsz)
        return prepare_runner(model, self.imgsz, self.backend, self.device, cache, self.keep_exports)


def measure_cost(
    model: torch.nn.Module,
    baseline: torch.nn.Module,
    imgsz: int,
    device: str = "cpu",
    backend: str = "torch",
    rounds: int = LATENCY_ROUNDS,
) -> Cost:
    """The costs of one ``model`` against ``baseline``: a :class:`CostMeter` used once."""
    return CostMeter(baseline, imgsz, device, backend, rounds=rounds).measure(model)


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
