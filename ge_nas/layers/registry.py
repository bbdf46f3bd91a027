"""Every attention module by the name a search space gives it, and one unit made from a placement's choice.

A placement names a variant and an extent (:mod:`ge_nas.layers.choices`): a GE variant with
its extent, or another module's name with extent 0. These functions turn that pair into the
layer, its model YAML arguments, and its paper's parameter and operation counts, so that the
rest of ge-nas never asks which module it is.

Example:
    >>> unit = make_unit(64, "cbam", 0)
    >>> type(unit).__name__, unit_args("theta-plus", 4), unit_args("cbam", 0)
    ('ConvBlockAttention', ['theta-plus', 4], [])
"""

from __future__ import annotations

from ge_nas.layers.cbam import ConvBlockAttention, cbam_param_count
from ge_nas.layers.choices import GE, MODULES, check_variant_and_extent, module_of
from ge_nas.layers.coord_attention import CoordinateAttention, coord_attention_param_count
from ge_nas.layers.eca import EfficientChannelAttention, eca_param_count
from ge_nas.layers.gather_excite import GatherExcite, gather_excite_param_count
from ge_nas.layers.simam import SimAM
from ge_nas.layers.squeeze_excite import SqueezeExcite, squeeze_excite_param_count
from ge_nas.layers.unit import AttentionUnit, GateOps

__all__ = ["UNIT_CLASSES", "make_unit", "unit_args", "unit_ops", "unit_param_count"]

# The layer class of each module, under the name model YAMLs use for it.
UNIT_CLASSES: dict[str, type[AttentionUnit]] = {
    cls.__name__: cls
    for cls in (
        GatherExcite,
        SqueezeExcite,
        EfficientChannelAttention,
        ConvBlockAttention,
        CoordinateAttention,
        SimAM,
    )
}


def unit_args(variant: str, extent: int) -> list[str | int]:
    """A unit's model YAML arguments after its channel count: GE's variant and extent; none for the others."""
    check_variant_and_extent(variant, extent)
    return [variant, extent] if module_of(variant) == GE else []


def make_unit(channels: int, variant: str, extent: int) -> AttentionUnit:
    """The unit for a placement's variant and extent, on ``channels`` channels.

    Raises:
        ValueError: an unknown variant or module, or an extent it does not have.
    """
    check_variant_and_extent(variant, extent)
    layer = UNIT_CLASSES[MODULES[module_of(variant)].layer]
    return layer(channels, *unit_args(variant, extent))


def unit_param_count(channels: int, variant: str, extent: int) -> int:
    """The paper's parameter count of one unit (GE's by variant and extent; SimAM has none)."""
    module = module_of(variant)
    if module == GE:
        return gather_excite_param_count(channels, variant, extent)
    counts = {
        "se": squeeze_excite_param_count,
        "eca": eca_param_count,
        "cbam": cbam_param_count,
        "coord": coord_attention_param_count,
        "simam": lambda _: 0,
    }
    return counts[module](channels)


def unit_ops(channels: int, variant: str, extent: int, height: int, width: int) -> GateOps:
    """The paper's operation count of one unit on a ``channels x height x width`` map, batch 1."""
    return make_unit(channels, variant, extent).ops(height, width)
