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

What a unit computes, counted (:func:`gather_excite_ops`): thop, whose multiply-adds
Ultralytics reports as GFLOPs, sees only modules, so the functional pooling, interpolation,
sigmoid and multiply of a unit counted for nothing and every θ− unit looked free. The count
here covers every operation, with thop's rule for each kind thop has one for.

Example:
    >>> import torch
    >>> ge = GatherExcite(64, "theta-plus", 4)
    >>> ge(torch.randn(2, 64, 20, 24)).shape
    torch.Size([2, 64, 20, 24])
    >>> gather_excite_ops(64, "theta-minus", 0, 20, 24).total  # mean, sigmoid of the 1x1 gate, multiply
    61696
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ge_nas.layers.choices import GLOBAL_EXTENT, VARIANTS, check_variant_and_extent
from ge_nas.layers.unit import OPEN_GATE_BIAS, AttentionUnit, GateOps, reduced_channels

__all__ = ["GatherExcite", "gather_excite_ops", "gather_excite_param_count", "gather_size"]

_GLOBAL_LEARNED_EXTENT = 8


def gather_excite_param_count(channels: int, variant: str, extent: int) -> int:
    """Learnable parameters of one GE unit, from the paper's formulas.

    θ: per depthwise conv ``9C`` weights (no bias, BN follows) plus ``2C`` BN affine
    parameters. θ+: plus the MLP ``C*r + r + r*C + C`` (1x1 convs with bias).
    """
    _check(variant, extent)
    if variant == "theta-minus":
        return 0
    n_conv = int(math.log2(extent or _GLOBAL_LEARNED_EXTENT))
    count = n_conv * (9 * channels + 2 * channels)
    if variant == "theta-plus":
        r = reduced_channels(channels)
        count += channels * r + r + r * channels + channels
    return count


def _check(variant: str, extent: int) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown Gather-Excite variant {variant!r}: use one of {', '.join(VARIANTS)}")
    check_variant_and_extent(variant, extent)


def gather_size(height: int, width: int, extent: int) -> tuple[int, int]:
    """Size of the gathered context for a non-global ``extent``: ``ceil(H / e) x ceil(W / e)``.

    θ−'s pool (kernel ``2e - 1``, stride ``e``, padding ``e - 1``) and θ's ``log2(e)``
    stride-2 convs (each ``ceil(H / 2)``) agree on it.
    """
    return -(-height // extent), -(-width // extent)


def gather_excite_ops(channels: int, variant: str, extent: int, height: int, width: int) -> GateOps:
    """Every operation of one GE unit on a ``channels x height x width`` map, batch 1 (see :class:`GateOps`).

    θ− (extent e, ``h, w = ceil(H/e), ceil(W/e)``): pool ``C * S(H) * S(W) + C*h*w`` where
    ``S(H) = H + (h - 1)(e - 1)`` is the pooled inputs along one side (every input once, plus
    once more where two windows overlap). Global θ−: mean ``C * (H*W + 1)``, gate 1x1.
    θ/θ+ gather: per stride-2 conv to ``Hi x Wi``: ``9 C Hi Wi`` (depthwise), ``4 C Hi Wi``
    (BN), ``C Hi Wi`` (ReLU, not after the last unless global θ+); global: the extent-8
    gather, then a mean ``C * (H3*W3 + 1)``. θ+ MLP on the ``h x w`` context:
    ``2 C r h w`` (two 1x1 convs, ``r = C/16``) and ``r h w`` (ReLU). Then: interpolation
    ``C H W`` when the gate is smaller than the map and not 1x1; sigmoid ``3 *`` the gate's
    elements (after interpolation); multiply ``C H W``.
    """
    _check(variant, extent)
    c = channels
    convolutions = normalisations = pooling = activations = 0
    is_global = extent == GLOBAL_EXTENT
    if variant == "theta-minus":
        if is_global:
            h, w = 1, 1
            pooling = c * (height * width + 1)
        else:
            h, w = gather_size(height, width, extent)
            pooled_rows, pooled_columns = height + (h - 1) * (extent - 1), width + (w - 1) * (extent - 1)
            pooling = c * pooled_rows * pooled_columns + c * h * w
    else:
        n_conv = int(math.log2(_GLOBAL_LEARNED_EXTENT if is_global else extent))
        h, w = height, width
        for i in range(n_conv):
            h, w = gather_size(h, w, 2)
            convolutions += 9 * c * h * w
            normalisations += 4 * c * h * w
            if i != n_conv - 1 or (is_global and variant == "theta-plus"):
                activations += c * h * w
        if is_global:
            pooling = c * (h * w + 1)
            h, w = 1, 1
        if variant == "theta-plus":
            r = reduced_channels(c)
            convolutions += 2 * c * r * h * w
            activations += r * h * w
    interpolation = 0
    if (h, w) != (height, width) and (h, w) != (1, 1):
        interpolation = c * height * width
        h, w = height, width
    return GateOps(
        convolutions=convolutions,
        normalisations=normalisations,
        pooling=pooling,
        activations=activations,
        interpolation=interpolation,
        sigmoid=3 * c * h * w,
        multiply=c * height * width,
    )


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


class GatherExcite(AttentionUnit):
    """One Gather-Excite unit; output shape and dtype equal the input's.

    Args:
        channels: channels of the feature map it gates (the real count at the model's scale).
        variant: ``"theta-minus"``, ``"theta"`` or ``"theta-plus"``.
        extent: 2, 4 or 8, or 0 for global.
    """

    def __init__(self, channels: int, variant: str = "theta-plus", extent: int = GLOBAL_EXTENT) -> None:
        super().__init__(channels)
        _check(variant, extent)
        self.variant, self.extent = variant, extent
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

    def ops(self, height: int, width: int) -> GateOps:
        return gather_excite_ops(self.channels, self.variant, self.extent, height, width)

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
