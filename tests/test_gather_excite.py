"""The Gather-Excite layer: shapes, gradients, export, and agreement with timm and the paper."""

from __future__ import annotations

import itertools

import onnx
import onnxruntime
import pytest
import torch
from timm.layers import GatherExcite as TimmGatherExcite

from ge_nas.layers.choices import EXTENTS, VARIANTS
from ge_nas.layers.gather_excite import GatherExcite, gather_excite_param_count

ALL_CHOICES = list(itertools.product(VARIANTS, EXTENTS))
# Square, rectangular, odd, and maps smaller than the extent (P5 of a 128 px image is 4x4).
SIZES = [(20, 20), (12, 20), (13, 7), (4, 4), (1, 1), (3, 5)]


@pytest.mark.parametrize(("variant", "extent"), ALL_CHOICES)
@pytest.mark.parametrize("size", SIZES)
def test_output_has_input_shape_for_any_map_size(variant: str, extent: int, size: tuple[int, int]) -> None:
    layer = GatherExcite(32, variant, extent).eval()
    x = torch.randn(2, 32, *size)
    assert layer(x).shape == x.shape


@pytest.mark.parametrize(("variant", "extent"), ALL_CHOICES)
def test_output_dtype_follows_input(variant: str, extent: int) -> None:
    layer = GatherExcite(16, variant, extent).double().eval()
    x = torch.randn(1, 16, 9, 11, dtype=torch.float64)
    assert layer(x).dtype == torch.float64


@pytest.mark.parametrize(("variant", "extent"), ALL_CHOICES)
def test_gradients_reach_input_and_parameters(variant: str, extent: int) -> None:
    torch.manual_seed(0)
    layer = GatherExcite(64, variant, extent).train()  # 64 channels: four hidden MLP units, not one
    x = torch.randn(4, 64, 32, 40, requires_grad=True)
    layer(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("extent", EXTENTS)
def test_theta_minus_equals_timm_reference(extent: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 24, 13, 18)
    ours = GatherExcite(24, "theta-minus", extent)
    reference = TimmGatherExcite(24, extent=extent, extra_params=False, use_mlp=False)
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize("channels", [16, 64, 256])
@pytest.mark.parametrize("extent", [2, 4, 8])
def test_parameter_counts_match_paper_formulas(channels: int, extent: int) -> None:
    n_conv = {2: 1, 4: 2, 8: 3}[extent]
    gather = n_conv * (9 * channels + 2 * channels)  # depthwise 3x3 weights + BN scale and shift
    r = channels // 16
    mlp = channels * r + r + r * channels + channels  # 1x1 convs C -> C/16 -> C with biases
    expected = {"theta-minus": 0, "theta": gather, "theta-plus": gather + mlp}
    for variant, count in expected.items():
        layer = GatherExcite(channels, variant, extent)
        assert (
            sum(p.numel() for p in layer.parameters()) == count == gather_excite_param_count(channels, variant, extent)
        )


def test_global_learned_gather_does_not_depend_on_map_size() -> None:
    layer = GatherExcite(8, "theta", 0).eval()
    for size in [(4, 4), (20, 20), (7, 31)]:
        gate_input = torch.randn(1, 8, *size)
        assert layer(gate_input).shape == gate_input.shape
    assert sum(p.numel() for p in layer.parameters()) == gather_excite_param_count(8, "theta", 0)


def test_global_gate_is_one_value_per_channel() -> None:
    layer = GatherExcite(4, "theta-minus", 0)
    x = torch.ones(1, 4, 6, 6)
    y = layer(x)
    assert torch.allclose(y, torch.full_like(x, torch.sigmoid(torch.tensor(1.0)).item()))


@pytest.mark.parametrize(("variant", "extent"), ALL_CHOICES)
def test_runs_under_jit_trace(variant: str, extent: int) -> None:
    layer = GatherExcite(16, variant, extent).eval()
    x = torch.randn(1, 16, 12, 20)
    traced = torch.jit.trace(layer, x, check_trace=False)
    torch.testing.assert_close(traced(x), layer(x))


@pytest.mark.parametrize(("variant", "extent"), [("theta-minus", 4), ("theta", 8), ("theta-plus", 0)])
def test_exports_to_onnx_with_same_output(variant: str, extent: int, tmp_path) -> None:
    layer = GatherExcite(16, variant, extent).eval()
    x = torch.randn(1, 16, 12, 20)
    path = tmp_path / "ge.onnx"
    torch.onnx.export(layer, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)))
    (y,) = onnxruntime.InferenceSession(str(path)).run(None, {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(y), layer(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("variant", "extent", "message"), [("theta-max", 2, "variant"), ("theta", 3, "extent")])
def test_unknown_choice_is_refused_with_allowed_values(variant: str, extent: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GatherExcite(16, variant, extent)
