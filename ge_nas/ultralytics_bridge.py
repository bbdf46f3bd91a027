"""The one place where ge-nas touches Ultralytics.

Everything else in ge-nas speaks in its own terms (YAML dicts, paths, metric dicts), so
an Ultralytics upgrade is a change to this file alone. Here:

* Ultralytics is made offline and quiet before it is first imported: no telemetry,
  no update checks, no auto-installs, no online probes that wait for a timeout.
* ge-nas layers are registered by name, so model YAMLs can say ``GatherExcite``.
* Models are built from YAML, and short proxy runs are trained with per-epoch
  metrics handed to a callback that may stop the run (pruning).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Must precede the first ultralytics import: it probes the network and reads these at import time.
os.environ.setdefault("YOLO_OFFLINE", "true")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

import torch
from ultralytics import YOLO
from ultralytics.data import utils as data_utils
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn import tasks
from ultralytics.utils import LOGGER
from ultralytics.utils.events import events

from ge_nas.layers import GatherExcite

# Map keys of Ultralytics' validation metrics to the names ge-nas stores.
METRIC_KEYS = {"metrics/mAP50(B)": "map50", "metrics/mAP50-95(B)": "map50-95"}


def register_layers() -> None:
    """Make ge-nas layers resolvable by name in any Ultralytics model YAML.

    ``parse_model`` looks names up in the ``ultralytics.nn.tasks`` module namespace,
    so setting the class there is enough; no Ultralytics source is edited.
    """
    tasks.GatherExcite = GatherExcite
    # Analytics are also gated by a connectivity probe; if ultralytics was imported
    # before ge-nas on a networked machine, switch them off explicitly.
    events.enabled = False


@contextlib.contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """Silence Ultralytics' own logging (per-batch bars, summaries) unless ``verbose``."""
    if verbose:
        yield
        return
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


@contextlib.contextmanager
def _no_font_download() -> Iterator[None]:
    """Skip the font look-up that every dataset check makes (an HTTP request when offline).

    ge-nas never plots, so the font is never needed; the patch lasts only while
    ge-nas itself trains, and a user's own Ultralytics runs are left as they are.
    """
    original = data_utils.check_font
    data_utils.check_font = lambda *args, **kwargs: None
    try:
        yield
    finally:
        data_utils.check_font = original


def build_model(model_yaml: Path | str) -> torch.nn.Module:
    """Build the detection model (an ``nn.Module``) described by a model YAML, untrained."""
    with quiet():
        return YOLO(str(model_yaml), task="detect").model


@dataclass(frozen=True)
class ProxySettings:
    """How a short proxy run trains: the same for every candidate of a study."""

    epochs: int = 1
    imgsz: int = 64
    batch: int = 16
    fraction: float = 1.0
    device: str = "cpu"
    seed: int = 0
    workers: int = 0


EpochCallback = Callable[[int, dict[str, float]], None]


class _ProxyTrainer(DetectionTrainer):
    """A DetectionTrainer that keeps no checkpoints and skips the final re-validation.

    A proxy only needs each epoch's validation metrics; writing ``last.pt``/``best.pt``
    and validating ``best.pt`` again at the end would only cost time and disk.
    """

    def save_model(self) -> bool:
        return False

    def final_eval(self) -> None:
        return None


def train_proxy(
    model_yaml: Path,
    data_yaml: Path,
    settings: ProxySettings,
    workdir: Path,
    on_epoch: EpochCallback | None = None,
    verbose: bool = False,
) -> list[dict[str, float]]:
    """Train ``model_yaml`` from scratch as a proxy and return the metrics of each epoch.

    ``on_epoch(epoch, metrics)`` is called after every validation (epochs count from 1);
    it may raise (for example ``optuna.TrialPruned``) to stop the run, and the exception
    propagates to the caller.
    """
    history: list[dict[str, float]] = []

    def record(trainer: DetectionTrainer) -> None:
        metrics = {ours: float(trainer.metrics.get(theirs, 0.0)) for theirs, ours in METRIC_KEYS.items()}
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(trainer.epoch + 1, metrics)

    with quiet(verbose), _no_font_download():
        trainer = _ProxyTrainer(overrides=_train_args(model_yaml, data_yaml, settings, workdir, verbose))
        trainer.add_callback("on_fit_epoch_end", record)
        trainer.train()
    return history


def _train_args(
    model_yaml: Path, data_yaml: Path, settings: ProxySettings, workdir: Path, verbose: bool
) -> dict[str, Any]:
    return {
        "model": str(model_yaml),
        "task": "detect",
        "mode": "train",
        "data": str(data_yaml),
        "epochs": settings.epochs,
        "imgsz": settings.imgsz,
        "batch": settings.batch,
        "fraction": settings.fraction,
        "device": settings.device,
        "seed": settings.seed,
        "deterministic": True,
        "workers": settings.workers,
        "project": str(workdir),
        "name": "proxy",
        "exist_ok": True,
        "plots": False,  # plotting downloads a font
        "val": True,
        "amp": False,
        "pretrained": False,
        "verbose": verbose,
    }
