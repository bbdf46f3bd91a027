"""Costs: GE operations counted by hand, latency with error bars in the deployed runtime, peak memory."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from ultralytics.utils.torch_utils import get_flops

from ge_nas.errors import CostError, InputError
from ge_nas.layers.gather_excite import GatherExcite, gather_excite_ops
from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
from ge_nas.space.candidate import Candidate, Placement
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import load_space
from ge_nas.storage.database import open_storage
from ge_nas.storage.records import cost_value
from ge_nas.storage.studies import open_study
from ge_nas.yolo.costs import Cost, count_gflops, measure_cost
from ge_nas.yolo.latency import bootstrap_interval, inference_copy, paired_latency, prepare_runner
from ge_nas.yolo.memory import peak_activation_mb
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.op_count import count_ops
from tests.conftest import QUICK

# One GE unit on 32 channels (θ+ MLP: r = 2), counted by hand with the formula in the README.
# 16x16 map: C*H*W = 8192, so interpolation 8192, sigmoid 3 * 8192 = 24576 and multiply 8192
# (40960 together) whenever the gate is interpolated; a 1x1 gate: sigmoid 3 * 32 = 96.
# 12x20 map: C*H*W = 7680, the three together 38400.
HAND_COUNTS = [
    # θ−: pool C * S(H) * S(W) + C*h*w, with h = ceil(H/e) and S(H) = H + (h - 1)(e - 1)
    ("theta-minus", 2, (16, 16), 32 * 23 * 23 + 32 * 8 * 8 + 40960),  # 59936
    ("theta-minus", 4, (16, 16), 32 * 25 * 25 + 32 * 4 * 4 + 40960),  # 61472
    ("theta-minus", 8, (16, 16), 32 * 23 * 23 + 32 * 2 * 2 + 40960),  # 58016
    ("theta-minus", 0, (16, 16), 32 * 257 + 96 + 8192),  # mean over 256 + 1 divide; 16512
    ("theta-minus", 2, (12, 20), 32 * 17 * 29 + 32 * 6 * 10 + 38400),  # 56096
    ("theta-minus", 4, (12, 20), 32 * 18 * 32 + 32 * 3 * 5 + 38400),  # 57312
    ("theta-minus", 8, (12, 20), 32 * 19 * 34 + 32 * 2 * 3 + 38400),  # 59264
    ("theta-minus", 0, (12, 20), 32 * 241 + 96 + 7680),  # 15488
    # θ: per stride-2 depthwise conv to h x w: 9*C*h*w + BN 4*C*h*w, ReLU C*h*w between convs
    ("theta", 2, (16, 16), 13 * 32 * 64 + 40960),  # 8x8; 67584
    ("theta", 4, (16, 16), 13 * 32 * 64 + 32 * 64 + 13 * 32 * 16 + 40960),  # 8x8, 4x4; 76288
    ("theta", 8, (16, 16), 13 * 32 * 64 + 32 * 64 + 13 * 32 * 16 + 32 * 16 + 13 * 32 * 4 + 40960),  # 78464
    ("theta", 0, (16, 16), 37504 + 32 * (4 + 1) + 96 + 8192),  # the extent-8 gather, mean of 2x2; 45952
    ("theta", 2, (12, 20), 13 * 32 * 60 + 38400),  # 6x10; 63360
    ("theta", 4, (12, 20), 13 * 32 * 60 + 32 * 60 + 13 * 32 * 15 + 38400),  # 6x10, 3x5; 71520
    ("theta", 8, (12, 20), 13 * 32 * 60 + 32 * 60 + 13 * 32 * 15 + 32 * 15 + 13 * 32 * 6 + 38400),  # 2x3; 74496
    ("theta", 0, (12, 20), 36096 + 32 * (6 + 1) + 96 + 7680),  # 44096
    # θ+: θ's gather, then the MLP on the h x w context: 2 * C * r * h * w, ReLU r * h * w
    ("theta-plus", 2, (16, 16), 26624 + 2 * 32 * 2 * 64 + 2 * 64 + 40960),  # 75904
    ("theta-plus", 4, (16, 16), 35328 + 2 * 32 * 2 * 16 + 2 * 16 + 40960),  # 78368
    ("theta-plus", 8, (16, 16), 37504 + 2 * 32 * 2 * 4 + 2 * 4 + 40960),  # 78984
    ("theta-plus", 0, (16, 16), 37504 + 32 * 4 + 32 * 5 + 2 * 32 * 2 + 2 + 96 + 8192),  # ReLU after the gather; 46210
    ("theta-plus", 2, (12, 20), 24960 + 2 * 32 * 2 * 60 + 2 * 60 + 38400),  # 71160
    ("theta-plus", 4, (12, 20), 33120 + 2 * 32 * 2 * 15 + 2 * 15 + 38400),  # 73470
    ("theta-plus", 8, (12, 20), 36096 + 2 * 32 * 2 * 6 + 2 * 6 + 38400),  # 75276
    ("theta-plus", 0, (12, 20), 36096 + 32 * 6 + 32 * 7 + 2 * 32 * 2 + 2 + 96 + 7680),  # 44418
]


@pytest.mark.parametrize(("variant", "extent", "size", "ops"), HAND_COUNTS)
def test_every_operation_of_a_ge_unit_is_counted_as_by_hand(
    variant: str, extent: int, size: tuple[int, int], ops: int
) -> None:
    unit = GatherExcite(32, variant, extent)
    assert count_ops(unit, torch.zeros(1, 32, *size)) == ops
    assert gather_excite_ops(32, variant, extent, *size).total == ops


@pytest.fixture(scope="module")
def space() -> object:
    return load_space("yolov8n_ge")


def model_of(space: object, placements: dict[int, Placement]) -> nn.Module:
    return build_model(generate_model_yaml(space, Candidate.of(placements)).model)


def test_a_theta_minus_unit_is_no_longer_free(space: object) -> None:
    baseline = model_of(space, {})
    after_sppf = model_of(space, {9: Placement("theta-minus", 0, "after")})  # 256 channels at 4x4 (128 px)
    in_bottleneck = model_of(space, {2: Placement("theta-minus", 2, "inside")})  # 16 channels at 32x32
    # Without GE, Ultralytics' own figure; thop alone gave 9mg the same.
    assert count_gflops(baseline, 128) == get_flops(baseline, 128) == pytest.approx(0.354203648, abs=1e-12)
    assert get_flops(after_sppf, 128) == get_flops(baseline, 128)
    # mean 256 * (16 + 1), sigmoid 3 * 256, multiply 256 * 16: 9216 multiply-adds, 2 FLOPs each
    assert count_gflops(after_sppf, 128) == pytest.approx(0.354203648 + 2 * 9216 / 1e9, abs=1e-12)
    # pool 16 * 47 * 47 + 16 * 16 * 16, interpolation, sigmoid and multiply 16 * 1024 * (1 + 3 + 1)
    assert count_gflops(in_bottleneck, 128) == pytest.approx(0.354203648 + 2 * 121360 / 1e9, abs=1e-12)


def test_a_counter_that_fails_raises_instead_of_returning_zero() -> None:
    broken = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(5, 5))  # the Linear cannot take the conv's output
    assert get_flops(broken, 32) == 0.0  # what Ultralytics' counter says: the architecture would look free
    with pytest.raises(CostError, match="could not count the operations of Sequential"):
        count_gflops(broken, 32)
    with pytest.raises(CostError, match="gave 0"):
        count_ops(nn.Sequential(nn.ReLU()), torch.zeros(1, 3, 8, 8))  # nothing thop counts


def test_the_latency_ratio_is_an_objective_of_its_own() -> None:
    # Milliseconds drift with the machine's load between trials; the ratio was timed against the baseline at once.
    cost = Cost(
        params=1,
        gflops=0.35,
        latency_ms=7.2,
        latency_ratio=1.02,
        latency_ratio_low=1.01,
        latency_ratio_high=1.03,
        memory_mb=1,
    )
    objectives = Objectives.parse("map50-95,latency,latency-ratio")
    assert [cost_value(cost, name) for name in objectives.costs] == [7.2, 1.02]


def test_rounds_alternate_which_model_runs_first() -> None:
    calls: list[str] = []
    paired_latency(lambda: calls.append("A"), lambda: calls.append("B"), rounds=4, warmup=1)
    assert "".join(calls) == "AB" + "AB" + "BA" + "AB" + "BA"  # warm-up, then ABBA ABBA


def test_the_interval_of_an_a_a_comparison_holds_one_and_narrows_with_rounds() -> None:
    rng = np.random.default_rng(1)
    few, many = (np.exp(rng.normal(0, 0.05, n)) for n in (20, 400))  # same model both sides: noise only
    few_low, few_high = bootstrap_interval(few)
    many_low, many_high = bootstrap_interval(many)
    assert few_low < 1 < few_high and many_low < 1 < many_high
    assert many_high - many_low < (few_high - few_low) / 2


def test_a_model_with_an_extra_heavy_operation_reads_slower_than_the_baseline() -> None:
    x = torch.randn(256, 256)

    def baseline() -> None:
        x @ x

    def heavier() -> None:
        for _ in range(3):
            x @ x

    latency = paired_latency(heavier, baseline, rounds=30, warmup=3)
    assert 1 < latency.low <= latency.ratio <= latency.high
    assert latency.candidate_ms > latency.baseline_ms


def test_onnxruntime_times_the_exported_candidate_and_removes_its_export(space: object, tmp_path: Path) -> None:
    candidate = model_of(space, {9: Placement("theta-plus", 4, "after"), 2: Placement("theta-minus", 2, "inside")})
    export = tmp_path / "exports" / "candidate.onnx"
    runner = prepare_runner(candidate, 64, "onnxruntime", cache=export)
    assert not export.exists()  # removed once loaded
    with torch.inference_mode():
        expected = inference_copy(candidate)(torch.zeros(1, 3, 64, 64))[0].numpy()
    (predictions,) = runner()
    assert predictions.shape == expected.shape and np.allclose(predictions, expected, rtol=1e-4, atol=1e-3)
    prepare_runner(candidate, 64, "onnxruntime", cache=export, keep_export=True)
    assert export.stat().st_size > 1e6  # kept: the weights are in it

    cost = measure_cost(candidate, model_of(space, {}), 64, backend="onnxruntime", rounds=10)
    assert cost.latency_ms > 0 and cost.latency_ratio_low <= cost.latency_ratio <= cost.latency_ratio_high


def test_peak_memory_counts_the_tensors_live_at_once() -> None:
    conv_then_relu = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    in_place = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True))
    # 8 x 16 x 16 float32 = 8192 bytes: the conv's output and the ReLU's, or one storage when in place
    assert peak_activation_mb(conv_then_relu, 16) == 2 * 8192 / 1e6
    assert peak_activation_mb(in_place, 16) == 8192 / 1e6


def test_peak_memory_grows_with_the_input_and_with_the_model(space: object) -> None:
    yolov8n = model_of(space, {})
    yolov8s = build_model(generate_model_yaml(load_space("yolov8s_ge"), Candidate.baseline()).model)
    assert peak_activation_mb(yolov8n, 64) < peak_activation_mb(yolov8n, 128) < peak_activation_mb(yolov8n, 256)
    assert peak_activation_mb(yolov8n, 128) < peak_activation_mb(yolov8s, 128)


def ge_nas(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ge_nas", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def backend_available(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None and (backend != "tensorrt" or torch.cuda.is_available())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--latency-backend", "openvino"], "--latency-backend openvino: the openvino package is not installed"),
        (["--latency-backend", "tensorrt"], "--latency-backend tensorrt: "),
        (["--latency-backend", "tflite"], "--latency-backend 'tflite': use one of torch, onnxruntime"),
        (["--max-memory", "-1"], "--max-memory -1: a budget is a positive number"),
    ],
    ids=["openvino", "tensorrt", "unknown", "negative budget"],
)
def test_a_backend_that_cannot_run_here_is_a_one_line_error_before_any_study(
    tmp_path: Path, options: list[str], message: str
) -> None:
    if options[0] == "--latency-backend" and backend_available(options[1]):
        pytest.skip(f"{options[1]} can run on this machine")
    result = ge_nas(tmp_path, "search", "--storage", f"sqlite:///{tmp_path / 'x.db'}", *options)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {message}") and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "studies").exists()


def test_a_study_is_not_resumed_with_another_latency_backend(tiny_dataset: Path, tmp_path: Path) -> None:
    objectives = Objectives("map50-95", ("latency",))

    def settings(backend: str) -> dict[str, object]:
        config = SearchConfig(
            space=load_space("yolov8n_small"),
            data_yaml=tiny_dataset,
            objectives=objectives,
            proxy=ProxySettings(),
            trials=1,
            study_name="s",
            storage_url="",
            workdir=tmp_path,
            latency_backend=backend,
        )
        return config.comparable_settings()

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    open_study(storage, "s", objectives.names, objectives.directions, settings("onnxruntime"))
    with pytest.raises(InputError, match=r"created with costs\.latency_backend = 'onnxruntime', not 'torch'"):
        open_study(storage, "s", objectives.names, objectives.directions, settings("torch"))
    storage.engine.dispose()


def test_a_search_timed_in_onnxruntime_shows_latency_intervals(tiny_dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(
        "base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta-plus]\nextents: [global]\n"  # 2 architectures
    )
    search = ge_nas(
        tmp_path,
        "search",
        *("--dataset", str(tiny_dataset), "--space", "space.yaml", "--study", "ort"),
        *("--objectives", "map50-95,latency", "--latency-backend", "onnxruntime"),
        *("--trials", "3", "--epochs", "1", "--imgsz", "64", "--batch", "8", "--sampler", "grid", *QUICK),
    )
    assert search.returncode == 0, search.stderr
    assert re.search(r"\d\.\d{3}x.*\(\d\.\d{3}-\d\.\d{3}\)", search.stdout, re.DOTALL)  # the front, with intervals
    shown = ge_nas(tmp_path, "show", "--study", "ort", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert sorted(row["code"] for row in rows) == ["9pg", "base"]
    for row in rows:
        assert row["latency_ratio_low"] <= row["latency_ratio"] <= row["latency_ratio_high"]
        assert row["memory_mb"] > 0 and row["latency_ms"] > 0
    assert not list((tmp_path / "studies" / "ort" / "exports").iterdir())  # every export removed once timed
    table = ge_nas(tmp_path, "show", "--study", "ort")
    assert "latency ratio (95% interval)" in table.stdout and "memory MB" in table.stdout
