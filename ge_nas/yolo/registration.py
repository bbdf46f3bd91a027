"""ge-nas layers made resolvable by name in any Ultralytics model YAML.

``parse_model`` looks names up in the ``ultralytics.nn.tasks`` module namespace, so setting
the class there is enough for ``GatherExcite``; no Ultralytics source is edited. ``C2fGE``
(a C2f whose bottlenecks carry GE units on their residual branch) needs C2f's channel
scaling, which parse_model grants only to its own classes, so ``tasks.parse_model`` is
wrapped: C2fGE rows are built as C2f and then get a GE unit inside each bottleneck.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from ultralytics.nn import tasks
from ultralytics.utils.events import events

from ge_nas.layers.gather_excite import GatherExcite
from ge_nas.layers.ge_bottleneck import GEBottleneck
from ge_nas.yolo.model_names import INSIDE_MODULE

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
        torch.serialization.add_safe_globals([GatherExcite, GEBottleneck])


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
