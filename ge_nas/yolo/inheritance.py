"""Weight inheritance: a candidate starts from a trained parent's weights, its new attention units from an open gate."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ultralytics.nn import tasks

from ge_nas.errors import InputError
from ge_nas.layers.gather_excite import GatherExcite
from ge_nas.layers.unit import OPEN_GATE_BIAS, AttentionUnit
from ge_nas.space.model_yaml import index_map_of
from ge_nas.yolo.console import quiet
from ge_nas.yolo.model_files import model_class
from ge_nas.yolo.registration import register_layers

__all__ = [
    "NEW_UNITS_GROUP",
    "Inheritance",
    "ParentFit",
    "check_parent",
    "hold_inherited_layers",
    "inherit_weights",
    "inheritance_for",
    "load_parent_state",
    "speed_up_new_units",
]

# Marks the optimizer parameter groups that hold the new attention units' parameters.
NEW_UNITS_GROUP = "ge_nas_new_units"


@dataclass(frozen=True)
class Inheritance:
    """Where a candidate's weights come from: a parent's state dict and the base->candidate index map.

    ``new_units``: the attention units are new (they start with an open gate and train faster); False
    when the state holds them already (a candidate's own checkpoint, cut from a supernet).
    """

    parent_state: dict[str, torch.Tensor]
    index_map: dict[int, int]
    new_units: bool = True


def inheritance_for(model: dict[str, Any], weights: Path) -> Inheritance:
    """What the model of dict ``model`` inherits from ``weights``: a checkpoint of the base, or of this very model.

    A base checkpoint (a search's ``parent.pt``) passes its layers on through the model's
    index map, and the attention units start new; a checkpoint of the same architecture (``ge-nas
    export --weights-from-supernet``) passes on every tensor where it is, units included.
    """
    checkpoint = _load_checkpoint(weights)
    state = _float_state(checkpoint)
    rows = model["backbone"] + model["head"]
    theirs = getattr(checkpoint, "yaml", {})
    if theirs.get("backbone", []) + theirs.get("head", []) == rows:
        return Inheritance(state, {i: i for i in range(len(rows))}, new_units=False)
    return Inheritance(state, index_map_of(model))


@dataclass(frozen=True)
class ParentFit:
    """How a checkpoint covers the search space's base model, and the line that says so when it matters."""

    inherited: int  # base tensors the checkpoint fills
    total: int  # tensors of the base model
    note: str  # "" when the checkpoint is the base model for this dataset's classes


def load_parent_state(weights: Path) -> dict[str, torch.Tensor]:
    """The float state dict of an Ultralytics checkpoint (its EMA weights when it has them)."""
    return _float_state(_load_checkpoint(weights))


def _float_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().float().clone() for name, tensor in model.state_dict().items()}


def check_parent(weights: Path, base: dict[str, Any], base_name: str, classes: int) -> ParentFit:
    """Refuse a checkpoint that does not cover the base model; accept one trained for other classes.

    Every tensor of the base model (built for the dataset's ``classes``) must be in the
    checkpoint with the same shape, and the checkpoint may hold nothing else. The only
    exception is the head's tensors whose width follows the class count (Detect's
    classification branches ``cv3`` and, end to end, ``one2one_cv3``; YOLO26's segmentation
    ``proto``): a checkpoint trained on another dataset (COCO's 80 classes, say) passes
    everything else on, as Ultralytics does when it starts from pretrained weights.

    Raises:
        InputError: not an Ultralytics checkpoint, or not one of this base model.
    """
    register_layers()
    model = _load_checkpoint(weights)
    parent = model.state_dict()
    with quiet():
        target = model_class(base)(copy.deepcopy({**base, "nc": classes}), verbose=False).state_dict()
    head = f"model.{len(base['backbone']) + len(base['head']) - 1}."
    class_specific = [k for k in target if k.startswith(head) and k in parent and parent[k].shape != target[k].shape]
    wrong = [k for k in target if k not in parent or (parent[k].shape != target[k].shape and not k.startswith(head))]
    extra = [k for k in parent if k not in target]
    if wrong or extra:
        first = wrong[0] if wrong else extra[0]
        detail = (
            f"{first} is {_shape(parent.get(first))} there, {_shape(target.get(first))} in the base"
            if wrong
            else f"it has {first}, which the base lacks"
        )
        raise InputError(
            f"--weights {weights}: the checkpoint is a {_model_name(model)} model, not the space's base "
            f"{base_name}: {len(wrong) + len(extra)} of its tensors do not fit ({detail}); give a checkpoint "
            f"of {base_name} (trained on any dataset)"
        )
    if not class_specific:
        return ParentFit(len(target), len(target), "")
    note = (
        f"--weights {weights.name} was trained for {_class_count(model)} classes, "
        f"this dataset has {classes}: candidates inherit every layer but the {len(class_specific)} class-specific "
        "tensors of the head, as Ultralytics transfers pretrained weights"
    )
    return ParentFit(len(target) - len(class_specific), len(target), note)


def _load_checkpoint(weights: Path) -> torch.nn.Module:
    register_layers()
    try:
        with quiet():
            model, _ = tasks.load_checkpoint(str(weights))
    except Exception as error:  # whatever unpickling a file that is not a checkpoint raises
        raise InputError(
            f"--weights {weights}: not an Ultralytics checkpoint ({type(error).__name__}); give a .pt file that "
            "Ultralytics saved, e.g. last.pt or yolov8n.pt"
        ) from None
    return model


def _class_count(model: torch.nn.Module) -> str:
    count = getattr(model, "nc", None) or getattr(model, "yaml", {}).get("nc")
    return str(count) if count else "another number of"


def _model_name(model: torch.nn.Module) -> str:
    name = str(getattr(model, "yaml", {}).get("yaml_file") or "different")
    return Path(name).stem if name != "different" else name


def _shape(tensor: torch.Tensor | None) -> str:
    return "missing" if tensor is None else "x".join(map(str, tensor.shape)) or "a scalar"


def inherit_weights(
    model: torch.nn.Module, inheritance: Inheritance, gate_bias: float = OPEN_GATE_BIAS
) -> tuple[int, int]:
    """Copy every parent tensor into the layer it maps to; attention units are set to an open gate.

    GE units start with the gate ``sigmoid(gate_bias)`` (a fine-tune recipe may start them
    less open); the other modules at their own open gate.

    Layer ``i`` of the base is layer ``index_map[i]`` of the candidate, and a C2f or C3k2 with
    units inside keeps its bottlenecks' ``cv1``/``cv2`` names, so a parent key
    ``model.<i>.<rest>`` lands on ``model.<index_map[i]>.<rest>``. Tensors whose shape
    differs (a Detect head trained for another class count) are left as initialised. New
    units open their gates; inherited ones (``new_units`` False) keep what they learned.
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
    if inheritance.new_units:
        for module in model.modules():
            if isinstance(module, GatherExcite):
                module.open_gate(gate_bias)
            elif isinstance(module, AttentionUnit):
                module.open_gate()
    return len(copied), len(inheritance.parent_state)


def hold_inherited_layers(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """For one epoch, only the attention units learn: the inherited layers keep their weights and BatchNorm statistics.

    Every parameter group but the attention units' own (see :func:`speed_up_new_units`) gets learning
    rate 0, which AdamW turns into no step and no weight decay at all (its moment estimates
    still see the gradients, so the joint epochs start with them warm); every BatchNorm outside
    an attention unit is put in eval mode, so its statistics stay the parent's. The units thus adapt to
    the exact function they will be judged in. Gradients still flow through the inherited
    layers to the units; a model without unit parameters (the baseline, θ− units) learns
    nothing in such an epoch, which keeps the treatment of every architecture the same.
    Call it after the scheduler has set the epoch's rates and after ``model.train()``.
    """
    for group in optimizer.param_groups:
        if not group.get(NEW_UNITS_GROUP):
            group["lr"] = 0.0
    in_units = {id(m) for unit in model.modules() if isinstance(unit, AttentionUnit) for m in unit.modules()}
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d) and id(module) not in in_units:
            module.eval()


def speed_up_new_units(optimizer: torch.optim.Optimizer, model: torch.nn.Module, factor: float) -> int:
    """Move the attention units' parameters of each parameter group into a twin group at ``factor`` x its rate.

    The twin keeps the group's other settings (weight decay, its Ultralytics ``param_group``
    tag), so warm-up and the learning-rate schedule treat it alike, scaled. Returns how many
    parameters moved.
    """
    new = {id(p) for m in model.modules() if isinstance(m, AttentionUnit) for p in m.parameters()}
    moved = 0
    for group in list(optimizer.param_groups):
        fast = [p for p in group["params"] if id(p) in new]
        if not fast:
            continue
        group["params"] = [p for p in group["params"] if id(p) not in new]
        settings = {k: v for k, v in group.items() if k != "params"}
        optimizer.add_param_group({**settings, "params": fast, "lr": group["lr"] * factor, NEW_UNITS_GROUP: True})
        moved += len(fast)
    return moved
