"""The choices an attention unit offers: which module, and for Gather-Excite its variant and extent.

Kept apart from the layers themselves so that reading a study (codes, keys, labels) needs no torch.

Gather-Excite has variants (θ−, θ, θ+) and extents 2, 4, 8, or 0 for global (the paper's
"global"; 0 as in timm, because an Ultralytics model YAML cannot carry the bare word
``global``). The other modules (:data:`MODULES`) have one form each, the one their paper
uses; all of them gather their context over the whole map, so their extent is 0 (global)
and their "variant" is the module's own name. A placement is therefore always a variant
and an extent: ``theta-plus/4`` or ``se/0``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EXTENTS",
    "GE",
    "GLOBAL_EXTENT",
    "MODULES",
    "PAPER_NAMES",
    "VARIANTS",
    "AttentionModule",
    "check_variant_and_extent",
    "choice_label",
    "extent_label",
    "module_of",
]

VARIANTS: tuple[str, ...] = ("theta-minus", "theta", "theta-plus")
EXTENTS: tuple[int, ...] = (2, 4, 8, 0)
GLOBAL_EXTENT = 0
# How the paper writes each variant (GE-θ−, GE-θ, GE-θ+), for labels meant for people.
PAPER_NAMES: dict[str, str] = {"theta-minus": "θ−", "theta": "θ", "theta-plus": "θ+"}


@dataclass(frozen=True)
class AttentionModule:
    """One attention module as search spaces, model YAMLs and labels name it.

    ``name`` is what a space file and a candidate's key say (``se``); ``layer`` the class a
    model YAML names for a unit after a layer (``SqueezeExcite``); ``suffix`` what a block
    with units inside its bottlenecks appends to the block's name (``C2fSE``); ``code`` the
    token in a candidate's short code; ``label`` the name people know it by.
    """

    name: str
    layer: str
    suffix: str
    code: str
    label: str


GE = "ge"
# Gather-Excite first: spaces offer it alone unless they list other modules.
MODULES: dict[str, AttentionModule] = {
    module.name: module
    for module in (
        AttentionModule(GE, "GatherExcite", "GE", "", "GE"),
        AttentionModule("se", "SqueezeExcite", "SE", "se", "SE"),
        AttentionModule("eca", "EfficientChannelAttention", "ECA", "eca", "ECA"),
        AttentionModule("cbam", "ConvBlockAttention", "CBAM", "cbam", "CBAM"),
        AttentionModule("coord", "CoordinateAttention", "CA", "ca", "CoordAtt"),
        AttentionModule("simam", "SimAM", "SimAM", "sim", "SimAM"),
    )
}


def module_of(variant: str) -> str:
    """The module a placement's variant belongs to: ``ge`` for θ−, θ and θ+, else the variant itself."""
    return GE if variant in VARIANTS else variant


def check_variant_and_extent(variant: str, extent: int) -> None:
    """Raise ValueError naming the allowed values when a variant (or module) or its extent is unknown."""
    if isinstance(extent, bool) or not isinstance(extent, int):
        raise ValueError(f"unknown extent {extent!r}: use 2, 4, 8, or 0 for global")
    if variant in VARIANTS:
        if extent not in EXTENTS:
            raise ValueError(f"unknown Gather-Excite extent {extent!r}: use 2, 4, 8, or 0 for global")
        return
    if variant not in MODULES or variant == GE:
        others = ", ".join(name for name in MODULES if name != GE)
        raise ValueError(f"unknown attention variant {variant!r}: use one of {', '.join(VARIANTS)} (GE) or {others}")
    if extent != GLOBAL_EXTENT:
        raise ValueError(f"{variant} gathers over the whole map: its extent is 0 (global), not {extent!r}")


def extent_label(extent: int) -> str:
    """``"global"`` for 0, else the number."""
    return "global" if extent == GLOBAL_EXTENT else str(extent)


def choice_label(variant: str, extent: int) -> str:
    """A unit for people: ``"θ+ 4"`` for a GE variant and its extent, ``"SE"`` for another module."""
    if variant in VARIANTS:
        return f"{PAPER_NAMES[variant]} {extent_label(extent)}"
    return MODULES[variant].label
