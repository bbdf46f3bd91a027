"""Ultralytics kept offline and quiet: settings it reads from the environment when it is imported.

No torch or Ultralytics import here: ``import ge_nas`` applies the offline settings before
Ultralytics loads, and the ``ge-nas`` command also keeps Ultralytics' settings file and its
first-run banner out of the user's way.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OFFLINE_ENVIRONMENT", "keep_ultralytics_offline", "keep_ultralytics_to_itself"]

# Read by Ultralytics at import time: no online probes that wait for a timeout, no auto-installs.
OFFLINE_ENVIRONMENT: dict[str, str] = {"YOLO_OFFLINE": "true", "YOLO_AUTOINSTALL": "false"}


def keep_ultralytics_offline() -> None:
    """Set the offline settings, unless the user set them otherwise."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def keep_ultralytics_to_itself() -> None:
    """For the ``ge-nas`` command: Ultralytics' settings in ge-nas's own cache folder, and no banner.

    On its first import Ultralytics writes ``~/.config/Ultralytics/settings.json`` and prints
    "Creating new Ultralytics Settings". A ``ge-nas`` run keeps that file in
    ``$XDG_CACHE_HOME/ge-nas/ultralytics`` (``~/.cache/ge-nas/ultralytics``) and logs only errors
    by default (``--verbose`` shows Ultralytics' output again). A user's own scripts that
    ``import ge_nas`` keep Ultralytics' defaults. Settings the user set are left as they are.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache / "ge-nas" / "ultralytics"))
    os.environ.setdefault("YOLO_VERBOSE", "false")
