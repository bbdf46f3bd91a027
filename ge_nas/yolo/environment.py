"""Ultralytics kept offline and quiet: settings it reads from the environment when it is imported.

No torch or Ultralytics import here: ``import ge_nas`` applies them before Ultralytics loads.
"""

from __future__ import annotations

import os

__all__ = ["OFFLINE_ENVIRONMENT", "keep_ultralytics_offline"]

# Read by Ultralytics at import time: no online probes that wait for a timeout, no auto-installs.
OFFLINE_ENVIRONMENT: dict[str, str] = {"YOLO_OFFLINE": "true", "YOLO_AUTOINSTALL": "false"}


def keep_ultralytics_offline() -> None:
    """Set the offline settings, unless the user set them otherwise."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
