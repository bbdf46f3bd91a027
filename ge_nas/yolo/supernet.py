"""A search space's supernet: trained once, one sampled path per batch; each candidate scored as its sub-network.

Single-path one-shot search (Guo et al., ECCV 2020) trains one network holding every choice
and scores candidates without training them. Here:

* the supernet is the space's base model with every insertion point holding all of its
  choices (:func:`ge_nas.space.model_yaml.generate_supernet_yaml`), built by Ultralytics from
  that YAML, inheriting the parent's weights (every unit starts with an open gate) and trained
  by Ultralytics' trainer with the inherited proxies' recipe; before every batch a
  :class:`PathSampler` activates one path (:meth:`SearchSpace.sample_path`), so only that
  path computes and learns;
* a candidate is scored by copying its path's weights into the candidate's own model (the
  one its YAML builds, as a proxy would train), recalibrating every BatchNorm on a few
  training batches (a shared BatchNorm's statistics mix every path's, and scores without
  this step are badly wrong), and validating it as a proxy's last epoch is validated;
* the same copy, saved as a checkpoint, lets ``ge-nas train`` fine-tune the candidate from
  the supernet's weights (:func:`save_candidate_checkpoint`).

Example:
    >>> scorer = SupernetScorer(Path("studies/s/supernet.pt"), data_yaml, settings, 4)  # doctest: +SKIP
    >>> model = scorer.candidate_model(candidate, generated.model)  # doctest: +SKIP
    >>> scorer.validate(model)  # doctest: +SKIP
    {'map50': 0.93, 'map50-95': 0.61}
"""

from __future__ import annotations

import itertools
import random
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from ultralytics.cfg import get_cfg
from ultralytics.data import build_dataloader, build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.models.yolo.detect import DetectionTrainer, DetectionValidator
from ultralytics.nn import tasks
from ultralytics.utils.torch_utils import unwrap_model

from ge_nas import __version__
from ge_nas.layers.choice import LayerChoice
from ge_nas.search.config import ProxySettings
from ge_nas.space.candidate import Candidate
from ge_nas.space.model_yaml import SupernetPoint, generate_supernet_yaml, index_map_of, supernet_points
from ge_nas.space.search_space import SearchSpace
from ge_nas.yolo.console import quiet
from ge_nas.yolo.inheritance import Inheritance
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.registration import register_layers
from ge_nas.yolo.training import epoch_metrics, mosaic_overrides, train_supernet

__all__ = [
    "PathSampler",
    "SupernetScorer",
    "activate",
    "copy_path",
    "load_supernet",
    "recalibrate_batchnorm",
    "save_candidate_checkpoint",
    "train_space_supernet",
]


def train_space_supernet(
    space: SearchSpace,
    data_yaml: Path,
    settings: ProxySettings,
    epochs: int,
    workdir: Path,
    parent_state: dict[str, torch.Tensor],
) -> Path:
    """Train (or resume) the supernet of ``space`` in ``workdir/supernet``; return its last checkpoint.

    Paths are drawn from ``settings.seed``, the epoch and the batch, so a resumed run draws
    the paths the uninterrupted one would have.
    """
    generated = generate_supernet_yaml(space)
    model_yaml = generated.write(Path(workdir) / "supernet" / "model.yaml")
    sampler = PathSampler(space, generated.points, settings.seed)
    inheritance = Inheritance(parent_state, generated.index_map)
    return train_supernet(model_yaml, data_yaml, settings, epochs, workdir, inheritance, sampler)


class PathSampler:
    """Ultralytics callback (``on_train_batch_start``): activates one sampled path of the supernet per batch."""

    def __init__(self, space: SearchSpace, points: tuple[SupernetPoint, ...], seed: int) -> None:
        self.space, self.points, self.seed = space, points, seed
        self.epoch, self.batch = -1, 0

    def __call__(self, trainer: DetectionTrainer) -> None:
        if trainer.epoch != self.epoch:
            self.epoch, self.batch = trainer.epoch, 0
        rng = random.Random(f"{self.seed}:{self.epoch}:{self.batch}")  # str seeds hash the same in every process
        self.batch += 1
        activate(unwrap_model(trainer.model), self.space.sample_path(rng), self.points)


