"""Module names as written in a model YAML: Ultralytics' own that ge-nas looks for, and ge-nas's.

Plain strings, no torch: a generated YAML is text, and reading one needs no model.

* A unit after a layer is a row of its module's layer, with the real channel count first:
  ``[-1, 1, GatherExcite, [64, theta-plus, 4]]``, ``[-1, 1, SqueezeExcite, [64]]``.
* A block with a unit inside each of its bottlenecks is the block's name followed by the
  module's suffix, with the block's own arguments (and GE's variant and extent after them):
  ``[-1, 1, C2fGE, [128, True, theta, 4]]``, ``[-1, 2, C3k2CBAM, [256, False, 0.25]]``.
"""

from __future__ import annotations

from ge_nas.layers.choices import MODULES, module_of

__all__ = [
    "ADDED_MODULES",
    "ATTENTION_LAYERS",
    "HEAD_TASKS",
    "INSIDE_BLOCKS",
    "INSIDE_CHOICE",
    "LAYER_CHOICE",
    "inside_module",
    "split_inside_module",
    "task_of",
]

# The heads ge-nas searches under, and the Ultralytics task each one trains for. YOLO26's own
# heads end in 26; pose and OBB heads train on box mAP, as Ultralytics reports it for them.
HEAD_TASKS: dict[str, str] = {
    "Detect": "detect",
    "Segment": "segment",
    "Segment26": "segment",
    "Pose": "pose",
    "Pose26": "pose",
    "OBB": "obb",
    "OBB26": "obb",
}
# Rows that hold one unit after a layer: [-1, 1, <layer>, [channels, ...]].
ATTENTION_LAYERS: frozenset[str] = frozenset(m.layer for m in MODULES.values())
# Blocks whose bottlenecks may carry units (C3k2's C3k inner blocks included).
INSIDE_BLOCKS: tuple[str, ...] = ("C2f", "C3k2")
# A supernet's choice of units after a layer: [-1, 1, LayerChoice, [channels, [[module, args], ...]]], one
# [module, args] per unit a candidate's row would name (option 0, no unit, is implicit).
LAYER_CHOICE = "LayerChoice"
# A supernet's choice of units inside a block's bottlenecks: [from, n, InsideChoice, [input channels, [[module,
# args], ...]]], one [module, args] per row a candidate with that unit inside would have in its place.
INSIDE_CHOICE = "InsideChoice"
# Rows a placement adds after a base layer: every other row of a generated YAML is a base layer, in order.
ADDED_MODULES: frozenset[str] = ATTENTION_LAYERS | {LAYER_CHOICE}


def inside_module(block: str, variant: str) -> str:
    """The row name of ``block`` with a unit of ``variant``'s module inside: ``C2fGE``, ``C3k2SE``."""
    return block + MODULES[module_of(variant)].suffix


def split_inside_module(name: str) -> tuple[str, str] | None:
    """``(block, module)`` of a name :func:`inside_module` made, else None: ``C3k2CA`` is ``("C3k2", "coord")``."""
    for block in INSIDE_BLOCKS:
        for module in MODULES.values():
            if name == block + module.suffix:
                return block, module.name
    return None


def task_of(model: dict) -> str:
    """The Ultralytics task of a model dict, from its last row (the head); ``""`` when ge-nas does not search it."""
    rows = (model.get("backbone") or []) + (model.get("head") or [])
    head = rows[-1][2] if rows and isinstance(rows[-1], list) and len(rows[-1]) == 4 else None
    return HEAD_TASKS.get(head, "") if isinstance(head, str) else ""
