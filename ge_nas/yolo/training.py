"""Training runs with Ultralytics' trainer: short proxies, the parent, and full runs.

Every run is built from one set of overrides (:func:`_overrides`), so proxies, the parent
and full runs differ only where they must: a proxy keeps no checkpoints and reports each
epoch's metrics to a callback that may stop it (pruning); a run that inherits a parent's
weights fine-tunes them with a :class:`~ge_nas.search.config.FineTune` recipe
(:data:`~ge_nas.search.config.FINE_TUNE` unless told otherwise). The model YAML's head says
the task (detection, segmentation, pose, OBB) and so which Ultralytics trainer runs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.obb import OBBTrainer
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer

from ge_nas.interrupts import raise_if_interrupted
from ge_nas.search.config import FINE_TUNE, FineTune, ProxySettings
from ge_nas.yolo.console import no_font_download, quiet
from ge_nas.yolo.inheritance import (
    NEW_UNITS_GROUP,
    Inheritance,
    hold_inherited_layers,
    inherit_weights,
    speed_up_new_units,
)
from ge_nas.yolo.model_files import load_model_yaml
from ge_nas.yolo.model_names import task_of

__all__ = [
    "MASK_METRIC_KEYS",
    "METRIC_KEYS",
    "EpochCallback",
    "epoch_metrics",
    "learning_rates",
    "mosaic_overrides",
    "train_full",
    "train_parent",
    "train_proxy",
    "train_supernet",
]

# Map keys of Ultralytics' validation metrics to the names ge-nas stores: box mAP for every task
# (pose and OBB included), and a segmentation run's mask mAP too.
METRIC_KEYS = {"metrics/mAP50(B)": "map50", "metrics/mAP50-95(B)": "map50-95"}
MASK_METRIC_KEYS = {"metrics/mAP50(M)": "mask-map50", "metrics/mAP50-95(M)": "mask-map50-95"}
# Ultralytics' trainer for each task.
_TRAINERS: dict[str, type[DetectionTrainer]] = {
    "detect": DetectionTrainer,
    "segment": SegmentationTrainer,
    "pose": PoseTrainer,
    "obb": OBBTrainer,
}

EpochCallback = Callable[[int, dict[str, float]], None]


class _Inheriting:
    """Trainer mixin: the freshly built model first inherits a parent's weights, if given.

    It then trains as ``recipe`` says: the attention units faster, and alone for its first
    ``units_alone_epochs`` (the inherited layers frozen), then jointly.
    """

    inheritance: Inheritance | None = None
    recipe: FineTune = FINE_TUNE

    def get_model(
        self, cfg: str | dict[str, Any] | None = None, weights: torch.nn.Module | None = None, verbose: bool = True
    ) -> torch.nn.Module:
        model = super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        if self.inheritance is not None:
            inherit_weights(model, self.inheritance, self.recipe.gate_bias)
        return model

    def build_optimizer(self, model: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        optimizer = super().build_optimizer(model, *args, **kwargs)
        if self.inheritance is not None and self.inheritance.new_units:
            speed_up_new_units(optimizer, model, self.recipe.new_unit_lr_factor)
        return optimizer

    def _model_train(self) -> None:
        """Ultralytics' train mode at each epoch's start; the inherited layers held while the units learn alone.

        Ultralytics calls this after its scheduler has set the epoch's learning rates (it sets
        them anew each epoch, so the inherited layers train again once the units' epochs are
        over) and it puts every BatchNorm in training mode: the hold goes here, each epoch.
        """
        super()._model_train()
        if self.inheritance is not None and self.epoch < self.recipe.units_alone_epochs:
            hold_inherited_layers(self.model, self.optimizer)


class _Supernet(_Inheriting):
    """Trainer mixin for a supernet: keeps ``last.pt`` after every epoch (so a stopped run resumes), never validates.

    Its model is every candidate at once, so its validation would score whichever path the
    EMA copy holds, which means nothing; candidates are scored one by one afterwards. Its
    optimizer always runs the attention units at their own rate: on resume the units come from
    the checkpoint, not from a parent, yet the optimizer state must match the one saved.
    """

    def validate(self) -> tuple[dict[str, float], None]:
        return {}, None

    def final_eval(self) -> None:
        return None

    def save_model(self) -> bool:
        saved = super().save_model()
        self.best.unlink(missing_ok=True)  # "best" of an unvalidated run is the last epoch again
        return saved

    def build_optimizer(self, model: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        optimizer = super(_Inheriting, self).build_optimizer(model, *args, **kwargs)  # the task trainer's own
        speed_up_new_units(optimizer, model, self.recipe.new_unit_lr_factor)
        return optimizer


class _Proxy(_Inheriting):
    """Trainer mixin: inheriting, and keeping no checkpoints and skipping the final re-validation.

    A proxy only needs each epoch's validation metrics; writing ``last.pt``/``best.pt``
    and validating ``best.pt`` again at the end would only cost time and disk.
    """

    def save_model(self) -> bool:
        return False

    def final_eval(self) -> None:
        return None


@functools.cache
def _trainer(task: str, mixin: type | None) -> type[DetectionTrainer]:
    """The task's Ultralytics trainer, with ``mixin`` (inheriting, or a proxy) in front."""
    base = _TRAINERS[task]
    if mixin is None:
        return base
    return type(f"{mixin.__name__.strip('_')}{base.__name__}", (mixin, base), {})


