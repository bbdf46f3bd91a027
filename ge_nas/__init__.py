"""ge-nas: neural architecture search for Gather-Excite attention placement in YOLO detectors.

Importing ``ge_nas`` makes its layers usable by name in any Ultralytics model YAML, for
example ``[-1, 1, GatherExcite, [256, theta-plus, 4]]`` (arguments: real channel count,
variant, extent with 0 for global) or ``[-1, 1, ConvBlockAttention, [256]]`` (the other
modules take the real channel count alone), and blocks with units inside their bottlenecks
(``C2fGE``, ``C3k2SE``, ...): they are registered with Ultralytics as soon as Ultralytics
loads its model parser, before or after this import.

The public API below is imported on first use, so ``import ge_nas`` (and every ``ge-nas``
command's start) loads neither torch nor Ultralytics until something needs them.

Example:
    >>> import ge_nas
    >>> config = ge_nas.build_config(trials=4)  # doctest: +SKIP
    >>> study = ge_nas.run_search(config)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ge_nas.yolo.environment import keep_ultralytics_offline
from ge_nas.yolo.import_hook import register_layers_with_ultralytics

try:
    __version__ = version("ge-nas")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# Where each public name lives; ``ge_nas.<name>`` imports its module on first use.
_PUBLIC: dict[str, str] = {
    "GatherExcite": "ge_nas.layers.gather_excite",
    "SqueezeExcite": "ge_nas.layers.squeeze_excite",
    "EfficientChannelAttention": "ge_nas.layers.eca",
    "ConvBlockAttention": "ge_nas.layers.cbam",
    "CoordinateAttention": "ge_nas.layers.coord_attention",
    "SimAM": "ge_nas.layers.simam",
    "GEBottleneck": "ge_nas.layers.ge_bottleneck",
    "Candidate": "ge_nas.space.candidate",
    "Placement": "ge_nas.space.candidate",
    "SearchSpace": "ge_nas.space.search_space",
    "load_space": "ge_nas.space.search_space",
    "generate_model_yaml": "ge_nas.space.model_yaml",
    "Objectives": "ge_nas.search.config",
    "ProxySettings": "ge_nas.search.config",
    "SearchConfig": "ge_nas.search.config",
    "build_config": "ge_nas.search.config",
    "run_search": "ge_nas.search.runner",
    "ParetoPruner": "ge_nas.search.pareto_pruner",
    "TrialRecord": "ge_nas.storage.records",
    "rank_study": "ge_nas.ranking.fronts",
    "make_synthetic_dataset": "ge_nas.data.synthetic",
}

keep_ultralytics_offline()
register_layers_with_ultralytics()

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'ge_nas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
