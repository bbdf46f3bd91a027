"""ge-nas layers made resolvable by name in any Ultralytics model YAML.

``parse_model`` looks names up in the ``ultralytics.nn.tasks`` module namespace, so setting
each attention layer's class there (``GatherExcite``, ``SqueezeExcite``, ...) is enough for a
unit after a layer; no Ultralytics source is edited. Ultralytics passes such a layer's
arguments through unchanged, which is why every ge-nas layer takes the real channel count as
its first argument. A block with units inside its bottlenecks (``C2fGE``, ``C3k2SE``, ...; see
:mod:`ge_nas.yolo.model_names`) needs the block's channel scaling, which parse_model grants
only to its own classes, so ``tasks.parse_model`` is wrapped: such rows are built as the
block and then get a unit inside each of its bottlenecks.

The wrapper also builds a supernet's choice rows (see :func:`ge_nas.space.model_yaml.generate_supernet_yaml`):
each option is a candidate's row, built by this same parser, so a supernet holds exactly the
layers its candidates do, whichever modules they are. A ``LayerChoice`` row becomes a
:class:`~ge_nas.layers.choice.LayerChoice` of no unit and each option's unit; an ``InsideChoice``
row is built as its first option, and each of its bottleneck branches then chooses between no
unit and every option's unit there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from ultralytics.nn import tasks
from ultralytics.nn.modules.block import Bottleneck
from ultralytics.utils.events import events

from ge_nas.layers.choice import LayerChoice
from ge_nas.layers.choices import GE, GLOBAL_EXTENT
from ge_nas.layers.ge_bottleneck import GEBottleneck
from ge_nas.layers.registry import UNIT_CLASSES, make_unit
from ge_nas.yolo.model_names import INSIDE_CHOICE, LAYER_CHOICE, split_inside_module

__all__ = ["allow_checkpoint_loading", "put_units_inside", "register_layers"]


def register_layers() -> None:
    """Make ge-nas layers resolvable by name in Ultralytics model YAMLs and loadable from checkpoints.

    Idempotent: ``import ge_nas`` calls it when Ultralytics loads, and model building calls it again.
    """
    for name, layer in UNIT_CLASSES.items():
        setattr(tasks, name, layer)
    allow_checkpoint_loading()
    if not getattr(tasks.parse_model, "ge_nas_wrapped", False):
        tasks.parse_model = _with_units_inside(tasks.parse_model)
    # Analytics are also gated by a connectivity probe; if ultralytics was imported
    # before ge-nas on a networked machine, switch them off explicitly.
    events.enabled = False


def allow_checkpoint_loading() -> None:
    """Let Ultralytics' restricted loading (``ULTRALYTICS_SAFE_LOAD=1``) read checkpoints with ge-nas layers.

    Restricted loading unpickles with ``torch.load(weights_only=True)`` and allows only
    torch and Ultralytics classes, so a ``best.pt`` holding ge-nas layers is refused as
    "outside the supported checkpoint format". Ours are plain ``nn.Module`` trees with no
    custom unpickling, as safe as the classes Ultralytics allows; torch's process-wide
    allow-list takes them once ``ge_nas`` is imported. Default loading needs none of this.
    """
    if hasattr(torch.serialization, "add_safe_globals"):  # torch >= 2.4
        torch.serialization.add_safe_globals([*UNIT_CLASSES.values(), GEBottleneck, LayerChoice])


def put_units_inside(block: torch.nn.Module, variant: str, extent: int) -> None:
    """Wrap every bottleneck inside a built C2f or C3k2 (its C3k blocks' too) with a unit on its branch.

    The bottlenecks keep their convolutions and names (``m.0.cv1``, ``m.0.m.1.cv2``), so a
    parent's weights land on them; only the units are new.
    """
    for parent in list(block.m.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is Bottleneck:
                setattr(parent, name, GEBottleneck(child, make_unit(child.cv2.conv.out_channels, variant, extent)))
    block.np = sum(p.numel() for p in block.parameters())


def _with_units_inside(parse_model: Callable[..., Any]) -> Callable[..., Any]:
    def parse_model_with_units(d: dict[str, Any], ch: int, verbose: bool = True) -> tuple[torch.nn.Module, list[int]]:
        inside: dict[int, tuple[str, str, int]] = {}
        choices: dict[int, tuple[str, int, int, list[list[Any]]]] = {}  # index -> (kind, repeats, channels, options)
        sections = {}
        index = 0
        for section in ("backbone", "head"):
            rows = []
            for f, n, module, args in d.get(section, []):
                if module == INSIDE_CHOICE:  # built as its first option, the others' units added below
                    choices[index] = (module, n, *args)
                    module, args = args[1][0]
                elif module == LAYER_CHOICE:  # a placeholder that keeps the channels; the choice replaces it
                    choices[index] = (module, n, *args)
                    module, args = "nn.Identity", []
                split = split_inside_module(module) if isinstance(module, str) else None
                if split is not None:
                    block, unit_module = split
                    if unit_module == GE:
                        *args, variant, extent = args
                    else:
                        variant, extent = unit_module, GLOBAL_EXTENT
                    inside[index] = (module, variant, extent)
                    module = block
                rows.append([f, n, module, copy.deepcopy(args)])
                index += 1
            sections[section] = rows
        model, save = parse_model({**d, **sections}, ch, verbose)
        for i, (name, variant, extent) in inside.items():
            put_units_inside(model[i], variant, extent)
            model[i].type = name
        settings = {k: v for k, v in d.items() if k not in ("backbone", "head")}  # activation, as the model's
        for i, (kind, repeats, channels, options) in choices.items():

            def build(row: list[Any], channels: int = channels) -> torch.nn.Module:
                return parse_model_with_units({**settings, "backbone": [row], "head": []}, channels, False)[0][0]

            if kind == LAYER_CHOICE:
                model[i] = _layer_choice(model[i], [build([-1, 1, m, copy.deepcopy(a)]) for m, a in options])
            else:
                others = [build([-1, repeats, m, copy.deepcopy(a)]) for m, a in options[1:]]
                _put_choices_inside(model[i], others)
        return model, save

    parse_model_with_units.ge_nas_wrapped = True  # type: ignore[attr-defined]
    return parse_model_with_units


def _layer_choice(placeholder: torch.nn.Module, units: list[torch.nn.Module]) -> LayerChoice:
    """The choice after a layer: no unit (option 0), then ``units``, in the placeholder's place in the model."""
    choice = LayerChoice([torch.nn.Identity(), *units])
    choice.i, choice.f, choice.type = placeholder.i, placeholder.f, LAYER_CHOICE
    choice.np = sum(p.numel() for p in choice.parameters())
    return choice


def _put_choices_inside(host: torch.nn.Module, others: list[torch.nn.Module]) -> None:
    """Give every bottleneck branch of ``host`` a choice: no unit, its own unit, or each of ``others``' there.

    ``host`` and ``others`` are the same layer built with different units inside (each a
    candidate's row, whichever module), so their GEBottlenecks sit at the same places; the host
    keeps its convolutions, which every option shares.
    """
    own = {name: m for name, m in host.named_modules() if isinstance(m, GEBottleneck)}
    for other in others:
        theirs = {name: m for name, m in other.named_modules() if isinstance(m, GEBottleneck)}
        if theirs.keys() != own.keys():
            raise ValueError(f"the options of an {INSIDE_CHOICE} row put units in different places")
    for name, bottleneck in own.items():
        units = [bottleneck.ge, *(dict(other.named_modules())[name].ge for other in others)]
        bottleneck.ge = LayerChoice([torch.nn.Identity(), *units])
    host.type = INSIDE_CHOICE
    host.np = sum(p.numel() for p in host.parameters())
