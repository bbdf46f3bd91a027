"""Model YAMLs: located by name or path, checked, baked to one scale, described layer by layer, built.

A base model YAML (``yolov8n.yaml`` or a user's file) is read here, refused when it could
run code or names an unknown layer, and "baked": its scale written out as real channel
counts and repeats, so every row a search space adds can carry the real channel count.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from ultralytics.nn import tasks
from ultralytics.nn.modules.block import Bottleneck
from ultralytics.utils.ops import make_divisible

from ge_nas.errors import InputError
from ge_nas.layers.ge_bottleneck import GEBottleneck
from ge_nas.safe_yaml import excerpt, load_yaml
from ge_nas.yolo.console import quiet
from ge_nas.yolo.model_names import INSIDE_BLOCKS, INSIDE_CHOICE, LAYER_CHOICE, split_inside_module, task_of
from ge_nas.yolo.registration import register_layers

__all__ = [
    "SAFE_ACTIVATIONS",
    "LayerInfo",
    "bake_scale",
    "build_model",
    "check_model_yaml",
    "describe_layers",
    "load_model_yaml",
    "model_class",
]

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
_SCALE_NAMED = frozenset({"A2C2f", "C2fAttn", "C2fCIB"})
# Scales whose C3k2 blocks parse_model builds with C3k inner blocks whatever the YAML says.
_C3K_SCALES = frozenset({"m", "l", "x"})
# The model class Ultralytics builds for each task's head.
_MODEL_CLASSES: dict[str, type[torch.nn.Module]] = {
    "detect": tasks.DetectionModel,
    "segment": tasks.SegmentationModel,
    "pose": tasks.PoseModel,
    "obb": tasks.OBBModel,
}


def load_model_yaml(name_or_path: str | Path) -> dict[str, Any]:
    """The model dict of an Ultralytics model YAML, by name (``yolov8s.yaml``) or by path.

    Raises FileNotFoundError when neither a file nor a model shipped with Ultralytics
    has that name, and InputError when it names something that is not a known layer.
    """
    path = Path(name_or_path)
    if path.is_file():  # a user's file: measured before Ultralytics expands it (aliases)
        load_yaml(path.read_text(errors="replace"), str(path))
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


# Ultralytics eval()s a model YAML's ``activation`` string, so only these, called without
# arguments (nn.SiLU(), torch.nn.ReLU()), are let through: arguments could allocate or run anything.
SAFE_ACTIVATIONS: tuple[str, ...] = (
    "SiLU",
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "GELU",
    "Mish",
    "Hardswish",
    "Hardsigmoid",
    "Sigmoid",
    "Tanh",
    "ELU",
    "SELU",
    "CELU",
    "Identity",
)
_SAFE_ACTIVATION = re.compile(rf"(torch\.)?nn\.({'|'.join(SAFE_ACTIVATIONS)})\(\)")


def check_model_yaml(d: dict[str, Any], source: str) -> None:
    """Refuse a model YAML that could run code or names a layer that is not allowed.

    Ultralytics ``eval``s the ``activation`` key when it builds a model, so a model YAML
    from elsewhere (a shared search space, an exported architecture, a study database)
    could carry code. Every layer must be a torch.nn class, an Ultralytics layer, or a
    ge-nas layer.
    """
    activation = d.get("activation")
    if activation is not None and not (isinstance(activation, str) and _SAFE_ACTIVATION.fullmatch(activation)):
        raise InputError(
            f"{source}: activation {excerpt(activation)} is not a torch.nn layer such as nn.SiLU(); "
            f"use one of {', '.join(SAFE_ACTIVATIONS)}, without arguments"
        )
    for section in ("backbone", "head"):
        for i, row in enumerate(d.get(section) or []):
            module = row[2] if isinstance(row, list) and len(row) == 4 else None
            if not isinstance(module, str) or not _allowed_layer(module):
                raise InputError(f"{source}: {section}[{i}] names {excerpt(module)}, which is not an allowed layer")
            _check_row(row, f"{source}: {section}[{i}]")
            if module in _CHOICES:
                _check_options(row[3], f"{source}: {section}[{i}]")


def _check_options(args: list[Any], where: str) -> None:
    """A supernet choice row's arguments: ``[input channels, [[module, args], ...]]``, each an allowed layer."""
    if len(args) != 2 or not isinstance(args[0], int) or not isinstance(args[1], list) or not args[1]:
        raise InputError(f"{where}: a choice row's arguments are [input channels, [[module, args], ...]]")
    for k, option in enumerate(args[1]):
        valid = isinstance(option, list) and len(option) == 2 and isinstance(option[1], list)
        if not valid or not isinstance(option[0], str) or option[0] in _CHOICES or not _allowed_layer(option[0]):
            raise InputError(f"{where}: option {k} is {excerpt(option)}, not [an allowed layer, [its arguments]]")


