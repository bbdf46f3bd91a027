"""The other attention modules (SE, ECA, CBAM, Coordinate Attention, SimAM): their papers' function, against
timm where timm has the module, their parameter and operation counts, an open gate, export."""

from __future__ import annotations

import onnx
import onnxruntime
import pytest
import torch
from timm.layers.cbam import CbamModule
from timm.layers.coord_attn import CoordAttn
from timm.layers.eca import EcaModule
from timm.layers.squeeze_excite import SEModule
from torch import nn

from ge_nas.layers.cbam import ConvBlockAttention
from ge_nas.layers.choices import MODULES
from ge_nas.layers.coord_attention import CoordinateAttention
from ge_nas.layers.eca import EfficientChannelAttention, eca_kernel_size
from ge_nas.layers.registry import UNIT_CLASSES, make_unit, unit_param_count
from ge_nas.layers.simam import SimAM
from ge_nas.layers.squeeze_excite import SqueezeExcite
from ge_nas.layers.unit import OPEN_GATE
from ge_nas.yolo.op_count import count_ops

OTHERS = [name for name in MODULES if name != "ge"]
# Square, rectangular, odd, and the 1x1 and 2x2 maps of P5 at small image sizes.
SIZES = [(20, 20), (12, 20), (13, 7), (2, 2), (1, 1)]


