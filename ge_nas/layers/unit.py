"""What every attention unit ge-nas places shares: its counted operations, and how it starts open.

An attention unit rescales a feature map by a gate computed from context, and keeps its
shape. Each module (Gather-Excite and the others in :data:`ge_nas.layers.choices.MODULES`)
is one :class:`AttentionUnit` in its own file, which says:

* ``ops(height, width)``: every operation of one forward on a ``channels x height x width``
  map (batch 1), by kind (:class:`GateOps`), from the paper's formula. thop, whose count
  Ultralytics reports as GFLOPs, sees only modules, so the pooling, sigmoid and gating
  multiply that a unit runs as torch functions would otherwise count for nothing;
* ``open_gate()``: the gate set almost open, so that a unit added to a trained parent first
  computes nearly what the parent did (a unit without parameters cannot be set, and starts
  as its paper's function of the context).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from torch import nn

__all__ = ["OPEN_GATE", "OPEN_GATE_BIAS", "AttentionUnit", "GateOps", "open_gate_logit", "reduced_channels"]

REDUCTION = 16
OPEN_GATE_BIAS = 3.0
# sigmoid(3) ~= 0.95: what an opened unit multiplies its input by, everywhere.
OPEN_GATE = 1 / (1 + math.exp(-OPEN_GATE_BIAS))


def reduced_channels(channels: int, reduction: int = REDUCTION) -> int:
    """Hidden width of a squeeze-and-excite MLP: ``C / reduction`` rounded, at least 1 (timm's rule)."""
    return max(1, int(channels / reduction + 0.5))


def open_gate_logit(gates: int) -> float:
    """The logit each of ``gates`` multiplied sigmoid gates starts at, so that together they give :data:`OPEN_GATE`.

    A unit with one gate starts at :data:`OPEN_GATE_BIAS`; CBAM (a channel and a spatial
    gate) and Coordinate Attention (a gate along H and one along W) multiply two, so each
    starts at ``sigmoid⁻¹(√0.95)`` and every module starts by scaling its input by 0.95.
    """
    p = OPEN_GATE ** (1 / gates)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class GateOps:
    """Operations of one attention unit on one ``C x H x W`` map (batch 1), by kind, in thop's units.

    thop counts a convolution's multiply-adds (bias left out), 4 per element of a
    BatchNorm's input, an average pool's summed inputs plus one divide per output (only
    inputs inside the map with ``count_include_pad=False``), a mean the same way, and a max
    pool as 0 (so do the SPPF's max pools in every YOLO baseline; a max over a map counts 0
    here too). Operations thop has no rule for count their elementary steps per output
    element: ReLU 1 (a max), hard swish 4 (an add, a clamp, a divide, a multiply), nearest
    interpolation 1 (a read), sigmoid 3 (exp, add, divide: thop's count for softmax's), each
    elementwise add, subtract, square or divide 1, the gating multiply 1. Ultralytics'
    GFLOPs are ``2 * ops / 1e9``.
    """

    convolutions: int  # every convolution (thop counts these itself, as child modules)
    normalisations: int  # every BatchNorm (thop counts these itself)
    pooling: int  # average pools and means (a max counts 0)
    activations: int  # ReLU and hard swish
    interpolation: int  # a gate brought back to H x W
    sigmoid: int
    multiply: int  # x * gate
    arithmetic: int = 0  # other elementwise steps: adding two gate logits, SimAM's energy

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    @property
    def uncounted_by_thop(self) -> int:
        """What thop's rules for the unit's child modules do not report: all but convolutions and BatchNorms."""
        return self.total - self.convolutions - self.normalisations


class AttentionUnit(nn.Module):
    """Base of every attention unit: ``forward(x)`` has ``x``'s shape; subclasses say what it costs.

    Args:
        channels: channels of the feature map the unit gates (the real count at the model's scale).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def ops(self, height: int, width: int) -> GateOps:
        """Every operation of one forward on a ``channels x height x width`` map, batch 1."""
        raise NotImplementedError

    def open_gate(self) -> None:
        """Set the gate to scale the input by about :data:`OPEN_GATE` everywhere; a no-op without parameters."""
