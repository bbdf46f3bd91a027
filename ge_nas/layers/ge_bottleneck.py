"""A residual bottleneck with an attention unit on its branch: the paper's placement.

Hu et al. put GE inside every ResNet bottleneck, on the residual branch after its last
normalisation and before the sum with the identity (where SE goes, and where the CBAM, ECA
and Coordinate Attention papers put theirs). ``GEBottleneck`` does that for the bottlenecks
inside a YOLO C2f or C3k2 block (those of its C3k blocks included): it keeps the
bottleneck's own ``cv1``/``cv2`` (so their weights keep their names and can be inherited)
and gates the branch before the shortcut is added. Head C2f blocks have no shortcut; there
the unit gates the bottleneck's output.

The class and its ``ge`` attribute keep their names from when GE was the only module:
checkpoints store both, whichever unit ``ge`` holds.
"""

from __future__ import annotations

import torch
from torch import nn

from ge_nas.layers.unit import AttentionUnit

__all__ = ["GEBottleneck"]


class GEBottleneck(nn.Module):
    """``x + ge(cv2(cv1(x)))`` when the bottleneck adds its input, else ``ge(cv2(cv1(x)))``.

    Args:
        bottleneck: any module with ``cv1``, ``cv2`` and a boolean ``add`` (Ultralytics'
            ``Bottleneck``); its convolutions are reused as they are.
        ge: the attention unit for the branch (its channels equal ``cv2``'s output).
    """

    def __init__(self, bottleneck: nn.Module, ge: AttentionUnit) -> None:
        super().__init__()
        self.cv1, self.cv2, self.add = bottleneck.cv1, bottleneck.cv2, bool(bottleneck.add)
        self.ge = ge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.ge(self.cv2(self.cv1(x)))
        return x + branch if self.add else branch
