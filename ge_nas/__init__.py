"""ge-nas: neural architecture search for Gather-Excite attention placement in YOLOv8.

Importing ``ge_nas`` registers the ``GatherExcite`` layer with Ultralytics, so any
model YAML may use it by name, for example ``[-1, 1, GatherExcite, [256, theta-plus, 4]]``
(arguments: real channel count, variant, extent with 0 for global).
"""

from importlib.metadata import PackageNotFoundError, version

from ge_nas.layers import GatherExcite
from ge_nas.ultralytics_bridge import register_layers

try:
    __version__ = version("ge-nas")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

register_layers()

__all__ = ["GatherExcite", "__version__"]
