"""Latency against the baseline, with error bars, in the runtime a user deploys.

A candidate's latency only means something next to the baseline's, timed on the same
machine at the same moment: absolute times drift on a shared machine by more than a GE
unit costs. So the candidate (A) and the baseline (B) run one batch-1 forward each per
round, in alternating order (A B, then B A: ABBA), which cancels drift and any advantage
of running first or second. The figure is the median over rounds of each round's ratio
A/B, with a 95 % bootstrap interval over rounds: a ratio whose interval holds 1 is not a
measured difference.

Backends (``--latency-backend``):

* ``torch``: PyTorch eager, the fused eval model, on the search device;
* ``onnxruntime``: the fused model exported to ONNX (opset :data:`ONNX_OPSET`, static
  1x3xSxS input at the proxy image size), run by ONNX Runtime on the CPU;
* ``openvino``: the same ONNX file compiled by OpenVINO for the CPU;
* ``tensorrt``: the same ONNX file built into a TensorRT engine (FP32) on the GPU.

An export is cached in a folder (the study's ``exports/``) under the architecture's
name and removed once loaded, unless kept; the baseline is loaded once per process.

Example:
    >>> runner = prepare_runner(model, imgsz=128, backend="onnxruntime")  # doctest: +SKIP
    >>> paired_latency(runner, baseline_runner).ratio  # doctest: +SKIP
    1.012
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import io
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from ultralytics.nn.modules.head import Detect

from ge_nas.errors import CostError, InputError
from ge_nas.yolo.console import quiet
from ge_nas.yolo.devices import torch_device

__all__ = [
    "BACKEND_PACKAGES",
    "LATENCY_ROUNDS",
    "LATENCY_ROUNDS_SHOWN_ONLY",
    "LATENCY_WARMUP",
    "ONNX_OPSET",
    "PairedLatency",
    "Runner",
    "bootstrap_interval",
    "check_backend",
    "export_copy",
    "export_name",
    "inference_copy",
    "onnx_bytes",
    "paired_latency",
    "prepare_runner",
]

# Rounds of A/B pairs per candidate, chosen by measurement (benchmarks/costs.py, RESULTS.md section 8):
# on a shared 2-core CPU, yolov8n at 128 px against itself read within ±2 % in every repeat at 200
# rounds with torch and ONNX Runtime (at 100, ONNX Runtime once read 1.024), at about 3 s a
# candidate with torch and 1.3 s with ONNX Runtime.
LATENCY_ROUNDS = 200
# When latency neither ranks nor limits candidates it is shown for information only: fewer rounds,
# an interval about three times as wide, stored and shown as measured.
LATENCY_ROUNDS_SHOWN_ONLY = 20
LATENCY_WARMUP = 10
# ONNX opset of the exports: supported by ONNX Runtime >= 1.14, OpenVINO >= 2023 and TensorRT >= 8.6.
ONNX_OPSET = 17
# The packages each backend needs, as imported: torch's ONNX exporter needs onnx.
BACKEND_PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": (),
    "onnxruntime": ("onnx", "onnxruntime"),
    "openvino": ("onnx", "openvino"),
    "tensorrt": ("onnx", "tensorrt"),
}
_CONFIDENCE = 0.95
_RESAMPLES = 2000

# One forward of a prepared model on its fixed input, finished when it returns.
Runner = Callable[[], object]


@dataclass(frozen=True)
class PairedLatency:
    """A candidate's latency and its ratio over the baseline's, timed in ABBA rounds."""

    candidate_ms: float  # median over rounds
    baseline_ms: float
    ratio: float  # median over rounds of candidate / baseline in the same round
    low: float  # 95 % bootstrap interval of that median, over rounds
    high: float


def check_backend(backend: str, device: str) -> None:
    """Refuse a backend that cannot run here, in one line that says what to do instead.

    Raises:
        InputError: its package is not installed, or TensorRT without a GPU to run on.
    """
    missing = [package for package in BACKEND_PACKAGES[backend] if importlib.util.find_spec(package) is None]
    if missing:
        raise InputError(
            f"--latency-backend {backend}: the {' and '.join(missing)} package{'s are' if len(missing) > 1 else ' is'} "
            f"not installed; pip install {' '.join(missing)}, or use --latency-backend torch"
        )
    if backend == "tensorrt" and torch_device(device).type != "cuda":
        raise InputError(
            f"--latency-backend tensorrt: needs a GPU, and the search runs on {device}; "
            "give --device 0, or use --latency-backend onnxruntime"
        )


def paired_latency(
    candidate: Runner, baseline: Runner, rounds: int = LATENCY_ROUNDS, warmup: int = LATENCY_WARMUP
) -> PairedLatency:
    """Time ``candidate`` against ``baseline`` in ``rounds`` ABBA rounds, after ``warmup`` of each."""
    if rounds < 2:
        raise ValueError(f"rounds must be at least 2 (one AB and one BA), got {rounds}")
    for _ in range(warmup):
        candidate()
        baseline()
    times: dict[str, list[float]] = {"candidate": [], "baseline": []}
    runners = {"candidate": candidate, "baseline": baseline}
    for n in range(rounds):
        for name in ("candidate", "baseline") if n % 2 == 0 else ("baseline", "candidate"):
            start = time.perf_counter()
            runners[name]()
            times[name].append((time.perf_counter() - start) * 1000)
    ratios = np.array(times["candidate"]) / np.array(times["baseline"])
    low, high = bootstrap_interval(ratios)
    return PairedLatency(
        candidate_ms=statistics.median(times["candidate"]),
        baseline_ms=statistics.median(times["baseline"]),
        ratio=float(np.median(ratios)),
        low=low,
        high=high,
    )


def bootstrap_interval(
    ratios: np.ndarray, confidence: float = _CONFIDENCE, resamples: int = _RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of ``ratios``: rounds drawn with replacement.

    Seeded, so the same timings always give the same interval.
    """
    rng = np.random.default_rng(seed)
    medians = np.median(ratios[rng.integers(0, len(ratios), (resamples, len(ratios)))], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(low), float(high)


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy in eval mode with Conv+BN fused (Ultralytics models fuse themselves), as a deployed model runs."""
    fused = copy.deepcopy(model).eval()
    if not hasattr(fused, "fuse"):  # any other module (a single layer, a test's model) runs as it is
        return fused
    with quiet():
        return fused.fuse(verbose=False)


def export_copy(model: nn.Module) -> nn.Module:
    """The fused inference copy, its head set to export as Ultralytics exports to ONNX (decoded predictions)."""
    exported = inference_copy(model)
    for module in exported.modules():
        if isinstance(module, Detect):  # Segment, Pose, OBB and YOLO26's heads are Detects too
            module.export, module.format, module.dynamic = True, "onnx", False
    return exported


def export_name(key: str, imgsz: int) -> str:
    """File name of an architecture's export: its key is long and full of colons, so a hash of it."""
    return f"{hashlib.sha1(key.encode()).hexdigest()[:16]}-{imgsz}.onnx"


def onnx_bytes(model: nn.Module, imgsz: int, cache: Path | None = None) -> bytes:
    """The fused ``model`` as ONNX (static 1x3xSxS input ``images``, one output), from ``cache`` if there.

    A new export is written to ``cache`` (when given) under a temporary name first and then
    renamed, so another worker never reads half a file.
    """
    if cache is not None:
        with contextlib.suppress(FileNotFoundError):  # absent, or removed by another worker just now
            return cache.read_bytes()
    exported = export_copy(model)
    channels = next(exported.parameters()).shape[1]
    buffer = io.BytesIO()
    # The trace is meant to fix the input size; torch's warnings about that and about its legacy exporter
    # (the one that exports Ultralytics models) would only clutter a search's output.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            exported,
            (torch.zeros(1, channels, imgsz, imgsz),),
            buffer,
            opset_version=ONNX_OPSET,
            input_names=["images"],
            output_names=["output0"],
            dynamo=False,
        )
    data = buffer.getvalue()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache.parent, suffix=".part", delete=False) as part:
            part.write(data)
        os.replace(part.name, cache)
    return data


