"""Costs: every operation of a GE unit counted, as by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from ultralytics.utils.torch_utils import get_flops

from ge_nas.errors import CostError
from ge_nas.layers.gather_excite import GatherExcite, gather_excite_ops
from ge_nas.space.candidate import Candidate, Placement
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import load_space
from ge_nas.yolo.costs import count_gflops
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.op_count import count_ops

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
