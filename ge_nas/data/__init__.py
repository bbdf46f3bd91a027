"""Datasets ge-nas can generate itself."""

from ge_nas.data.synthetic import CLASS_NAMES, make_synthetic_dataset

__all__ = ["CLASS_NAMES", "make_synthetic_dataset"]
