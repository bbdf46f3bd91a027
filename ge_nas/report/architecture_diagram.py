"""An architecture as a picture: the base network's layers by pyramid level, and where its GE units sit.

The dashboard draws, for any trial, the base model (backbone and neck as boxes, each at
its pyramid level; ``Concat`` and ``Detect`` inputs as edges) with the trial's GE units on
it: a circle after a block for ``after``, a badge inside it for ``inside``, each labelled
with variant and extent. Everything comes from what the study stores (the baseline's model
YAML and the trial's key), without torch: this module computes the layout as plain data,
and the page draws it as SVG.

Beside the picture the page shows the model YAML's changes against the baseline's: the
rows that differ, comments dropped (they only renumber).

Example:
    >>> layout = network_layout("backbone:\\n  - [-1, 1, Conv, [16, 3, 2]]\\nhead:\\n  - [[0], 1, Detect, [nc]]\\n")
    >>> [(layer["module"], layer["level"]) for layer in layout["layers"]]
    [('Conv', 1), ('Detect', 1)]
"""

from __future__ import annotations

import difflib
from typing import Any

from ge_nas.layers.choices import choice_label
from ge_nas.safe_yaml import load_yaml
from ge_nas.space.candidate import Candidate
from ge_nas.yolo.model_names import HEAD_TASKS

__all__ = ["attention_units", "network_layout", "yaml_changes"]

# Modules that halve the map (a stride-2 conv) or double it (an upsample), by their YAML arguments.
_DOWNSAMPLING = {"Conv": 2, "DWConv": 2, "GhostConv": 2, "ADown": None, "SCDown": 2, "AConv": None}


def network_layout(model_yaml: str) -> dict[str, Any]:
    """The layers of a model YAML as boxes (index, module, part, pyramid level) and the edges between them.

    The part is ``backbone``, ``neck`` (the YAML's head section up to the head layer: ``Detect``,
    ``Segment``, ...) or ``head``.

    The level is log2 of the stride: each stride-2 downsampling adds one, each 2x upsample
    takes one away, and a layer with several inputs sits at its first input's level.
    """
    model = load_yaml(model_yaml, "the baseline's model YAML") or {}
    rows = [("backbone", row) for row in model.get("backbone") or []] + [
        ("head", row) for row in model.get("head") or []
    ]
    layers: list[dict[str, Any]] = []
    edges: list[list[int]] = []
    for index, (section, (f, _n, module, args)) in enumerate(rows):
        sources = [index + s if s < 0 else s for s in (f if isinstance(f, list) else [f])]
        sources = [s for s in sources if s >= 0]
        level = layers[sources[0]]["level"] if sources else 0
        level += _level_change(str(module), args)
        part = section if section == "backbone" else "head" if module in HEAD_TASKS else "neck"
        layers.append({"index": index, "module": str(module), "part": part, "level": level})
        edges.extend([source, index] for source in sources)
    return {"layers": layers, "edges": edges}


def attention_units(key: str | None) -> list[dict[str, Any]]:
    """A trial's attention units, by base layer: where (``after`` or ``inside``), which module, variant and extent,
    and a label (``θ+ 4``, ``CBAM``)."""
    try:
        placements = Candidate.from_key(key or "").placements
    except ValueError:
        return []
    return [
        {
            "layer": layer,
            "mode": placement.mode,
            "module": placement.module,
            "variant": placement.variant,
            "extent": placement.extent,
            "label": choice_label(placement.variant, placement.extent),
        }
        for layer, placement in placements
    ]


def yaml_changes(baseline_yaml: str | None, model_yaml: str | None) -> str:
    """The rows of ``model_yaml`` that differ from the baseline's, as a unified diff without context."""
    if not baseline_yaml or not model_yaml:
        return ""
    before, after = _rows(baseline_yaml), _rows(model_yaml)
    if before == after:
        return ""
    diff = difflib.unified_diff(before, after, "baseline", "this architecture", n=0, lineterm="")
    return "\n".join(diff)


def _rows(model_yaml: str) -> list[str]:
    """The YAML's lines without comments: row comments only carry indices, which every insertion shifts."""
    lines = (line.split(" # ")[0].rstrip() for line in model_yaml.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _level_change(module: str, args: Any) -> int:
    if module in HEAD_TASKS:
        return 0
    if module == "nn.Upsample":
        return -1
    if module in _DOWNSAMPLING:
        stride = _DOWNSAMPLING[module]
        if stride is None:  # always downsamples
            return 1
        given = args[2] if isinstance(args, list) and len(args) > 2 else 1
        return 1 if given == stride else 0
    return 0