def train_proxy(
    model_yaml: Path,
    data_yaml: Path,
    settings: ProxySettings,
    workdir: Path,
    on_epoch: EpochCallback | None = None,
    verbose: bool = False,
    inheritance: Inheritance | None = None,
    recipe: FineTune = FINE_TUNE,
) -> list[dict[str, float]]:
    """Train ``model_yaml`` as a proxy and return the metrics of each epoch.

    From scratch, or, with ``inheritance``, starting from a parent's weights and fine-tuned
    as ``recipe`` says (see :class:`~ge_nas.search.config.FineTune`).
    ``on_epoch(epoch, metrics)`` is called after every validation (epochs count from 1);
    it may raise (for example ``optuna.TrialPruned``) to stop the run, and the exception
    propagates to the caller.
    """
    history: list[dict[str, float]] = []

    def record(trainer: DetectionTrainer) -> None:
        metrics = {**epoch_metrics(trainer.metrics, trainer.args.task), **learning_rates(trainer.optimizer)}
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(trainer.epoch + 1, metrics)

    overrides = _proxy_overrides(model_yaml, data_yaml, settings, workdir, verbose, inheritance, recipe)
    _train(_Proxy, overrides, inheritance, recipe, verbose, on_fit_epoch_end=record)
    return history


def epoch_metrics(validation: dict[str, Any], task: str = "detect") -> dict[str, float]:
    """ge-nas's names for one validation's accuracies; a metric that is not there is an error, never a 0.

    Every task gives box mAP; segmentation also mask mAP.

    Raises:
        RuntimeError: Ultralytics reported no such metric (the keys it did report are named).
    """
    keys = {**METRIC_KEYS, **(MASK_METRIC_KEYS if task == "segment" else {})}
    missing = [theirs for theirs in keys if theirs not in validation]
    if missing:
        reported = ", ".join(validation) or "nothing"
        raise RuntimeError(f"Ultralytics' validation reported no {', '.join(missing)} (it reported: {reported})")
    values = {ours: float(validation[theirs]) for theirs, ours in keys.items()}
    bad = [name for name, value in values.items() if not math.isfinite(value)]
    if bad:
        raise RuntimeError(f"Ultralytics' validation reported {', '.join(bad)} = {values[bad[0]]}, not a number")
    return values


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The rates the epoch ended with: ``lr`` of the inherited weights, ``lr_new_units`` of the GE units if apart.

    Stored with each epoch, so a study shows the recipe as it ran (GE units at
    ``new_unit_lr_factor`` times the rate when inheriting).
    """
    rates = {"lr": float(optimizer.param_groups[0]["lr"])}
    fast = [group["lr"] for group in optimizer.param_groups if group.get(NEW_UNITS_GROUP)]
    if fast:
        rates["lr_new_units"] = float(fast[0])
    return rates


def train_parent(
    model_yaml: Path, data_yaml: Path, settings: ProxySettings, epochs: int, workdir: Path, patience: int = 0
) -> Path:
    """Train the base model once on the dataset, as the parent every candidate inherits from.

    ``epochs`` exactly, or with ``patience`` until the validation mAP has not improved for
    that many epochs (Ultralytics' early stopping), ``epochs`` at most. Returns the final
    checkpoint (``last.pt``: where training ended, not the best epoch, so the parent does not
    depend on one validation's noise).
    """
    overrides = _proxy_overrides(model_yaml, data_yaml, settings, workdir, verbose=False, inheritance=None)
    overrides.update({"epochs": epochs, "name": "parent", "save": True, "val": bool(patience)})
    if patience:
        overrides["patience"] = patience
    return Path(_train(None, overrides, None, FINE_TUNE, verbose=False).last)


def train_supernet(
    model_yaml: Path,
    data_yaml: Path,
    settings: ProxySettings,
    epochs: int,
    workdir: Path,
    inheritance: Inheritance,
    on_batch: Callable[[DetectionTrainer], None],
) -> Path:
    """Train a supernet ``epochs`` epochs with the inherited proxies' recipe, or resume its run; return ``last.pt``.

    The run lives in ``workdir/supernet``; Ultralytics saves ``weights/last.pt`` after every
    epoch, and a call that finds one resumes from it (optimizer, EMA and epoch included),
    with the length it was started with. ``on_batch(trainer)`` runs before every batch (to
    choose its path); it is not saved, so every call passes it again.
    """
    last = Path(workdir).absolute() / "supernet" / "weights" / "last.pt"
    if last.is_file():
        if _finished(last):
            return last
        overrides: dict[str, Any] = {"resume": str(last), "data": str(data_yaml), "device": settings.device}
        trainer_inheritance = None  # the checkpoint holds the weights
    else:
        overrides = _proxy_overrides(model_yaml, data_yaml, settings, workdir, verbose=False, inheritance=inheritance)
        overrides.update({"epochs": epochs, "name": "supernet", "save": True, "val": False})
        trainer_inheritance = inheritance
    model = load_model_yaml(model_yaml)  # refuses a YAML that names unknown layers or carries code
    with quiet(), no_font_download():
        trainer = _trainer(task_of(model), _Supernet)(overrides={**overrides, "task": task_of(model)})
        trainer.inheritance = trainer_inheritance
        trainer.add_callback("on_train_batch_start", on_batch)
        _stop_when_interrupted(trainer)
        trainer.train()
    return Path(trainer.last)


def _finished(last: Path) -> bool:
    """Whether a run's ``last.pt`` is from its final epoch (Ultralytics refuses to resume those)."""
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    return int(checkpoint["epoch"]) + 1 >= int(checkpoint["train_args"]["epochs"])


def train_full(
    model_yaml: Path,
    data_yaml: Path,
    epochs: int,
    imgsz: int,
    batch: int,
    device: str,
    project: Path,
    name: str,
    verbose: bool = True,
    inheritance: Inheritance | None = None,
    recipe: FineTune = FINE_TUNE,
    mosaic: bool = True,
) -> Path:
    """Train ``model_yaml`` with Ultralytics' own recipe; return the path of ``best.pt``.

    From scratch, or from a parent's weights as in the search (``inheritance``, fine-tuned
    as ``recipe`` says, with Ultralytics' usual batch accumulation). Everything
    but the arguments is Ultralytics' default (augmentation, optimiser, AMP on GPU), so the
    result compares with a plain ``yolo train``. ``project`` should be absolute:
    Ultralytics puts a relative one under its own runs directory. An existing
    ``project/name`` gets a numbered sibling instead of being overwritten. ``mosaic=False``
    switches Ultralytics' mosaic augmentation off (see :class:`ProxySettings`).
    """
    overrides = _overrides(
        model_yaml, data_yaml, epochs, imgsz, batch, device, project, name, verbose, inheritance, recipe, mosaic
    )
    return Path(_train(_Inheriting, overrides, inheritance, recipe, verbose).best)


def _overrides(
    model_yaml: Path,
    data_yaml: Path,
    epochs: int,
    imgsz: int,
    batch: int,
    device: str,
    project: Path,
    name: str,
    verbose: bool,
    inheritance: Inheritance | None,
    recipe: FineTune,
    mosaic: bool,
) -> dict[str, Any]:
    """What every ge-nas training sets; the rest is Ultralytics' default."""
    return {
        "model": str(model_yaml),
        "mode": "train",
        "data": str(data_yaml),
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "device": device,
        "project": str(Path(project).absolute()),  # a relative one would land under Ultralytics' runs/
        "name": name,
        "pretrained": False,  # a GE architecture has no pretrained checkpoint to start from
        "plots": False,  # plotting downloads a font
        "verbose": verbose,
        **(recipe.overrides() if inheritance is not None else {}),
        **mosaic_overrides(mosaic),
    }


def mosaic_overrides(mosaic: bool) -> dict[str, Any]:
    """Ultralytics' arguments for mosaic augmentation on (its default) or off."""
    return {} if mosaic else {"mosaic": 0.0, "close_mosaic": 0}


def _proxy_overrides(
    model_yaml: Path,
    data_yaml: Path,
    settings: ProxySettings,
    workdir: Path,
    verbose: bool,
    inheritance: Inheritance | None,
    recipe: FineTune = FINE_TUNE,
) -> dict[str, Any]:
    """A proxy's run: seeded and deterministic, validated every epoch, in full precision."""
    overrides = _overrides(
        model_yaml,
        data_yaml,
        settings.epochs,
        settings.imgsz,
        settings.batch,
        settings.device,
        workdir,
        "proxy",
        verbose,
        inheritance,
        recipe,
        settings.mosaic,
    )
    overrides.update(
        {
            "fraction": settings.fraction,
            "seed": settings.seed,
            "deterministic": True,
            "workers": settings.workers,
            "exist_ok": True,
            "val": True,
            "amp": False,
        }
    )
    if inheritance is not None:
        # A step per batch: Ultralytics accumulates batches up to a nominal 64 images, which
        # leaves a proxy of a few epochs on a small dataset only a handful of optimizer steps.
        overrides["nbs"] = settings.batch
    return overrides


def _train(
    mixin: type | None,
    overrides: dict[str, Any],
    inheritance: Inheritance | None,
    recipe: FineTune,
    verbose: bool,
    **callbacks: Callable[[DetectionTrainer], None],
) -> DetectionTrainer:
    """Train with the trainer of the model's task (read from its head), ``mixin`` in front."""
    model = load_model_yaml(overrides["model"])  # refuses a YAML that names unknown layers or carries code
    task = task_of(model)
    with quiet(verbose), no_font_download():
        trainer = _trainer(task, mixin)(overrides={**overrides, "task": task})
        if isinstance(trainer, _Inheriting):
            trainer.inheritance, trainer.recipe = inheritance, recipe
        for event, callback in callbacks.items():
            trainer.add_callback(event, callback)
        _stop_when_interrupted(trainer)
        trainer.train()
    return trainer


def _stop_when_interrupted(trainer: DetectionTrainer) -> None:
    """Check for a Ctrl-C after every training and validation batch (the validator shares these callbacks).

    An interrupt held back during a database write (see :mod:`ge_nas.interrupts`) is raised
    within one batch, not at the end of the epoch.
    """
    for event in ("on_train_batch_end", "on_val_batch_end"):
        trainer.add_callback(event, lambda _: raise_if_interrupted())
