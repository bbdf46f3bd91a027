"""ge-nas layers made resolvable by name in any Ultralytics model YAML.

``parse_model`` looks names up in the ``ultralytics.nn.tasks`` module namespace, so setting
the class there is enough for ``GatherExcite``; no Ultralytics source is edited. ``C2fGE``
(a C2f whose bottlenecks carry GE units on their residual branch) needs C2f's channel
scaling, which parse_model grants only to its own classes, so ``tasks.parse_model`` is
wrapped: C2fGE rows are built as C2f and then get a GE unit inside each bottleneck.

The wrapper also builds a supernet's choice rows (see :func:`ge_nas.space.model_yaml.generate_supernet_yaml`):
each option is a candidate's row, built by this same parser, so a supernet holds exactly the
layers its candidates do. A ``LayerChoice`` row becomes a :class:`~ge_nas.layers.choice.LayerChoice`
of no unit and each option's unit; an ``InsideChoice`` row is built as its first option, and
each of its bottleneck branches then chooses between no unit and every option's unit there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from ultralytics.nn import tasks
from ultralytics.utils.events import events

from ge_nas.layers.choice import LayerChoice
from ge_nas.layers.gather_excite import GatherExcite
from ge_nas.layers.ge_bottleneck import GEBottleneck
from ge_nas.yolo.model_names import INSIDE_CHOICE, INSIDE_MODULE, LAYER_CHOICE

__all__ = ["allow_checkpoint_loading", "register_layers"]


def register_layers() -> None:
    """Make ge-nas layers resolvable by name in Ultralytics model YAMLs and loadable from checkpoints.

    Idempotent: ``import ge_nas`` calls it when Ultralytics loads, and model building calls it again.
    """
    tasks.GatherExcite = GatherExcite
    allow_checkpoint_loading()
    if not getattr(tasks.parse_model, "ge_nas_wrapped", False):
        tasks.parse_model = _with_ge_inside(tasks.parse_model)
    # Analytics are also gated by a connectivity probe; if ultralytics was imported
    # before ge-nas on a networked machine, switch them off explicitly.
    events.enabled = False


def allow_checkpoint_loading() -> None:
    """Let Ultralytics' restricted loading (``ULTRALYTICS_SAFE_LOAD=1``) read checkpoints with GE layers.

    Restricted loading unpickles with ``torch.load(weights_only=True)`` and allows only
    torch and Ultralytics classes, so a ``best.pt`` holding ge-nas layers is refused as
    "outside the supported checkpoint format". Ours are plain ``nn.Module`` trees with no
    custom unpickling, as safe as the classes Ultralytics allows; torch's process-wide
    allow-list takes them once ``ge_nas`` is imported. Default loading needs none of this.
    """
    if hasattr(torch.serialization, "add_safe_globals"):  # torch >= 2.4
        torch.serialization.add_safe_globals([GatherExcite, GEBottleneck, LayerChoice])


def _with_ge_inside(parse_model: Callable[..., Any]) -> Callable[..., Any]:
    def parse_model_with_ge(d: dict[str, Any], ch: int, verbose: bool = True) -> tuple[torch.nn.Module, list[int]]:
        inside: dict[int, tuple[str, int]] = {}
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
                if module == INSIDE_MODULE:
                    *args, variant, extent = args
                    inside[index] = (variant, extent)
                    module = "C2f"
                rows.append([f, n, module, copy.deepcopy(args)])
                index += 1
            sections[section] = rows
        model, save = parse_model({**d, **sections}, ch, verbose)
        for i, (variant, extent) in inside.items():
            _put_ge_inside(model[i], variant, extent)
        settings = {k: v for k, v in d.items() if k not in ("backbone", "head")}  # activation, as the model's
        for i, (kind, repeats, channels, options) in choices.items():

            def build(row: list[Any], channels: int = channels) -> torch.nn.Module:
                return parse_model_with_ge({**settings, "backbone": [row], "head": []}, channels, False)[0][0]

            if kind == LAYER_CHOICE:
                model[i] = _layer_choice(model[i], [build([-1, 1, m, copy.deepcopy(a)]) for m, a in options])
            else:
                others = [build([-1, repeats, m, copy.deepcopy(a)]) for m, a in options[1:]]
                _put_choices_inside(model[i], others)
        return model, save

    parse_model_with_ge.ge_nas_wrapped = True  # type: ignore[attr-defined]
    return parse_model_with_ge


def _put_ge_inside(c2f: torch.nn.Module, variant: str, extent: int) -> None:
    """Replace each bottleneck of a built C2f by a GEBottleneck around the same convs."""
    c2f.m = torch.nn.ModuleList(GEBottleneck(b, GatherExcite(b.cv2.conv.out_channels, variant, extent)) for b in c2f.m)
    c2f.type = INSIDE_MODULE
    c2f.np = sum(p.numel() for p in c2f.parameters())


def _layer_choice(placeholder: torch.nn.Module, units: list[torch.nn.Module]) -> LayerChoice:
    """The choice after a layer: no unit (option 0), then ``units``, in the placeholder's place in the model."""
    choice = LayerChoice([torch.nn.Identity(), *units])
    choice.i, choice.f, choice.type = placeholder.i, placeholder.f, LAYER_CHOICE
    choice.np = sum(p.numel() for p in choice.parameters())
    return choice


def _put_choices_inside(host: torch.nn.Module, others: list[torch.nn.Module]) -> None:
    """Give every bottleneck branch of ``host`` a choice: no unit, its own unit, or each of ``others``' there.

    ``host`` and ``others`` are the same layer built with different units inside (each a
    candidate's row), so their GEBottlenecks sit at the same places; the host keeps its
    convolutions, which every option shares.
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