def activate(model: nn.Module, candidate: Candidate, points: tuple[SupernetPoint, ...] | None = None) -> None:
    """Switch every choice of the supernet ``model`` to ``candidate``'s units (no unit where it has none).

    Raises:
        ValueError: the candidate places a unit the supernet does not hold.
    """
    points = points if points is not None else supernet_points(model.yaml)
    placements = dict(candidate.placements)
    unknown = set(placements) - {point.index for point in points}
    if unknown:
        raise ValueError(f"candidate {candidate.key!r} places units at layers {sorted(unknown)}, not in the supernet")
    for point in points:
        placement = placements.get(point.index)
        try:
            after, inside = point.options(placement)
        except ValueError:
            raise ValueError(f"the supernet holds no {placement.label} at layer {point.index}") from None
        if point.after is not None:
            model.model[point.after].active = after
        if point.inside_options:
            for module in model.model[point.layer].modules():
                if isinstance(module, LayerChoice):
                    module.active = inside


def load_supernet(path: Path) -> nn.Module:
    """A trained supernet from its checkpoint (EMA weights, as Ultralytics saves them), in float and eval mode."""
    register_layers()
    with quiet():
        model, _ = tasks.load_checkpoint(str(path))
    supernet_points(model.yaml)  # refuses any other model
    return model.float().eval()


def copy_path(candidate: nn.Module, supernet: nn.Module) -> None:
    """Copy the supernet's active path into ``candidate``'s model, layer by layer.

    A candidate's base layer ``i`` and the unit row it adds after ``i`` are the supernet's base
    layer ``i`` and the choice after it (both index maps are read from the models' YAML);
    inside a layer, modules match by name, and a choice stands for its active option.

    Raises:
        ValueError: the two do not match (another space, or the supernet not set to this candidate).
    """
    theirs = index_map_of(supernet.yaml)
    ours = index_map_of(candidate.yaml)
    base_of = {new: base for base, new in ours.items()}
    for row, layer in enumerate(candidate.model):
        source = theirs[base_of[row]] if row in base_of else theirs[base_of[row - 1]] + 1
        _copy(layer, supernet.model[source], f"model.{row}")


def _copy(target: nn.Module, source: nn.Module, where: str) -> None:
    if isinstance(source, LayerChoice):
        source = source.options[source.active]
        if type(target) is not type(source) or target.extra_repr() != source.extra_repr():  # a unit without tensors
            raise ValueError(f"{where}: the supernet's path holds {source!r:.80}, the candidate {target!r:.80}")
    with torch.no_grad():
        tensors = itertools.chain(target.named_parameters(recurse=False), target.named_buffers(recurse=False))
        for name, tensor in tensors:
            value = getattr(source, name, None)
            if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
                raise ValueError(f"{where}.{name}: the supernet's path has no tensor of shape {tuple(tensor.shape)}")
            tensor.copy_(value)
    children = dict(source.named_children())
    for name, child in target.named_children():
        if name not in children:
            raise ValueError(f"{where}.{name}: not in the supernet's path")
        _copy(child, children[name], f"{where}.{name}")
    for name in children.keys() - dict(target.named_children()).keys():
        extra = children[name]
        if not (isinstance(extra, LayerChoice) and extra.active == 0):
            raise ValueError(f"{where}.{name}: the supernet's path has a unit here, the candidate none")


