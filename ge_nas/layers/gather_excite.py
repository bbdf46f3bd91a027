"""Gather-Excite attention (Hu, Shen, Albanie, Sun, Vedaldi, NeurIPS 2018).

A GE unit rescales a feature map by a gate computed from context gathered over an
*extent*: ``y = x * sigmoid(excite(gather(x)))``, with the gate brought back to the
input's size by nearest-neighbour interpolation.

Variants, in the paper's names:

* ``theta-minus`` (GE-θ−): parameter-free. Average pooling over the extent (kernel
  ``2e - 1``, stride ``e``, as timm does it), or the mean over H and W for global.
* ``theta`` (GE-θ): a learned gather, ``log2(e)`` stride-2 3x3 depthwise convolutions,
  each followed by BatchNorm, with ReLU between them but not after the last.
* ``theta-plus`` (GE-θ+): the θ gather followed by an SE-style 1x1-conv MLP
  (``C -> C/16 -> C``) before the gate.

Extents are 2, 4, 8, or 0 for global (see :mod:`ge_nas.layers.choices`).

How global θ/θ+ differ from the paper: the official global GE-θ gathers with one
depthwise kernel as large as the feature map, so a trained model is tied to one input
size. A detector sees many sizes (other ``imgsz``, rectangular batches), so here the
global learned gather is the extent-8 gather (three stride-2 depthwise convs with BN)
followed by a mean over whatever map remains. Its parameters do not depend on H and W
(``3 * 11 * C`` for the gather), it still learns a spatial weighting, and it yields one
gate value per channel as the paper's global unit does. The official global θ+ adds a
ReLU after the gather's last BN; we keep that.

Example:
    >>> import torch
    >>> ge = GatherExcite(64, "theta-plus", 4)
    >>> ge(torch.randn(2, 64, 20, 24)).shape
    torch.Size([2, 64, 20, 24])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ge_nas.layers.choices import GLOBAL_EXTENT, check_variant_and_extent

__all__ = ["OPEN_GATE_BIAS", "GatherExcite", "gather_excite_param_count", "reduced_channels"]

REDUCTION = 16
OPEN_GATE_BIAS = 3.0  # sigmoid(3) ~= 0.95: an inherited network starts close to its parent
_GLOBAL_LEARNED_EXTENT = 8


def reduced_channels(channels: int) -> int:
    """Hidden width of the θ+ MLP: ``C / 16`` rounded, at least 1 (timm's rule)."""
    return max(1, int(channels / REDUCTION + 0.5))


def gather_excite_param_count(channels: int, variant: str, extent: int) -> int:
    """Learnable parameters of one GE unit, from the paper's formulas.

    θ: per depthwise conv ``9C`` weights (no bias, BN follows) plus ``2C`` BN affine
    parameters. θ+: plus the MLP ``C*r + r + r*C + C`` (1x1 convs with bias).
    """
    check_variant_and_extent(variant, extent)
    if variant == "theta-minus":
        return 0
    n_conv = int(math.log2(extent or _GLOBAL_LEARNED_EXTENT))
    count = n_conv * (9 * channels + 2 * channels)
    if variant == "theta-plus":
        r = reduced_channels(channels)
        count += channels * r + r + r * channels + channels
    return count


def _learned_gather(channels: int, extent: int, relu_after_last: bool) -> nn.Sequential:
    """The θ gather: log2(extent) stride-2 depthwise 3x3 convs, BN after each."""
    n_conv = int(math.log2(extent))
    layers: list[nn.Module] = []
    for i in range(n_conv):
        layers.append(nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=channels, bias=False))
        layers.append(nn.BatchNorm2d(channels))
        if i != n_conv - 1 or relu_after_last:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class GatherExcite(nn.Module):
    """One Gather-Excite unit; output shape and dtype equal the input's.

    Args:
        channels: channels of the feature map it gates (the real count at the model's scale).
        variant: ``"theta-minus"``, ``"theta"`` or ``"theta-plus"``.
        extent: 2, 4 or 8, or 0 for global.
    """

    def __init__(self, channels: int, variant: str = "theta-plus", extent: int = GLOBAL_EXTENT) -> None:
        super().__init__()
        check_variant_and_extent(variant, extent)
        self.channels, self.variant, self.extent = channels, variant, extent
        self.gather: nn.Module | None = None
        if variant != "theta-minus":
            is_global = extent == GLOBAL_EXTENT
            self.gather = _learned_gather(
                channels,
                _GLOBAL_LEARNED_EXTENT if is_global else extent,
                relu_after_last=is_global and variant == "theta-plus",
            )
        self.excite: nn.Module = nn.Identity()
        if variant == "theta-plus":
            r = reduced_channels(channels)
            self.excite = nn.Sequential(nn.Conv2d(channels, r, 1), nn.ReLU(inplace=True), nn.Conv2d(r, channels, 1))

    def open_gate(self, bias: float = OPEN_GATE_BIAS) -> None:
        """Start from an almost-open, uniform gate: ``sigmoid(bias)`` (0.95 by default) everywhere.

        A GE unit added to a trained parent should change the parent's function as little
        as possible, so the inherited layers start where they were. θ+ zeroes its last MLP
        conv and sets its bias; θ zeroes the scale of its gather's last BN and sets its shift
        (as ResNets zero-init their last BN). Both still learn: gradients reach the zeroed
        weights at once. θ− has no parameters; its gate is whatever the context gives.
        """
        with torch.no_grad():
            if self.variant == "theta-plus":
                last = self.excite[-1]
                last.weight.zero_()
                last.bias.fill_(bias)
            elif self.variant == "theta":
                norm = [m for m in self.gather if isinstance(m, nn.BatchNorm2d)][-1]
                norm.weight.zero_()
                norm.bias.fill_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate ``x`` by the context gathered around each position."""
        context = self._gather(x)
        gate = self.excite(context)
        if gate.shape[-2:] != x.shape[-2:] and (gate.shape[-1] != 1 or gate.shape[-2] != 1):
            gate = F.interpolate(gate, size=x.shape[-2:], mode="nearest")
        return x * torch.sigmoid(gate)

    def _gather(self, x: torch.Tensor) -> torch.Tensor:
        if self.gather is not None:
            context = self.gather(x)
            return context.mean(dim=(2, 3), keepdim=True) if self.extent == GLOBAL_EXTENT else context
        if self.extent == GLOBAL_EXTENT:
            return x.mean(dim=(2, 3), keepdim=True)
        kernel = 2 * self.extent - 1
        return F.avg_pool2d(x, kernel, stride=self.extent, padding=kernel // 2, count_include_pad=False)

    def extra_repr(self) -> str:
        return f"{self.channels}, variant={self.variant!r}, extent={self.extent}"