def _check_row(row: list[Any], where: str) -> None:
    """``[from, repeats, module, args]`` with layer indices, a whole repeat count and a list of arguments."""
    f, n, _, args = row
    indices = f if isinstance(f, list) else [f]
    if not indices or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise InputError(f"{where}: 'from' is {excerpt(f)}; give a layer index or a list of them")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"{where}: repeats is {excerpt(n)}; give a whole number, 1 or more")
    if not isinstance(args, list):
        raise InputError(f"{where}: arguments are {excerpt(args)}; give a list, e.g. [64, 3, 2]")


# A supernet's choice rows: markers the registered parser builds (see ge_nas.yolo.registration).
_CHOICES = frozenset({LAYER_CHOICE, INSIDE_CHOICE})


def _allowed_layer(name: str) -> bool:
    if split_inside_module(name) is not None or name in _CHOICES:
        return True
    layer = getattr(torch.nn, name[3:], None) if name.startswith("nn.") else getattr(tasks, name, None)
    return isinstance(layer, type) and issubclass(layer, torch.nn.Module)


def bake_scale(d: dict[str, Any]) -> dict[str, Any]:
    """The same model with its scale written out: real channels and repeats in every row.

    A model YAML that keeps ``scales`` is rebuilt at whatever scale Ultralytics guesses
    from its *file name* (the first one when the name says nothing), so a generated
    ``best.yaml`` of a yolov8s search would silently become a yolov8n. Baking removes
    that trap and shows the real channel counts a GE row must carry. What parse_model does
    by the scale's name is written out too: C3k2 blocks of scales m, l and x get C3k inner
    blocks (their second argument ``True``), as parse_model builds them.
    """
    depth, width, max_channels, scale = 1.0, 1.0, float("inf"), None
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
                raise ValueError(
                    f"module {module} depends on the scale's name; use a YOLOv8, YOLO11 or YOLO26 family model"
                )
            args = list(args)
            n = max(round(n * depth), 1) if n > 1 else n
            if module in _SCALED_MODULES and module != "Classify":
                args[0] = make_divisible(min(args[0], max_channels) * width, 8)
            if module == "C3k2" and scale in _C3K_SCALES:
                args[1:2] = [True]
            rows.append([copy.deepcopy(f), n, module, args])
        baked[section] = rows
    return baked


@dataclass(frozen=True)
class LayerInfo:
    """What a search space needs to know about one layer of a built model."""

    index: int
    module: str  # the module name as written in the YAML, e.g. "C2f"
    section: str  # "backbone" or "head"
    channels: int  # output channels (0 for the head)
    stride: int  # input size / output size (0 for the head)
    feeds_detect: bool  # the head reads it
    bottlenecks: int = 0  # C2f and C3k2 only: bottlenecks inside (those of C3k inner blocks included)
    hidden_channels: int = 0  # C2f and C3k2 only: channels of each bottleneck


def model_class(d: dict[str, Any]) -> type[torch.nn.Module]:
    """The Ultralytics model class for a model dict's head: detection, segmentation, pose or OBB.

    Raises:
        ValueError: the last row is not a head ge-nas searches under.
    """
    task = task_of(d)
    if not task:
        raise ValueError("its last layer must be a Detect, Segment, Pose or OBB head (or their YOLO26 forms)")
    return _MODEL_CLASSES[task]


def describe_layers(d: dict[str, Any], probe_size: int = 256) -> list[LayerInfo]:
    """Build the model of dict ``d`` once and read each layer's channels and stride."""
    register_layers()
    with quiet():
        model = model_class(d)(copy.deepcopy(d), verbose=False).eval()
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
        bottlenecks = _bottlenecks(model.model[i], module)
        infos.append(
            LayerInfo(
                index=i,
                module=module,
                section=section,
                channels=shape[1] if shape else 0,
                stride=probe_size // shape[2] if shape else 0,
                feeds_detect=i in detect_inputs,
                bottlenecks=len(bottlenecks),
                hidden_channels=bottlenecks[0].cv2.conv.out_channels if bottlenecks else 0,
            )
        )
    return infos


def _bottlenecks(layer: torch.nn.Module, module: str) -> list[torch.nn.Module]:
    """The bottlenecks inside a C2f or C3k2 block (through its C3k inner blocks), in order; none elsewhere.

    Their residual branches are where ``inside`` puts units; within one block they all have
    the same width.
    """
    if module not in INSIDE_BLOCKS and split_inside_module(module) is None:
        return []
    return [m for m in layer.m.modules() if type(m) is Bottleneck or isinstance(m, GEBottleneck)]


def build_model(model_yaml: Path | str | dict[str, Any]) -> torch.nn.Module:
    """Build the model (an ``nn.Module``: detection, segmentation, pose or OBB) a model YAML describes, untrained."""
    register_layers()
    if not isinstance(model_yaml, dict):
        model_yaml = load_model_yaml(model_yaml)
    check_model_yaml(model_yaml, "model")
    with quiet():
        return model_class(model_yaml)(copy.deepcopy(model_yaml), verbose=False)
