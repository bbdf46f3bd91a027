"""Squeeze-and-Excitation (Hu, Shen, Sun, CVPR 2018; TPAMI 2020).

An SE unit rescales each channel by a gate computed from the whole map: squeeze (the
mean over H and W), excite (a two-layer MLP, ``C -> C/16 -> C`` with a ReLU between),
``y = x * sigmoid(excite(squeeze(x)))``. The paper's reduction ratio is 16; its layers are
fully connected, here 1x1 convolutions on the squeezed ``C x 1 x 1`` map (the same
function), with biases as in the authors' released models and timm's ``SEModule``.

Parameters: ``2·C·r + r + C`` with ``r = C/16`` (the paper's ``2C²/r`` weights plus the
biases). Operations: see :func:`squeeze_excite_ops`.

Example:
    >>> import torch
    >>> se = SqueezeExcite(64)
    >>> se(torch.randn(2, 64, 20, 24)).shape
    torch.Size([2, 64, 20, 24])
    >>> squeeze_excite_param_count(64)
    580
"""

from __future__ import annotations

import torch
from torch import nn

from ge_nas.layers.unit import OPEN_GATE_BIAS, AttentionUnit, GateOps, reduced_channels

__all__ = ["SqueezeExcite", "squeeze_excite_ops", "squeeze_excite_param_count"]


def squeeze_excite_param_count(channels: int) -> int:
    """Learnable parameters: two 1x1 convs with bias, ``C -> r -> C``."""
    r = reduced_channels(channels)
    return channels * r + r + r * channels + channels


def squeeze_excite_ops(channels: int, height: int, width: int) -> GateOps:
    """Every operation on a ``C x H x W`` map, batch 1: the mean ``C(HW + 1)``, the MLP ``2Cr`` and
    its ReLU ``r``, the sigmoid ``3C`` and the multiply ``CHW``."""
    c, r = channels, reduced_channels(channels)
    return GateOps(
        convolutions=2 * c * r,
        normalisations=0,
        pooling=c * (height * width + 1),
        activations=r,
        interpolation=0,
        sigmoid=3 * c,
        multiply=c * height * width,
    )


class SqueezeExcite(AttentionUnit):
    """One Squeeze-and-Excitation unit; output shape and dtype equal the input's.

    Args:
        channels: channels of the feature map it gates (the real count at the model's scale).
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        r = reduced_channels(channels)
        self.fc1 = nn.Conv2d(channels, r, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(r, channels, 1)

    def ops(self, height: int, width: int) -> GateOps:
        return squeeze_excite_ops(self.channels, height, width)

    def open_gate(self) -> None:
        """Zero the last layer's weights and set its bias: every channel's gate starts at sigmoid(3)."""
        with torch.no_grad():
            self.fc2.weight.zero_()
            self.fc2.bias.fill_(OPEN_GATE_BIAS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate each channel of ``x`` by the excitation of its global mean."""
        squeezed = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(squeezed))))

    def extra_repr(self) -> str:
        return f"{self.channels}"
