"""Weight inheritance: a candidate starts from a trained parent's weights, its new GE units from an open gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from ultralytics.nn import tasks

from ge_nas.layers.gather_excite import GatherExcite
from ge_nas.yolo.console import quiet
from ge_nas.yolo.registration import register_layers

__all__ = ["Inheritance", "inherit_weights", "load_parent_state", "speed_up_new_units"]


@dataclass(frozen=True)
class Inheritance:
    """Where a candidate's weights come from: a parent's state dict and the base->candidate index map."""

    parent_state: dict[str, torch.Tensor]
    index_map: dict[int, int]


def load_parent_state(weights: Path) -> dict[str, torch.Tensor]:
    """The float state dict of an Ultralytics checkpoint (its EMA weights when it has them)."""
    register_layers()
    with quiet():
        model, _ = tasks.load_checkpoint(str(weights))
    return {name: tensor.detach().float().clone() for name, tensor in model.state_dict().items()}


def inherit_weights(model: torch.nn.Module, inheritance: Inheritance) -> tuple[int, int]:
    """Copy every parent tensor into the layer it maps to; GE units are set to an open gate.

    Layer ``i`` of the base is layer ``index_map[i]`` of the candidate, and a C2f with GE
    inside keeps its bottlenecks' ``cv1``/``cv2`` names, so a parent key
    ``model.<i>.<rest>`` lands on ``model.<index_map[i]>.<rest>``. Tensors whose shape
    differs (a Detect head trained for another class count) are left as initialised.
    Returns (tensors copied, tensors of the parent).
    """
    target = model.state_dict()
    copied: dict[str, torch.Tensor] = {}
    for name, tensor in inheritance.parent_state.items():
        section, index, *rest = name.split(".")
        if section != "model" or not index.isdigit() or int(index) not in inheritance.index_map:
            continue
        new_name = ".".join(["model", str(inheritance.index_map[int(index)]), *rest])
        if new_name in target and target[new_name].shape == tensor.shape:
            copied[new_name] = tensor
    model.load_state_dict(copied, strict=False)
    for module in model.modules():
        if isinstance(module, GatherExcite):
            module.open_gate()
    return len(copied), len(inheritance.parent_state)


def speed_up_new_units(optimizer: torch.optim.Optimizer, model: torch.nn.Module, factor: float) -> int:
    """Move the GatherExcite parameters of each parameter group into a twin group at ``factor`` x its rate.

    The twin keeps the group's other settings (weight decay, its Ultralytics ``param_group``
    tag), so warm-up and the learning-rate schedule treat it alike, scaled. Returns how many
    parameters moved.
    """
    new = {id(p) for m in model.modules() if isinstance(m, GatherExcite) for p in m.parameters()}
    moved = 0
    for group in list(optimizer.param_groups):
        fast = [p for p in group["params"] if id(p) in new]
        if not fast:
            continue
        group["params"] = [p for p in group["params"] if id(p) not in new]
        settings = {k: v for k, v in group.items() if k != "params"}
        optimizer.add_param_group({**settings, "params": fast, "lr": group["lr"] * factor})
        moved += len(fast)
    return moved
