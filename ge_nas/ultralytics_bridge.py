"""The one place where ge-nas touches Ultralytics.

Everything else in ge-nas speaks in its own terms (YAML dicts, paths, metric dicts), so
an Ultralytics upgrade is a change to this file alone. Here:

* Ultralytics is made offline and quiet before it is first imported: no telemetry,
  no update checks, no auto-installs, no online probes that wait for a timeout.
* ge-nas layers are registered by name, so model YAMLs can say ``GatherExcite``, and
  ``C2fGE`` (a C2f whose bottlenecks carry GE units on their residual branch).
* Base model YAMLs are located, "baked" to one scale (real channels and repeats
  written out), and described layer by layer (channels, stride) for search spaces.
* Models are built from YAML, and short proxy runs are trained with per-epoch
  metrics handed to a callback that may stop the run (pruning).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Must precede the first ultralytics import: it probes the network and reads these at import time.
os.environ.setdefault("YOLO_OFFLINE", "true")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

import torch
import yaml
from ultralytics.data import utils as data_utils
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn import tasks
from ultralytics.utils import LOGGER
from ultralytics.utils.events import events
from ultralytics.utils.ops import make_divisible
from ultralytics.utils.torch_utils import get_flops

from ge_nas.errors import InputError
from ge_nas.layers import GatherExcite
from ge_nas.layers.bottleneck_ge import GEBottleneck

# Map keys of Ultralytics' validation metrics to the names ge-nas stores.
METRIC_KEYS = {"metrics/mAP50(B)": "map50", "metrics/mAP50-95(B)": "map50-95"}


# The YAML name of a C2f with GE inside its bottlenecks; its arguments are the C2f's
# followed by the variant and the extent.
INSIDE_MODULE = "C2fGE"

# Modules whose first YAML argument is an output channel count that parse_model scales
# by the width multiple (its local ``base_modules`` set), and whose repeats it scales.
_SCALED_MODULES = frozenset(
    [
        "Classify",
        "Conv",
        "ConvTranspose",
        "GhostConv",
        "Bottleneck",
        "GhostBottleneck",
        "SPP",
        "SPPF",
        "C2fPSA",
        "C2PSA",
        "DWConv",
        "Focus",
        "BottleneckCSP",
        "C1",
        "C2",
        "C2f",
        "C3k2",
        "RepNCSPELAN4",
        "ELAN1",
        "ADown",
        "AConv",
        "SPPELAN",
        "C2fAttn",
        "C3",
        "C3TR",
        "C3Ghost",
        "nn.ConvTranspose2d",
        "DWConvTranspose2d",
        "C3x",
        "RepC3",
        "PSA",
        "SCDown",
        "C2fCIB",
        "A2C2f",
    ]
)
# Modules whose construction depends on the scale's name, which a baked YAML cannot carry.
_SCALE_NAMED = frozenset({"C3k2", "A2C2f", "C2fAttn", "C2fCIB"})
DETECT_MODULE = "Detect"


def register_layers() -> None:
    """Make ge-nas layers resolvable by name in any Ultralytics model YAML.

    ``parse_model`` looks names up in the ``ultralytics.nn.tasks`` module namespace,
    so setting the class there is enough for ``GatherExcite``; no Ultralytics source is
    edited. ``C2fGE`` needs C2f's channel scaling, which parse_model grants only to its
    own classes, so ``tasks.parse_model`` is wrapped: C2fGE rows are built as C2f and
    then get a GE unit inside each bottleneck.
    """
    tasks.GatherExcite = GatherExcite
    allow_checkpoint_loading()
    if not getattr(tasks.parse_model, "ge_nas_wrapped", False):
        tasks.parse_model = _with_ge_inside(tasks.parse_model)
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


def _with_ge_inside(parse_model: Callable[..., Any]) -> Callable[..., Any]:
    def parse_model_with_ge(d: dict[str, Any], ch: int, verbose: bool = True) -> tuple[torch.nn.Module, list[int]]:
        inside: dict[int, tuple[str, int]] = {}
        sections = {}
        index = 0
        for section in ("backbone", "head"):
            rows = []
            for f, n, module, args in d.get(section, []):
                if module == INSIDE_MODULE:
                    *args, variant, extent = args
                    inside[index] = (variant, extent)
                    module = "C2f"
                rows.append([f, n, module, args])
                index += 1
            sections[section] = rows
        model, save = parse_model({**d, **sections}, ch, verbose)
        for i, (variant, extent) in inside.items():
            _put_ge_inside(model[i], variant, extent)
        return model, save

    parse_model_with_ge.ge_nas_wrapped = True  # type: ignore[attr-defined]
    return parse_model_with_ge


def _put_ge_inside(c2f: torch.nn.Module, variant: str, extent: int) -> None:
    """Replace each bottleneck of a built C2f by a GEBottleneck around the same convs."""
    c2f.m = torch.nn.ModuleList(GEBottleneck(b, GatherExcite(b.cv2.conv.out_channels, variant, extent)) for b in c2f.m)
    c2f.type = INSIDE_MODULE
    c2f.np = sum(p.numel() for p in c2f.parameters())


def load_model_yaml(name_or_path: str | Path) -> dict[str, Any]:
    """The model dict of an Ultralytics model YAML, by name (``yolov8s.yaml``) or by path.

    Raises FileNotFoundError when neither a file nor a model shipped with Ultralytics
    has that name, and InputError when it names something that is not a known layer.
    """
    with quiet():
        try:
            d = tasks.yaml_model_load(str(name_or_path))
        except (FileNotFoundError, AssertionError) as error:
            raise FileNotFoundError(str(error)) from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise InputError(f"{name_or_path}: not valid YAML{where}; fix the syntax") from None
    d.pop("yaml_file", None)
    check_model_yaml(d, str(name_or_path))
    return d


# An activation is a torch.nn class called with plain literal arguments, e.g. nn.SiLU() or
# nn.LeakyReLU(0.1, inplace=True): nothing else, because Ultralytics eval()s this string.
_SAFE_ACTIVATION = re.compile(r"(torch\.)?nn\.[A-Za-z][A-Za-z0-9_]*\(\s*[\w.\s,=+-]*\)")


def check_model_yaml(d: dict[str, Any], source: str) -> None:
    """Refuse a model YAML that could run code or names a layer that is not allowed.

    Ultralytics ``eval``s the ``activation`` key when it builds a model, so a model YAML
    from elsewhere (a shared search space, an exported architecture, a study database)
    could carry code. Every layer must be a torch.nn class, an Ultralytics layer, or a
    ge-nas layer.
    """
    activation = d.get("activation")
    if activation is not None and not (isinstance(activation, str) and _SAFE_ACTIVATION.fullmatch(activation)):
        raise InputError(f"{source}: activation {activation!r} is not a torch.nn layer such as nn.SiLU(); fix it")
    for section in ("backbone", "head"):
        for i, row in enumerate(d.get(section) or []):
            module = row[2] if isinstance(row, list) and len(row) == 4 else None
            if not isinstance(module, str) or not _allowed_layer(module):
                raise InputError(f"{source}: {section}[{i}] names {module!r}, which is not an allowed layer")


def _allowed_layer(name: str) -> bool:
    if name == INSIDE_MODULE:
        return True
    layer = getattr(torch.nn, name[3:], None) if name.startswith("nn.") else getattr(tasks, name, None)
    return isinstance(layer, type) and issubclass(layer, torch.nn.Module)


def bake_scale(d: dict[str, Any]) -> dict[str, Any]:
    """The same model with its scale written out: real channels and repeats in every row.

    A model YAML that keeps ``scales`` is rebuilt at whatever scale Ultralytics guesses
    from its *file name* (the first one when the name says nothing), so a generated
    ``best.yaml`` of a yolov8s search would silently become a yolov8n. Baking removes
    that trap and shows the real channel counts a GE row must carry.
    """
    depth, width, max_channels = 1.0, 1.0, float("inf")
    if d.get("scales"):
        scale = d.get("scale") or next(iter(d["scales"]))
        depth, width, max_channels = d["scales"][scale]
    else:
        depth, width = d.get("depth_multiple", 1.0), d.get("width_multiple", 1.0)
    baked = {k: v for k, v in d.items() if k not in {"scales", "scale", "depth_multiple", "width_multiple"}}
    for section in ("backbone", "head"):
        rows = []
        for f, n, module, args in d[section]:
            if module in _SCALE_NAMED:
                raise ValueError(f"module {module} depends on the scale's name; only YOLOv8-style models are supported")
            args = list(args)
            n = max(round(n * depth), 1) if n > 1 else n
            if module in _SCALED_MODULES and module != "Classify":
                args[0] = make_divisible(min(args[0], max_channels) * width, 8)
            rows.append([copy.deepcopy(f), n, module, args])
        baked[section] = rows
    return baked


@dataclass(frozen=True)
class LayerInfo:
    """What a search space needs to know about one layer of a built model."""

    index: int
    module: str  # the module name as written in the YAML, e.g. "C2f"
    section: str  # "backbone" or "head"
    channels: int  # output channels (0 for Detect)
    stride: int  # input size / output size (0 for Detect)
    feeds_detect: bool
    bottlenecks: int = 0  # C2f only: bottlenecks inside
    hidden_channels: int = 0  # C2f only: channels of each bottleneck


def describe_layers(d: dict[str, Any], probe_size: int = 256) -> list[LayerInfo]:
    """Build the model of dict ``d`` once and read each layer's channels and stride."""
    register_layers()
    with quiet():
        model = tasks.DetectionModel(copy.deepcopy(d), verbose=False).eval()
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out, i=i: shapes.__setitem__(i, tuple(out.shape)))
        for i, layer in enumerate(model.model[:-1])
    ]
    with torch.no_grad():
        model(torch.zeros(1, d.get("channels", 3), probe_size, probe_size))
    for hook in hooks:
        hook.remove()
    rows = [(section, row) for section in ("backbone", "head") for row in d[section]]
    detect_from = rows[-1][1][0]
    detect_inputs = set(detect_from if isinstance(detect_from, list) else [detect_from])
    infos = []
    for i, (section, (_f, _n, module, _args)) in enumerate(rows):
        shape = shapes.get(i)
        layer = model.model[i]
        is_c2f = module in {"C2f", INSIDE_MODULE}
        infos.append(
            LayerInfo(
                index=i,
                module=module,
                section=section,
                channels=shape[1] if shape else 0,
                stride=probe_size // shape[2] if shape else 0,
                feeds_detect=i in detect_inputs,
                bottlenecks=len(layer.m) if is_c2f else 0,
                hidden_channels=layer.c if is_c2f else 0,
            )
        )
    return infos


