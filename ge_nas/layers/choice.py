"""A layer that holds several alternative modules and runs one of them: a supernet's choice block.

Weight sharing (single-path one-shot, Guo et al. 2020) trains one network that holds every
choice of a search space and activates one path per batch. ``LayerChoice`` is one choice
block of that network: option 0 is "no unit" (the identity), options 1.. are the units a
search space offers at that place, and :attr:`LayerChoice.active` says which one runs. Only
the active option computes, so only its parameters get gradients.

Example:
    >>> import torch
    >>> from torch import nn
    >>> choice = LayerChoice([nn.Identity(), nn.ReLU()])
    >>> choice.active = 1
    >>> choice(torch.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["LayerChoice"]


class LayerChoice(nn.Module):
    """Runs ``options[active]``; every option maps a tensor to one of the same shape.

    Args:
        options: the alternatives, option 0 first (a supernet puts the identity there).
    """

    def __init__(self, options: Sequence[nn.Module]) -> None:
        super().__init__()
        if not options:
            raise ValueError("a LayerChoice needs at least one option")
        self.options = nn.ModuleList(options)
        self.active = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.options[self.active](x)

    def extra_repr(self) -> str:
        return f"active={self.active} of {len(self.options)}"
