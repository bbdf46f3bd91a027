"""SimAM, a simple, parameter-free attention module (Yang, Zhang, Li, Xie, ICML 2021).

SimAM weighs every position of every channel by how distinct it is from the rest of its
channel, from a closed-form solution of an energy function inspired by spatial suppression
in neuroscience. With ``μ`` and ``σ²`` the channel's mean and variance over its ``n + 1 = H·W``
positions (``σ²`` divided by ``n``, as in the paper's code), the inverse minimal energy is
``e = (x - μ)² / (4 (σ² + λ)) + 0.5`` with ``λ = 1e-4``, and ``y = x * sigmoid(e)``.

No parameters, so there is no gate to open: an added unit starts as the paper's function
(its gate is at least sigmoid(0.5) ≈ 0.62, and larger for outstanding positions).

Where it differs from the paper's code: on a 1x1 map ``n`` is 0 and the code divides by it
(NaN); here ``n`` is at least 1 there, so the gate is sigmoid(0.5). No timm equivalent exists;
the tests compare this with a transcription of the paper's code.

Operations: see :func:`simam_ops`.

Example:
    >>> import torch
    >>> SimAM(64)(torch.randn(2, 64, 20, 24)).shape
    torch.Size([2, 64, 20, 24])
"""

from __future__ import annotations

import torch

from ge_nas.layers.unit import AttentionUnit, GateOps

__all__ = ["LAMBDA", "SimAM", "simam_ops"]

LAMBDA = 1e-4


def simam_ops(channels: int, height: int, width: int) -> GateOps:
    """Every operation on a ``C x H x W`` map, batch 1.

    The mean ``C(HW + 1)``; subtracting it and squaring ``2CHW``; the variance (a sum and a
    divide) ``C(HW + 1)``; ``+ λ`` and ``· 4`` per channel ``2C``; the divide and ``+ 0.5``
    ``2CHW``; the sigmoid ``3CHW``; the multiply ``CHW``.
    """
    c, area = channels, height * width
    return GateOps(
        convolutions=0,
        normalisations=0,
        pooling=2 * c * (area + 1),
        activations=0,
        interpolation=0,
        sigmoid=3 * c * area,
        multiply=c * area,
        arithmetic=4 * c * area + 2 * c,
    )


class SimAM(AttentionUnit):
    """One SimAM unit; output shape and dtype equal the input's.

    Args:
        channels: channels of the feature map it gates (not needed by the function; given, as
            for every ge-nas layer, so a model YAML row reads the same for every module).
    """

    def ops(self, height: int, width: int) -> GateOps:
        return simam_ops(self.channels, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate every position of ``x`` by its inverse minimal energy."""
        n = x.shape[-2] * x.shape[-1] - 1
        n = n + (n == 0)  # 1 on a 1x1 map, where the numerator is 0; no branch, so a traced export keeps it
        distinct = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        energy = distinct / (4 * (distinct.sum(dim=(2, 3), keepdim=True) / n + LAMBDA)) + 0.5
        return x * torch.sigmoid(energy)

    def extra_repr(self) -> str:
        return f"{self.channels}"
