"""Efficient Channel Attention (Wang, Wu, Zhu, Li, Zuo, Hu, CVPR 2020).

ECA replaces SE's MLP with a 1D convolution across channels: the global mean of each
channel, a convolution of kernel ``k`` over the channel axis (local cross-channel
interaction, no dimensionality reduction), a sigmoid: ``y = x * sigmoid(conv1d(mean(x)))``.
The kernel size follows the channel count, ``k = |log2(C)/γ + b/γ|_odd`` with ``γ = 2``,
``b = 1``, computed as in the authors' code (``t = int(|log2(C) + b| / γ)``, then ``t`` or
``t + 1``, whichever is odd): 3 for 16 to 64 channels, 5 for 128 to 512.

Where it differs from the paper: the convolution has a bias (one parameter). The paper's
is bias-free, and a bias-free gate cannot start open (see
:meth:`EfficientChannelAttention.open_gate`); the bias starts at 0, so a fresh unit computes
the paper's function exactly (the tests compare it with timm's ``EcaModule``).

Parameters: ``k + 1``. Operations: see :func:`eca_ops`.

Example:
    >>> import torch
    >>> eca = EfficientChannelAttention(256)
    >>> eca(torch.randn(2, 256, 8, 8)).shape, eca_kernel_size(256)
    (torch.Size([2, 256, 8, 8]), 5)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ge_nas.layers.unit import OPEN_GATE_BIAS, AttentionUnit, GateOps

__all__ = ["EfficientChannelAttention", "eca_kernel_size", "eca_ops", "eca_param_count"]

GAMMA, B = 2, 1


def eca_kernel_size(channels: int) -> int:
    """The paper's adaptive kernel size ``|log2(C)/γ + b/γ|_odd``, as the authors compute it."""
    t = int(abs((math.log2(channels) + B) / GAMMA))
    return t if t % 2 else t + 1


def eca_param_count(channels: int) -> int:
    """Learnable parameters: the kernel's ``k`` weights and the bias."""
    return eca_kernel_size(channels) + 1


def eca_ops(channels: int, height: int, width: int) -> GateOps:
    """Every operation on a ``C x H x W`` map, batch 1: the mean ``C(HW + 1)``, the 1D convolution
    ``k·C``, the sigmoid ``3C`` and the multiply ``CHW``."""
    c = channels
    return GateOps(
        convolutions=eca_kernel_size(c) * c,
        normalisations=0,
        pooling=c * (height * width + 1),
        activations=0,
        interpolation=0,
        sigmoid=3 * c,
        multiply=c * height * width,
    )


class EfficientChannelAttention(AttentionUnit):
    """One ECA unit; output shape and dtype equal the input's.

    Args:
        channels: channels of the feature map it gates (the real count at the model's scale).
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        k = eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2)
        nn.init.zeros_(self.conv.bias)  # the paper's bias-free function until the gate is opened

    def ops(self, height: int, width: int) -> GateOps:
        return eca_ops(self.channels, height, width)

    def open_gate(self) -> None:
        """Zero the kernel and set the bias: every channel's gate starts at sigmoid(3)."""
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.fill_(OPEN_GATE_BIAS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate each channel of ``x`` by a convolution over its neighbours' global means."""
        pooled = x.mean(dim=(2, 3)).unsqueeze(1)  # N x 1 x C: channels as a sequence
        gate = self.conv(pooled).transpose(1, 2).unsqueeze(-1)  # N x C x 1 x 1
        return x * torch.sigmoid(gate)

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.conv.kernel_size[0]}"
