"""Counted operations: Ultralytics' GFLOPs, with every operation of an attention unit counted.

Ultralytics reports GFLOPs as twice the multiply-adds that thop counts. thop counts what
modules compute (convolutions, BatchNorm, pooling layers), so the parts of an attention
unit that run as torch functions (θ−'s pooling or the global mean, the interpolation, the
sigmoid, the gating multiply, SimAM's energy) counted for nothing: every θ− and SimAM unit
looked free. Here thop counts the model as Ultralytics does, on the real input size (no
extrapolation from a stride-sized image: a unit's gather does not scale with the area), and
one rule of ours adds, for each unit of any module, what its own child modules do not
report (:attr:`~ge_nas.layers.unit.GateOps.uncounted_by_thop`: its paper's count minus the
convolutions and BatchNorms, which thop counts itself). A baseline without attention
counts exactly what ``ultralytics.utils.torch_utils.get_flops`` reports.

A count that fails is an error (:class:`~ge_nas.errors.CostError`), never 0:
``get_flops`` returns 0.0 on any exception, which would rank the architecture as free.

Example:
    >>> count_ops(GatherExcite(32, "theta-minus", 2), torch.zeros(1, 32, 16, 16))  # doctest: +SKIP
    59936
"""

from __future__ import annotations

import math

import thop
import torch
from torch import nn

from ge_nas.errors import CostError
from ge_nas.layers.unit import AttentionUnit

__all__ = ["count_ops"]


def count_ops(model: nn.Module, image: torch.Tensor) -> int:
    """thop's multiply-adds of one forward of ``model`` on ``image``, plus what attention units compute as functions.

    Raises:
        CostError: the counter failed, or counted nothing.
    """
    try:
        ops, _ = thop.profile(model, inputs=(image,), custom_ops={AttentionUnit: _attention_rule}, verbose=False)
    except Exception as error:
        raise CostError(f"could not count the operations of {type(model).__name__}: {error}") from error
    if not math.isfinite(ops) or ops <= 0:
        raise CostError(f"counting the operations of {type(model).__name__} gave {ops}; a model costs more than 0")
    return int(ops)


def _attention_rule(unit: AttentionUnit, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
    """thop rule for any unit (subclasses included): its operations that its convolution and BatchNorm children
    do not report themselves."""
    batch, _, height, width = inputs[0].shape
    unit.total_ops += batch * unit.ops(height, width).uncounted_by_thop
