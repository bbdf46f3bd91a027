"""Peak activation memory of one forward pass: batch 1, inference, the fused model at the proxy image size.

Measured the same way for every candidate of a study, and beyond the weights and the input:

* on a GPU, CUDA's caching allocator: the most memory allocated during the forward
  (``torch.cuda.max_memory_allocated``) minus what was allocated before it (weights, input),
  after one warm-up forward. Kernel workspaces (cuDNN) are included: they are real.
* on a CPU, which keeps no such statistics, an estimate from a traced forward: every
  tensor an operation produces is live from that operation to the last one that reads it
  (the model's outputs to the end); the figure is the largest sum of the bytes live at
  once. That is what an allocator that frees each tensor after its last use would need at
  its peak. It leaves out kernel workspaces and allocator overhead (caching,
  fragmentation), and counts a view or an in-place result as the storage it shares.

A GPU figure and a CPU figure are different measurements; do not mix them in one study.

Example:
    >>> peak_activation_mb(model, imgsz=128)  # doctest: +SKIP
    4.19
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ge_nas.errors import CostError
from ge_nas.yolo.devices import torch_device
from ge_nas.yolo.latency import inference_copy

__all__ = ["MB", "peak_activation_mb"]

MB = 1e6  # bytes: memory costs are stored in MB


def peak_activation_mb(model: nn.Module, imgsz: int, device: str = "cpu") -> float:
    """Peak activation memory (MB) of one batch-1 inference forward of the fused ``model`` at ``imgsz``.

    Raises:
        CostError: the forward failed, or allocated nothing.
    """
    where = torch_device(device)
    fused = inference_copy(model).to(where)
    image = torch.zeros(1, next(fused.parameters()).shape[1], imgsz, imgsz, device=where)
    try:
        peak = _cuda_peak(fused, image) if where.type == "cuda" else _traced_peak(fused, image)
    except Exception as error:
        raise CostError(f"could not measure the peak memory of {type(model).__name__}: {error}") from error
    if peak <= 0:
        raise CostError(f"the forward of {type(model).__name__} allocated {peak} bytes; it allocates more than 0")
    return peak / MB


def _cuda_peak(model: nn.Module, image: torch.Tensor) -> int:
    with torch.inference_mode():
        model(image)  # warm-up: lazy initialisation and cuDNN's choices stay out of the figure
        torch.cuda.synchronize(image.device)
        torch.cuda.reset_peak_memory_stats(image.device)
        before = torch.cuda.memory_allocated(image.device)
        model(image)
        torch.cuda.synchronize(image.device)
    return torch.cuda.max_memory_allocated(image.device) - before


def _traced_peak(model: nn.Module, image: torch.Tensor) -> int:
    not_activations = {_storage(t) for t in (*model.parameters(), *model.buffers(), image)}
    with torch.inference_mode():
        model(image)  # warm-up: Ultralytics caches anchors on the first forward
        with _Liveness(not_activations) as trace:
            outputs = model(image)
        trace.read(tree_flatten(outputs)[0])
    return trace.peak()


def _storage(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


class _Liveness(TorchDispatchMode):
    """Records, per storage an operation produces, its bytes and the first and last operation that touch it."""

    def __init__(self, not_activations: set[int]) -> None:
        super().__init__()
        self.not_activations = not_activations
        self.step = 0
        self.current: dict[int, list[int]] = {}  # storage address -> [first step, last step, bytes]
        self.intervals: list[list[int]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        self.step += 1
        inputs = {_storage(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        self.read(tree_flatten((args, kwargs))[0])
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or _storage(t) in self.not_activations:
                continue
            address = _storage(t)
            if address in inputs and address in self.current:  # in place, or a view: the same storage
                self.current[address][1] = self.step
            else:  # a new storage (possibly where a freed one was)
                interval = [self.step, self.step, t.untyped_storage().nbytes()]
                self.current[address] = interval
                self.intervals.append(interval)
        return out

    def read(self, tensors: list[Any]) -> None:
        """Mark ``tensors`` as read at the current step (the model's outputs: read after the last operation)."""
        for t in tensors:
            if isinstance(t, torch.Tensor) and _storage(t) in self.current:
                self.current[_storage(t)][1] = self.step

    def peak(self) -> int:
        """The largest number of bytes live at one step."""
        change = [0] * (self.step + 2)
        for first, last, size in self.intervals:
            change[first] += size
            change[last + 1] -= size
        live = peak = 0
        for delta in change:
            live += delta
            peak = max(peak, live)
        return peak
