"""The choices a Gather-Excite unit offers: variant and extent, in the paper's terms.

Kept apart from the layer itself so that reading a study (codes, keys, labels) needs no torch.

Extents are 2, 4, 8, or 0 for global (the paper's "global"; 0 as in timm, because an
Ultralytics model YAML cannot carry the bare word ``global``).
"""

from __future__ import annotations

__all__ = ["EXTENTS", "GLOBAL_EXTENT", "PAPER_NAMES", "VARIANTS", "check_variant_and_extent", "extent_label"]

VARIANTS: tuple[str, ...] = ("theta-minus", "theta", "theta-plus")
EXTENTS: tuple[int, ...] = (2, 4, 8, 0)
GLOBAL_EXTENT = 0
# How the paper writes each variant (GE-θ−, GE-θ, GE-θ+), for labels meant for people.
PAPER_NAMES: dict[str, str] = {"theta-minus": "θ−", "theta": "θ", "theta-plus": "θ+"}


def check_variant_and_extent(variant: str, extent: int) -> None:
    """Raise ValueError naming the allowed values when a variant or extent is unknown."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown Gather-Excite variant {variant!r}: use one of {', '.join(VARIANTS)}")
    if isinstance(extent, bool) or extent not in EXTENTS:
        raise ValueError(f"unknown Gather-Excite extent {extent!r}: use 2, 4, 8, or 0 for global")


def extent_label(extent: int) -> str:
    """``"global"`` for 0, else the number."""
    return "global" if extent == GLOBAL_EXTENT else str(extent)
