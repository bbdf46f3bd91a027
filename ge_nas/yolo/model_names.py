"""Module names as written in a model YAML: Ultralytics' own that ge-nas looks for, and ge-nas's.

Plain strings, no torch: a generated YAML is text, and reading one needs no model.
"""

from __future__ import annotations

__all__ = ["ADDED_MODULES", "DETECT_MODULE", "GE_MODULE", "INSIDE_CHOICE", "INSIDE_MODULE", "LAYER_CHOICE"]

DETECT_MODULE = "Detect"
# A Gather-Excite row: [-1, 1, GatherExcite, [channels, variant, extent]].
GE_MODULE = "GatherExcite"
# A C2f with GE inside its bottlenecks; its arguments are the C2f's followed by the variant and the extent.
INSIDE_MODULE = "C2fGE"
# A supernet's choice of units after a layer: [-1, 1, LayerChoice, [channels, [[module, args], ...]]], one
# [module, args] per unit a candidate's row would name (option 0, no unit, is implicit).
LAYER_CHOICE = "LayerChoice"
# A supernet's choice of units inside a block's bottlenecks: [from, n, InsideChoice, [input channels, [[module,
# args], ...]]], one [module, args] per row a candidate with that unit inside would have in its place.
INSIDE_CHOICE = "InsideChoice"
# Rows a placement adds after a base layer: every other row of a generated YAML is a base layer, in order.
ADDED_MODULES = frozenset({GE_MODULE, LAYER_CHOICE})