def prepare_runner(
    model: nn.Module,
    imgsz: int,
    backend: str = "torch",
    device: str = "cpu",
    cache: Path | None = None,
    keep_export: bool = False,
) -> Runner:
    """``model`` ready to run one batch-1 forward at ``imgsz`` in ``backend``; the export is removed unless kept.

    Raises:
        CostError: the backend could not load or run the model.
    """
    if backend == "torch":
        return _torch_runner(model, imgsz, torch_device(device))
    data = onnx_bytes(model, imgsz, cache)
    if cache is not None and not keep_export:
        cache.unlink(missing_ok=True)
    channels = next(model.parameters()).shape[1]
    image = np.zeros((1, channels, imgsz, imgsz), dtype=np.float32)
    try:
        runner = _BACKENDS[backend](data, image, device)
        runner()
    except Exception as error:
        raise CostError(f"{backend} could not run the exported model: {error}") from error
    return runner


def _torch_runner(model: nn.Module, imgsz: int, device: torch.device) -> Runner:
    fused = inference_copy(model).to(device)
    image = torch.zeros(1, next(fused.parameters()).shape[1], imgsz, imgsz, device=device)

    def run() -> None:
        with torch.inference_mode():
            fused(image)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return run


def _onnxruntime_runner(data: bytes, image: np.ndarray, device: str) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # Idle threads that spin steal the CPU from the other model of the pair; on a shared machine they make it noisier.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: image}
    return lambda: session.run(None, feed)


def _openvino_runner(data: bytes, image: np.ndarray, device: str) -> Runner:
    import openvino

    with tempfile.TemporaryDirectory() as folder:  # OpenVINO reads ONNX from a file
        path = Path(folder) / "model.onnx"
        path.write_bytes(data)
        compiled = openvino.Core().compile_model(str(path), "CPU")
    request = compiled.create_infer_request()
    return lambda: request.infer({0: image})


def _tensorrt_runner(data: bytes, image: np.ndarray, device: str) -> Runner:
    import tensorrt as trt

    cuda = torch_device(device)
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(data):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CostError(f"TensorRT could not parse the ONNX export: {errors}")
    with torch.cuda.device(cuda):
        serialized = builder.build_serialized_network(network, builder.create_builder_config())
        if serialized is None:
            raise CostError("TensorRT could not build an engine from the ONNX export")
        engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
        return _TensorRTRunner(engine, torch.from_numpy(image), cuda)


class _TensorRTRunner:
    """A TensorRT engine with its input and output buffers: torch tensors on the GPU, kept as long as it is."""

    def __init__(self, engine: Any, image: torch.Tensor, cuda: torch.device) -> None:
        import tensorrt as trt

        self.engine, self.context = engine, engine.create_execution_context()
        self.buffers = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                tensor = image.to(cuda)
            else:
                tensor = torch.empty(tuple(engine.get_tensor_shape(name)), dtype=torch.float32, device=cuda)
            self.context.set_tensor_address(name, tensor.data_ptr())
            self.buffers.append(tensor)
        self.stream = torch.cuda.Stream(cuda)

    def __call__(self) -> None:
        self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()


_BACKENDS: dict[str, Callable[[bytes, np.ndarray, str], Runner]] = {
    "onnxruntime": _onnxruntime_runner,
    "openvino": _openvino_runner,
    "tensorrt": _tensorrt_runner,
}
