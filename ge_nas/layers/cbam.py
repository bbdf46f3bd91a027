"""Convolutional Block Attention Module (Woo, Park, Lee, Kweon, ECCV 2018).

CBAM gates channels, then positions:

* channel attention: the map's global mean and global max each pass through one shared MLP
  (``C -> C/16 -> C``, ReLU between), the two results are added, ``M_c = sigmoid(...)``,
  ``x' = x * M_c``;
* spatial attention: the mean and the max over the channels of ``x'`` (two maps, stacked in
  that order, as the paper writes ``[AvgPool(F'); MaxPool(F')]``), one 7x7 convolution to a
  single map, ``M_s = sigmoid(...)``, ``y = x' * M_s``.

As in the authors' code, the MLP's layers have biases and the spatial convolution is
followed by BatchNorm (no bias, no activation before the sigmoid); timm's ``CbamModule``
with ``mlp_bias=True`` computes the same function (the tests compare them).

Not Ultralytics' ``CBAM``: that one gates channels with a single 1x1 convolution of the
mean (no max, no reduction) and, since ``parse_model`` passes it no channel count, fails
in a model YAML unless the row carries the real one. ``ConvBlockAttention`` takes the real
channel count as its argument, as every ge-nas layer does.

Parameters: ``2·C·r + r + C`` (the MLP) ``+ 98`` (the 7x7 convolution on 2 maps) ``+ 2``
(BatchNorm). Operations: see :func:`cbam_ops`.

Example:
    >>> import torch
    >>> cbam = ConvBlockAttention(64)
    >>> cbam(torch.randn(2, 64, 20, 24)).shape
    torch.Size([2, 64, 20, 24])
"""

from __future__ import annotations

import torch
from torch import nn

from ge_nas.layers.unit import AttentionUnit, GateOps, open_gate_logit, reduced_channels

__all__ = ["SPATIAL_KERNEL", "ConvBlockAttention", "cbam_ops", "cbam_param_count"]

SPATIAL_KERNEL = 7


def cbam_param_count(channels: int) -> int:
    """Learnable parameters: the shared MLP with biases, the spatial convolution and its BatchNorm."""
    r = reduced_channels(channels)
    return channels * r + r + r * channels + channels + 2 * SPATIAL_KERNEL**2 + 2


def cbam_ops(channels: int, height: int, width: int) -> GateOps:
    """Every operation on a ``C x H x W`` map, batch 1.

    Channel gate: mean ``C(HW + 1)`` (the max counts 0), the MLP twice ``2 · 2Cr`` with its
    ReLU ``2r``, the sum of the two ``C``, sigmoid ``3C``, multiply ``CHW``. Spatial gate: the
    mean over channels ``HW(C + 1)`` (the max counts 0), the convolution ``2·49·HW``,
    BatchNorm ``4HW``, sigmoid ``3HW``, multiply ``CHW``.
    """
    c, r, area = channels, reduced_channels(channels), height * width
    return GateOps(
        convolutions=4 * c * r + 2 * SPATIAL_KERNEL**2 * area,
        normalisations=4 * area,
        pooling=c * (area + 1) + area * (c + 1),
        activations=2 * r,
        interpolation=0,
        sigmoid=3 * c + 3 * area,
        multiply=2 * c * area,
        arithmetic=c,
    )


class ConvBlockAttention(AttentionUnit):
    """One CBAM unit; output shape and dtype equal the input's.

    Args:
        channels: channels of the feature map it gates (the real count at the model's scale).
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        r = reduced_channels(channels)
        self.fc1 = nn.Conv2d(channels, r, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(r, channels, 1)
        self.spatial = nn.Conv2d(2, 1, SPATIAL_KERNEL, padding=SPATIAL_KERNEL // 2, bias=False)
        self.spatial_norm = nn.BatchNorm2d(1)

    def ops(self, height: int, width: int) -> GateOps:
        return cbam_ops(self.channels, height, width)

    def open_gate(self) -> None:
        """Both gates start uniform, each at ``sqrt(0.95)``, so the unit first scales its input by 0.95.

        The channel gate's logit is the sum of the MLP's two outputs, each carrying the last
        layer's bias: the weights are zeroed and the bias set to half the logit. The spatial
        gate's BatchNorm gets a zero scale and the logit as its shift (as GE-θ's gather does).
        """
        logit = open_gate_logit(2)
        with torch.no_grad():
            self.fc2.weight.zero_()
            self.fc2.bias.fill_(logit / 2)
            self.spatial_norm.weight.zero_()
            self.spatial_norm.bias.fill_(logit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate the channels of ``x``, then its positions."""
        mean, peak = x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
        x = x * torch.sigmoid(self._mlp(mean) + self._mlp(peak))
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial_norm(self.spatial(pooled)))

    def _mlp(self, context: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(context)))

    def extra_repr(self) -> str:
        return f"{self.channels}"
