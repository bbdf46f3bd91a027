"""Coordinate Attention (Hou, Zhou, Feng, CVPR 2021).

Coordinate Attention keeps position along one axis while it pools along the other: the mean
of each row (``C x H x 1``) and of each column (``C x 1 x W``) are stacked along the spatial
axis, encoded together by one 1x1 convolution (``C -> mip``, ``mip = max(8, C/32)``),
BatchNorm and hard swish, split again, and turned into a gate along H and one along W by two
1x1 convolutions (``mip -> C``) and sigmoids: ``y = x * a_w * a_h``. Every convolution has a
bias, and the reduction is 32 with at least 8 hidden channels, as in the authors' code;
timm's ``CoordAttn`` with those settings computes the same function (the tests compare them).

Parameters: ``3·C·mip + 3·mip + 2·C`` (the encoder with bias and BatchNorm, two decoders
with bias). Operations: see :func:`coord_attention_ops`.

Example:
    >>> import torch
    >>> ca = CoordinateAttention(64)
    >>> ca(torch.randn(2, 64, 20, 24)).shape
    torch.Size([2, 64, 20, 24])
"""

from __future__ import annotations

import torch
from torch import nn

from ge_nas.layers.unit import AttentionUnit, GateOps, open_gate_logit

__all__ = ["CoordinateAttention", "coord_attention_ops", "coord_attention_param_count", "coord_hidden_channels"]

REDUCTION, MIN_HIDDEN = 32, 8


def coord_hidden_channels(channels: int) -> int:
    """The encoder's width ``mip = max(8, C // 32)``."""
    return max(MIN_HIDDEN, channels // REDUCTION)


def coord_attention_param_count(channels: int) -> int:
    """Learnable parameters: encoder ``C·mip + mip`` and its BatchNorm ``2·mip``; two decoders ``mip·C + C`` each."""
    c, mip = channels, coord_hidden_channels(channels)
    return c * mip + mip + 2 * mip + 2 * (mip * c + c)


def coord_attention_ops(channels: int, height: int, width: int) -> GateOps:
    """Every operation on a ``C x H x W`` map, batch 1.

    The row and column means ``CH(W + 1) + CW(H + 1)``; on the ``H + W`` stacked positions the
    encoder ``mip·C``, BatchNorm ``4·mip`` and hard swish ``4·mip`` each; the decoders
    ``C·mip·H + C·mip·W``; the sigmoids ``3C(H + W)``; two multiplies ``2CHW``.
    """
    c, mip, h, w = channels, coord_hidden_channels(channels), height, width
    return GateOps(
        convolutions=mip * c * (h + w) + c * mip * (h + w),
        normalisations=4 * mip * (h + w),
        pooling=c * h * (w + 1) + c * w * (h + 1),
        activations=4 * mip * (h + w),
        interpolation=0,
        sigmoid=3 * c * (h + w),
        multiply=2 * c * h * w,
    )


class CoordinateAttention(AttentionUnit):
    """One Coordinate Attention unit; output shape and dtype equal the input's.

    Args:
        channels: channels of the feature map it gates (the real count at the model's scale).
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        mip = coord_hidden_channels(channels)
        self.conv1 = nn.Conv2d(channels, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(mip, channels, 1)
        self.conv_w = nn.Conv2d(mip, channels, 1)

    def ops(self, height: int, width: int) -> GateOps:
        return coord_attention_ops(self.channels, height, width)

    def open_gate(self) -> None:
        """Both gates start uniform, each at ``sqrt(0.95)``, so the unit first scales its input by 0.95."""
        logit = open_gate_logit(2)
        with torch.no_grad():
            for decoder in (self.conv_h, self.conv_w):
                decoder.weight.zero_()
                decoder.bias.fill_(logit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate ``x`` by where along its height and along its width each channel responds."""
        height, width = x.shape[-2:]
        rows = x.mean(dim=3, keepdim=True)  # N x C x H x 1
        columns = x.mean(dim=2, keepdim=True).transpose(2, 3)  # N x C x W x 1
        encoded = self.act(self.bn1(self.conv1(torch.cat([rows, columns], dim=2))))
        along_h, along_w = torch.split(encoded, [height, width], dim=2)
        gate_h = torch.sigmoid(self.conv_h(along_h))
        gate_w = torch.sigmoid(self.conv_w(along_w.transpose(2, 3)))
        return x * gate_w * gate_h

    def extra_repr(self) -> str:
        return f"{self.channels}, hidden={self.conv1.out_channels}"
