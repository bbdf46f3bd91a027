"""A residual bottleneck with a Gather-Excite unit on its branch: the paper's placement.

Hu et al. put GE inside every ResNet bottleneck, on the residual branch after its last
normalisation and before the sum with the identity (where SE goes). ``GEBottleneck``
does that for the bottlenecks inside a YOLOv8 C2f block: it keeps the bottleneck's own
``cv1``/``cv2`` (so their weights keep their names and can be inherited) and gates the
branch before the shortcut is added. Head C2f blocks have no shortcut; there the GE
gates the bottleneck's output.
"""

from __future__ import annotations

import torch
from torch import nn

from ge_nas.layers.gather_excite import GatherExcite

__all__ = ["GEBottleneck"]


class GEBottleneck(nn.Module):
    """``x + ge(cv2(cv1(x)))`` when the bottleneck adds its input, else ``ge(cv2(cv1(x)))``.

    Args:
        bottleneck: any module with ``cv1``, ``cv2`` and a boolean ``add`` (Ultralytics'
            ``Bottleneck``); its convolutions are reused as they are.
        ge: the Gather-Excite unit for the branch (its channels equal ``cv2``'s output).
    """

    def __init__(self, bottleneck: nn.Module, ge: GatherExcite) -> None:
        super().__init__()
        self.cv1, self.cv2, self.add = bottleneck.cv1, bottleneck.cv2, bool(bottleneck.add)
        self.ge = ge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.ge(self.cv2(self.cv1(x)))
        return x + branch if self.add else branch
