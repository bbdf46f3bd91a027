"""Module names as written in a model YAML: Ultralytics' own that ge-nas looks for, and ge-nas's.

Plain strings, no torch: a generated YAML is text, and reading one needs no model.
"""

from __future__ import annotations

__all__ = ["DETECT_MODULE", "GE_MODULE", "INSIDE_MODULE"]

DETECT_MODULE = "Detect"
# A Gather-Excite row: [-1, 1, GatherExcite, [channels, variant, extent]].
GE_MODULE = "GatherExcite"
# A C2f with GE inside its bottlenecks; its arguments are the C2f's followed by the variant and the extent.
INSIDE_MODULE = "C2fGE"
