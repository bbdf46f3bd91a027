"""Attention layers that ge-nas places into YOLO models."""

from ge_nas.layers.gather_excite import (
    EXTENTS,
    GLOBAL_EXTENT,
    VARIANTS,
    GatherExcite,
    gather_excite_param_count,
)

__all__ = ["EXTENTS", "GLOBAL_EXTENT", "VARIANTS", "GatherExcite", "gather_excite_param_count"]