def recalibrate_batchnorm(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Replace every BatchNorm's running statistics by those of ``batches`` (their plain average), then eval mode.

    Under weight sharing a BatchNorm's statistics mix every path that ran through it, so each
    candidate gets its own from a few forward passes in training mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
    model.train()
    with torch.no_grad():
        for images in batches:
            model(images)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.eval()


class SupernetScorer:
    """Scores candidates with a trained supernet: their path's weights, BatchNorm recalibrated, validated.

    Made once per worker: it loads the supernet, draws the calibration batches (the same
    for every candidate, so their scores differ only by architecture) and prepares the
    validation data.

    Args:
        supernet: the supernet's checkpoint.
        data_yaml: the dataset (training images calibrate, validation images score).
        settings: the proxies' settings (image size, batch, device, seed).
        calibration_batches: training batches each candidate's BatchNorm statistics come from.
    """

    def __init__(self, supernet: Path, data_yaml: Path, settings: ProxySettings, calibration_batches: int) -> None:
        self.device = _device(settings.device)
        self.supernet = load_supernet(supernet).to(self.device)
        self.points = supernet_points(self.supernet.yaml)
        self.batches = _training_batches(data_yaml, settings, calibration_batches, self.device)
        self.data_yaml, self.settings = data_yaml, settings
        self.validator: DetectionValidator | None = None  # made on first use: it prepares the validation images

    def candidate_model(self, candidate: Candidate, model_yaml: dict[str, Any]) -> nn.Module:
        """The candidate's model (its YAML, the data's classes) with the supernet's path and its own statistics."""
        activate(self.supernet, candidate, self.points)
        model = build_model({**model_yaml, "nc": self.supernet.yaml["nc"]}).to(self.device)
        copy_path(model, self.supernet)
        recalibrate_batchnorm(model, self.batches)
        return model

    def validate(self, model: nn.Module) -> dict[str, float]:
        """``map50`` and ``map50-95`` of ``model`` on the validation images (the model is fused: use it no further)."""
        if self.validator is None:
            settings = self.settings
            args = {"data": str(self.data_yaml), "imgsz": settings.imgsz, "batch": settings.batch * 2, "task": "detect"}
            args.update({"device": settings.device, "plots": False, "save_json": False, "verbose": False})
            # It makes its folder, and with plots and JSON off writes nothing there.
            with tempfile.TemporaryDirectory(prefix="ge-nas-validation-") as folder:
                self.validator = DetectionValidator(save_dir=Path(folder), args=args)
        with quiet():
            return epoch_metrics(self.validator(model=model))


def save_candidate_checkpoint(model: nn.Module, output: Path, origin: dict[str, Any]) -> Path:
    """Save a candidate's model (with the supernet's weights) as a checkpoint Ultralytics and ``ge-nas train`` load.

    Stored as Ultralytics stores a trained model (``model``, ``train_args``, date, version), in
    float, plus ``ge_nas``: where the weights came from.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "model": model.float().cpu(),
        "train_args": {},
        "date": datetime.now(timezone.utc).isoformat(),
        "version": f"ge-nas {__version__}",
        "ge_nas": origin,
    }
    torch.save(checkpoint, output)
    return output


def _device(device: str) -> torch.device:
    return torch.device("cpu" if device == "cpu" else f"cuda:{device.split(',')[0]}")


def _training_batches(data_yaml: Path, settings: ProxySettings, count: int, device: torch.device) -> list[torch.Tensor]:
    """``count`` batches of training images, augmented as in training, the same ones for a given seed.

    A training set of fewer batches is passed over again (augmentation draws new mosaics, if on).
    """
    overrides = {"data": str(data_yaml), "imgsz": settings.imgsz, "fraction": settings.fraction}
    cfg = get_cfg(overrides={**overrides, **mosaic_overrides(settings.mosaic)})
    with quiet():
        data = check_det_dataset(str(data_yaml))
        dataset = build_yolo_dataset(cfg, data["train"], settings.batch, data, mode="train", stride=32)
    loader = build_dataloader(dataset, settings.batch, workers=0, shuffle=True, device=device)
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    passes = itertools.chain.from_iterable(iter(loader) for _ in range(count))
    return [batch["img"].to(device).float() / 255 for batch in itertools.islice(passes, count)]