def randomised(unit: nn.Module) -> nn.Module:
    """The unit with every parameter and BatchNorm statistic drawn at random (no zeros to hide a mismatch)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for tensor in [*unit.parameters(), *unit.buffers()]:
            if tensor.dtype.is_floating_point:
                tensor.copy_(torch.rand_like(tensor) + 0.5)
    return unit.eval()


@pytest.mark.parametrize("module", OTHERS)
@pytest.mark.parametrize("size", SIZES)
def test_output_has_the_input_shape_and_dtype_for_any_map_size(module: str, size: tuple[int, int]) -> None:
    unit = make_unit(64, module, 0).double().eval()
    x = torch.randn(2, 64, *size, dtype=torch.float64)
    y = unit(x)
    assert y.shape == x.shape and y.dtype == torch.float64 and torch.isfinite(y).all()


@pytest.mark.parametrize("module", OTHERS)
def test_gradients_reach_input_and_parameters(module: str) -> None:
    torch.manual_seed(0)  # some draws leave all four hidden units of SE's MLP dead for a whole batch
    unit = make_unit(64, module, 0).train()
    x = torch.randn(4, 64, 12, 16, requires_grad=True)
    unit(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, parameter in unit.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("module", OTHERS)
def test_an_opened_gate_learns_at_once(module: str) -> None:
    """The weights open_gate zeroes get gradients on the first step (and pass them on from the second)."""
    unit = make_unit(64, module, 0).train()
    unit.open_gate()
    zeroed = [name for name, p in unit.named_parameters() if p.dim() > 1 and not p.any()]
    assert zeroed or module == "simam"  # SimAM has nothing to open
    unit(torch.randn(4, 64, 12, 16, requires_grad=True)).square().sum().backward()
    assert all(dict(unit.named_parameters())[name].grad.abs().sum() > 0 for name in zeroed)


def test_squeeze_excite_equals_timm() -> None:
    ours = randomised(SqueezeExcite(64))
    reference = SEModule(64, rd_channels=4).eval()  # C/16, biases: the paper's (and timm's default) form
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 64, 13, 18)
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize(("channels", "kernel"), [(16, 3), (32, 3), (64, 3), (128, 5), (256, 5), (512, 5), (1024, 5)])
def test_eca_kernel_follows_the_papers_formula_and_equals_timm(channels: int, kernel: int) -> None:
    assert eca_kernel_size(channels) == kernel
    ours = EfficientChannelAttention(channels).eval()  # its bias starts at 0: the paper's bias-free function
    reference = EcaModule(kernel_size=kernel).eval()
    reference.conv.weight.data.copy_(ours.conv.weight)
    x = torch.randn(2, channels, 9, 11)
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


def test_cbam_equals_timm_with_the_papers_mlp_biases() -> None:
    ours = randomised(ConvBlockAttention(64))
    reference = CbamModule(64, rd_channels=4, mlp_bias=True).eval()
    parts = {"channel.fc1": ours.fc1, "channel.fc2": ours.fc2, "spatial.conv.conv": ours.spatial}
    parts["spatial.conv.bn"] = ours.spatial_norm
    reference.load_state_dict(
        {f"{prefix}.{name}": tensor for prefix, part in parts.items() for name, tensor in part.state_dict().items()}
    )
    x = torch.randn(2, 64, 13, 18)
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-6, atol=1e-6)


def test_coordinate_attention_equals_timm_in_the_papers_settings() -> None:
    ours = randomised(CoordinateAttention(64))
    # The authors' code: reduction 32 with at least 8 hidden channels, biases, BatchNorm, hard swish.
    reference = CoordAttn(64, rd_channels=8, bias=True, act_layer=nn.Hardswish).eval()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 64, 13, 18)
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-6, atol=1e-6)


def test_simam_equals_the_papers_code() -> None:
    def papers_simam(x: torch.Tensor, e_lambda: float = 1e-4) -> torch.Tensor:  # Yang et al., 2021, Figure 3
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
        v = d.sum(dim=[2, 3], keepdim=True) / n
        e_inv = d / (4 * (v + e_lambda)) + 0.5
        return x * torch.sigmoid(e_inv)

    x = torch.randn(2, 64, 13, 18)
    torch.testing.assert_close(SimAM(64)(x), papers_simam(x), rtol=0, atol=0)


@pytest.mark.parametrize("channels", [16, 64, 256])
def test_parameter_counts_match_the_papers_formulas(channels: int) -> None:
    r, mip, k = max(1, round(channels / 16)), max(8, channels // 32), eca_kernel_size(channels)
    expected = {
        "se": 2 * channels * r + r + channels,  # the paper's 2C²/r weights, plus the biases
        "eca": k + 1,  # the paper's k weights, plus our one bias (the open gate)
        "cbam": 2 * channels * r + r + channels + 2 * 7 * 7 + 2,  # shared MLP, 7x7 conv on 2 maps, BatchNorm
        "coord": channels * mip + mip + 2 * mip + 2 * (mip * channels + channels),
        "simam": 0,
    }
    for module, count in expected.items():
        unit = make_unit(channels, module, 0)
        assert sum(p.numel() for p in unit.parameters()) == count == unit_param_count(channels, module, 0), module


# One unit on 32 channels, 16x16 (C*H*W = 8192), counted by hand with the formulas in the layers' docstrings.
HAND_COUNTS = {
    # mean 32 * 257, MLP 2 * 32 * 2, ReLU 2, sigmoid 3 * 32, multiply 8192
    "se": 8224 + 128 + 2 + 96 + 8192,
    # mean 8224, conv1d with k = 3 over 32 channels 96, sigmoid 96, multiply 8192
    "eca": 8224 + 96 + 96 + 8192,
    # channel: mean 8224, MLP twice 4 * 32 * 2, ReLU 4, sum 32, sigmoid 96, multiply 8192;
    # spatial: mean over channels 256 * 33, 7x7 conv 98 * 256, BatchNorm 4 * 256, sigmoid 3 * 256, multiply 8192
    "cbam": 8224 + 256 + 4 + 32 + 96 + 8192 + 8448 + 25088 + 1024 + 768 + 8192,
    # row and column means 2 * 32 * 16 * 17; on 32 positions: encoder 8 * 32, BN 4 * 8, hard swish 4 * 8 each;
    # decoders 32 * 8 * 16 twice; sigmoids 3 * 32 * 32; two multiplies 2 * 8192
    "coord": 17408 + 8192 + 1024 + 1024 + 8192 + 3072 + 16384,
    # mean and variance 2 * 32 * 257; subtract, square, divide, + 0.5: 4 * 8192; + λ, · 4: 64; sigmoid 3 * 8192;
    # multiply 8192
    "simam": 16448 + 32768 + 64 + 24576 + 8192,
}


@pytest.mark.parametrize(("module", "ops"), HAND_COUNTS.items())
def test_every_operation_is_counted_as_by_hand(module: str, ops: int) -> None:
    unit = make_unit(32, module, 0)
    assert count_ops(unit, torch.zeros(1, 32, 16, 16)) == ops == unit.ops(16, 16).total


@pytest.mark.parametrize("module", OTHERS)
def test_an_opened_unit_scales_its_input_by_the_open_gate_everywhere(module: str) -> None:
    unit = randomised(make_unit(32, module, 0))
    unit.open_gate()
    x = torch.randn(2, 32, 9, 11)
    if module == "simam":  # nothing to open: its gate is the paper's function of the input
        assert not list(unit.parameters())
        return
    torch.testing.assert_close(unit(x), x * OPEN_GATE)


@pytest.mark.parametrize("module", OTHERS)
def test_exports_to_onnx_with_the_same_output(module: str, tmp_path) -> None:
    unit = randomised(make_unit(16, module, 0))
    x = torch.randn(1, 16, 12, 20)
    path = tmp_path / f"{module}.onnx"
    torch.onnx.export(unit, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)))
    (y,) = onnxruntime.InferenceSession(str(path)).run(None, {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(y), unit(x), rtol=1e-4, atol=1e-5)


def test_every_module_has_a_layer_under_its_yaml_name() -> None:
    assert {module.layer for module in MODULES.values()} == set(UNIT_CLASSES)


@pytest.mark.parametrize(("variant", "extent", "message"), [("sse", 0, "variant"), ("se", 4, "extent is 0")])
def test_unknown_module_or_an_extent_for_one_without_is_refused(variant: str, extent: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_unit(16, variant, extent)
