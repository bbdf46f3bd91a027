"""Training runs with Ultralytics' trainer: short proxies, the parent, and full runs.

Every run is built from one set of overrides (:func:`_overrides`), so proxies, the parent
and full runs differ only where they must: a proxy keeps no checkpoints and reports each
epoch's metrics to a callback that may stop it (pruning); a run that inherits a parent's
weights fine-tunes them gently (:data:`ge_nas.search.config.FINE_TUNE`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from ultralytics.models.yolo.detect import DetectionTrainer

from ge_nas.search.config import FINE_TUNE, NEW_UNIT_LR_FACTOR, ProxySettings
from ge_nas.yolo.console import no_font_download, quiet
from ge_nas.yolo.inheritance import NEW_UNITS_GROUP, Inheritance, inherit_weights, speed_up_new_units
from ge_nas.yolo.model_files import load_model_yaml

__all__ = [
    "METRIC_KEYS",
    "EpochCallback",
    "epoch_metrics",
    "learning_rates",
    "train_full",
    "train_parent",
    "train_proxy",
    "train_supernet",
]

# Map keys of Ultralytics' validation metrics to the names ge-nas stores.
METRIC_KEYS = {"metrics/mAP50(B)": "map50", "metrics/mAP50-95(B)": "map50-95"}

EpochCallback = Callable[[int, dict[str, float]], None]


class _InheritingTrainer(DetectionTrainer):
    """A DetectionTrainer whose freshly built model first inherits a parent's weights, if given."""

    inheritance: Inheritance | None = None

    def get_model(
        self, cfg: str | dict[str, Any] | None = None, weights: torch.nn.Module | None = None, verbose: bool = True
    ) -> torch.nn.Module:
        model = super().get_model(cfg=cfg, weights=weights, verbose=verbose)
        if self.inheritance is not None:
            inherit_weights(model, self.inheritance)
        return model

    def build_optimizer(self, model: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        optimizer = super().build_optimizer(model, *args, **kwargs)
        if self.inheritance is not None and self.inheritance.new_units:
            speed_up_new_units(optimizer, model, NEW_UNIT_LR_FACTOR)
        return optimizer


class _SupernetTrainer(_InheritingTrainer):
    """Trains a supernet: keeps ``last.pt`` after every epoch (so a stopped run resumes) and never validates.

    Its model is every candidate at once, so its validation would score whichever path the
    EMA copy holds, which means nothing; candidates are scored one by one afterwards. Its
    optimizer always runs the GE units at their own rate: on resume the units come from the
    checkpoint, not from a parent, yet the optimizer state must match the one saved.
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
        optimizer = DetectionTrainer.build_optimizer(self, model, *args, **kwargs)
        speed_up_new_units(optimizer, model, NEW_UNIT_LR_FACTOR)
        return optimizer


class _ProxyTrainer(_InheritingTrainer):
    """An inheriting trainer that keeps no checkpoints and skips the final re-validation.

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
    inheritance: Inheritance | None = None,
) -> list[dict[str, float]]:
    """Train ``model_yaml`` as a proxy and return the metrics of each epoch.

    From scratch, or, with ``inheritance``, starting from a parent's weights and fine-tuned
    gently (see :data:`~ge_nas.search.config.FINE_TUNE`).
    ``on_epoch(epoch, metrics)`` is called after every validation (epochs count from 1);
    it may raise (for example ``optuna.TrialPruned``) to stop the run, and the exception
    propagates to the caller.
    """
    history: list[dict[str, float]] = []

    def record(trainer: DetectionTrainer) -> None:
        metrics = {**epoch_metrics(trainer.metrics), **learning_rates(trainer.optimizer)}
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(trainer.epoch + 1, metrics)

    overrides = _proxy_overrides(model_yaml, data_yaml, settings, workdir, verbose, inheritance)
    _train(_ProxyTrainer, overrides, inheritance, verbose, on_fit_epoch_end=record)
    return history


def epoch_metrics(validation: dict[str, Any]) -> dict[str, float]:
    """ge-nas's names for one validation's accuracies; a metric that is not there is an error, never a 0.

    Raises:
        RuntimeError: Ultralytics reported no such metric (the keys it did report are named).
    """
    missing = [theirs for theirs in METRIC_KEYS if theirs not in validation]
    if missing:
        reported = ", ".join(validation) or "nothing"
        raise RuntimeError(f"Ultralytics' validation reported no {', '.join(missing)} (it reported: {reported})")
    values = {ours: float(validation[theirs]) for theirs, ours in METRIC_KEYS.items()}
    bad = [name for name, value in values.items() if not math.isfinite(value)]
    if bad:
        raise RuntimeError(f"Ultralytics' validation reported {', '.join(bad)} = {values[bad[0]]}, not a number")
    return values


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The rates the epoch ended with: ``lr`` of the inherited weights, ``lr_new_units`` of the GE units if apart.

    Stored with each epoch, so a study shows the recipe as it ran (GE units at
    :data:`~ge_nas.search.config.NEW_UNIT_LR_FACTOR` times the rate when inheriting).
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
    return Path(_train(DetectionTrainer, overrides, None, verbose=False).last)


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
        load_model_yaml(overrides["model"])  # refuses a YAML that names unknown layers or carries code
        trainer_inheritance = inheritance
    with quiet(), no_font_download():
        trainer = _SupernetTrainer(overrides=overrides)
        trainer.inheritance = trainer_inheritance
        trainer.add_callback("on_train_batch_start", on_batch)
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
) -> Path:
    """Train ``model_yaml`` with Ultralytics' own recipe; return the path of ``best.pt``.

    From scratch, or from a parent's weights as in the search (``inheritance``). Everything
    but the arguments is Ultralytics' default (augmentation, optimiser, AMP on GPU), so the
    result compares with a plain ``yolo train``. ``project`` should be absolute:
    Ultralytics puts a relative one under its own runs directory. An existing
    ``project/name`` gets a numbered sibling instead of being overwritten.
    """
    overrides = _overrides(model_yaml, data_yaml, epochs, imgsz, batch, device, project, name, verbose, inheritance)
    return Path(_train(_InheritingTrainer, overrides, inheritance, verbose).best)


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
) -> dict[str, Any]:
    """What every ge-nas training sets; the rest is Ultralytics' default."""
    return {
        "model": str(model_yaml),
        "task": "detect",
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
        **(FINE_TUNE if inheritance is not None else {}),
    }


def _proxy_overrides(
    model_yaml: Path,
    data_yaml: Path,
    settings: ProxySettings,
    workdir: Path,
    verbose: bool,
    inheritance: Inheritance | None,
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
    trainer_class: type[DetectionTrainer],
    overrides: dict[str, Any],
    inheritance: Inheritance | None,
    verbose: bool,
    **callbacks: Callable[[DetectionTrainer], None],
) -> DetectionTrainer:
    load_model_yaml(overrides["model"])  # refuses a YAML that names unknown layers or carries code
    with quiet(verbose), no_font_download():
        trainer = trainer_class(overrides=overrides)
        if isinstance(trainer, _InheritingTrainer):
            trainer.inheritance = inheritance
        for event, callback in callbacks.items():
            trainer.add_callback(event, callback)
        trainer.train()
    return trainer