def build_model(model_yaml: Path | str | dict[str, Any]) -> torch.nn.Module:
    """Build the detection model (an ``nn.Module``) described by a model YAML, untrained."""
    register_layers()
    if not isinstance(model_yaml, dict):
        model_yaml = load_model_yaml(model_yaml)
    check_model_yaml(model_yaml, "model")
    with quiet():
        return tasks.DetectionModel(copy.deepcopy(model_yaml), verbose=False)


def cuda_device_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def count_gflops(model: torch.nn.Module, imgsz: int) -> float:
    """GFLOPs of one forward pass at ``imgsz`` x ``imgsz``, as Ultralytics reports them (thop).

    thop counts the multiply-adds of convolutions and normalisations; the pooling and
    gating of a GE unit are elementwise and count for nothing, as in Ultralytics' own summaries.
    """
    return float(get_flops(model, imgsz))


def inference_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy in eval mode with Conv+BN fused, as a deployed model runs (for latency)."""
    fused = copy.deepcopy(model).eval()
    with quiet():
        return fused.fuse(verbose=False)


# Training settings for a model that inherited a trained parent. Ultralytics' "auto" optimizer
# (AdamW at about 1.4e-3 on small runs) and its warm-up (bias learning rate 0.1) suit training
# from scratch; on inherited weights they wreck the parent in the first epoch (measured on the
# built-in data: parent 0.63 mAP50-95, 0.013 after one epoch at the auto settings, 0.62 with these).
FINE_TUNE: dict[str, Any] = {"optimizer": "AdamW", "lr0": 2e-4, "warmup_epochs": 0}

# At that gentle rate the inherited weights stay put, but new GE units, which start as an
# open gate, barely move in a few proxy epochs: a θ and a θ+ unit at one point then score
# the same to four decimals. So in an inheriting run the parameters of GatherExcite units
# train this many times faster (their own optimizer parameter groups, same schedule).
NEW_UNIT_LR_FACTOR = 10.0


def fine_tune_recipe() -> str:
    """How inherited proxies train, in one line; a study stores it, so proxies of another recipe never mix."""
    settings = " ".join(f"{k}={v}" for k, v in FINE_TUNE.items())
    return f"{settings} nbs=batch new_units_lr_x{NEW_UNIT_LR_FACTOR:g}"


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


@dataclass(frozen=True)
class Inheritance:
    """Where a candidate's weights come from: a parent's state dict and the base->candidate index map."""

    parent_state: dict[str, torch.Tensor]
    index_map: dict[int, int]


def load_parent_state(weights: Path) -> dict[str, torch.Tensor]:
    """The float state dict of an Ultralytics checkpoint (its EMA weights when it has them)."""
    register_layers()
    with quiet():
        model, _ = tasks.load_checkpoint(str(weights))
    return {name: tensor.detach().float().clone() for name, tensor in model.state_dict().items()}


def inherit_weights(model: torch.nn.Module, inheritance: Inheritance) -> tuple[int, int]:
    """Copy every parent tensor into the layer it maps to; GE units are set to an open gate.

    Layer ``i`` of the base is layer ``index_map[i]`` of the candidate, and a C2f with GE
    inside keeps its bottlenecks' ``cv1``/``cv2`` names, so a parent key
    ``model.<i>.<rest>`` lands on ``model.<index_map[i]>.<rest>``. Tensors whose shape
    differs (a Detect head trained for another class count) are left as initialised.
    Returns (tensors copied, tensors of the parent).
    """
    target = model.state_dict()
    copied: dict[str, torch.Tensor] = {}
    for name, tensor in inheritance.parent_state.items():
        section, index, *rest = name.split(".")
        if section != "model" or not index.isdigit() or int(index) not in inheritance.index_map:
            continue
        new_name = ".".join(["model", str(inheritance.index_map[int(index)]), *rest])
        if new_name in target and target[new_name].shape == tensor.shape:
            copied[new_name] = tensor
    model.load_state_dict(copied, strict=False)
    for module in model.modules():
        if isinstance(module, GatherExcite):
            module.open_gate()
    return len(copied), len(inheritance.parent_state)


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
        if self.inheritance is not None:
            speed_up_new_units(optimizer, model, NEW_UNIT_LR_FACTOR)
        return optimizer


def speed_up_new_units(optimizer: torch.optim.Optimizer, model: torch.nn.Module, factor: float) -> int:
    """Move the GatherExcite parameters of each parameter group into a twin group at ``factor`` x its rate.

    The twin keeps the group's other settings (weight decay, its Ultralytics ``param_group``
    tag), so warm-up and the learning-rate schedule treat it alike, scaled. Returns how many
    parameters moved.
    """
    new = {id(p) for m in model.modules() if isinstance(m, GatherExcite) for p in m.parameters()}
    moved = 0
    for group in list(optimizer.param_groups):
        fast = [p for p in group["params"] if id(p) in new]
        if not fast:
            continue
        group["params"] = [p for p in group["params"] if id(p) not in new]
        settings = {k: v for k, v in group.items() if k != "params"}
        optimizer.add_param_group({**settings, "params": fast, "lr": group["lr"] * factor})
        moved += len(fast)
    return moved


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
    gently (see :data:`FINE_TUNE`).
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

    load_model_yaml(model_yaml)  # refuses a YAML that names unknown layers or carries code
    with quiet(verbose), _no_font_download():
        args = _train_args(model_yaml, data_yaml, settings, workdir, verbose)
        if inheritance is not None:
            # A step per batch: Ultralytics accumulates batches up to a nominal 64 images, which
            # leaves a proxy of a few epochs on a small dataset only a handful of optimizer steps.
            args.update({**FINE_TUNE, "nbs": settings.batch})
        trainer = _ProxyTrainer(overrides=args)
        trainer.inheritance = inheritance
        trainer.add_callback("on_fit_epoch_end", record)
        trainer.train()
    return history


def train_parent(model_yaml: Path, data_yaml: Path, settings: ProxySettings, epochs: int, workdir: Path) -> Path:
    """Train the base model once on the dataset, as the parent every candidate inherits from.

    Returns the final checkpoint (``last.pt``: the end of the schedule, not the best epoch,
    so the parent does not depend on validation noise).
    """
    load_model_yaml(model_yaml)  # refuses a YAML that names unknown layers or carries code
    with quiet(), _no_font_download():
        args = _train_args(model_yaml, data_yaml, settings, workdir, verbose=False)
        trainer = DetectionTrainer(overrides={**args, "epochs": epochs, "name": "parent", "save": True, "val": False})
        trainer.train()
    return Path(trainer.last)


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


def allow_checkpoint_loading() -> None:
    """Let Ultralytics' restricted loading (``ULTRALYTICS_SAFE_LOAD=1``) read checkpoints with GE layers.

    Restricted loading unpickles with ``torch.load(weights_only=True)`` and allows only
    torch and Ultralytics classes, so a ``best.pt`` holding ge-nas layers is refused as
    "outside the supported checkpoint format". Ours are plain ``nn.Module`` trees with no
    custom unpickling, as safe as the classes Ultralytics allows; torch's process-wide
    allow-list takes them once ``ge_nas`` is imported. Default loading needs none of this.
    """
    if hasattr(torch.serialization, "add_safe_globals"):  # torch >= 2.4
        torch.serialization.add_safe_globals([GatherExcite, GEBottleneck])


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
    overrides = {
        "model": str(model_yaml),
        "task": "detect",
        "mode": "train",
        "data": str(data_yaml),
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "device": device,
        "project": str(project),
        "name": name,
        "pretrained": False,  # a GE architecture has no pretrained checkpoint to start from
        "plots": False,  # plotting downloads a font
        "verbose": verbose,
        **(FINE_TUNE if inheritance is not None else {}),
    }
    load_model_yaml(model_yaml)  # refuses a YAML that names unknown layers or carries code
    with quiet(verbose), _no_font_download():
        trainer = _InheritingTrainer(overrides=overrides)
        trainer.inheritance = inheritance
        trainer.train()
    return Path(trainer.best)
