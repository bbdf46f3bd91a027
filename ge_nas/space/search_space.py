"""Search spaces: which insertion points of a base YOLO model may get attention units, and which.

A search space file (``search_spaces/*.yaml``) names:

``base``
    An Ultralytics model YAML by name, of the YOLOv8, YOLO11 or YOLO26 family at any scale
    (``yolov8n.yaml``, ``yolo11s.yaml``, ``yolo26n.yaml``, ``yolov8s-p2.yaml``), with a
    detection, segmentation (``-seg``), pose or OBB head; or a path to your own (relative
    to the space file).
``points``
    ``all`` (every C2f, C3k2, C2PSA and SPPF: the backbone's blocks and the neck's outputs),
    or a list whose items are a layer index, an alias (``backbone.c2f_p3``, ``neck.c3k2_p4``,
    ``sppf``, ``c2psa``; ``ge-nas space`` lists them), or a mapping ``{at: <index or alias>,
    modules: [...], variants: [...], extents: [...], modes: [...]}`` that overrides the
    shared choices for that point.
``modules``, ``variants``, ``extents``, ``modes``
    The shared choices: attention modules from ``ge`` (Gather-Excite), ``se``, ``eca``,
    ``cbam``, ``coord`` (Coordinate Attention) and ``simam`` (default: ``[ge]``); GE's
    variants from ``theta-minus``, ``theta``, ``theta-plus`` and extents from ``2``, ``4``,
    ``8``, ``global`` (or ``0``), which apply to GE only (defaults: all); placement modes
    ``after`` (a unit after the point's output) and ``inside`` (a unit on the residual
    branch of every bottleneck of a C2f or C3k2, those of its C3k blocks included: the
    papers' placement). Default mode: ``[after]``. ``inside`` applies to C2f and C3k2 points
    only; for other points a shared ``inside`` is ignored, and asking for it on such a point
    is an error.
``max_units`` (optional)
    At most this many points get a unit in one architecture.

Loading resolves every point against the base model, so a space knows each point's
layer type, real channel count and stride.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ge_nas.errors import InputError
from ge_nas.layers.choices import EXTENTS, GE, GLOBAL_EXTENT, MODULES, VARIANTS
from ge_nas.safe_yaml import excerpt, load_yaml
from ge_nas.space.candidate import MODES, Candidate, Placement
from ge_nas.yolo.model_files import LayerInfo, bake_scale, describe_layers, load_model_yaml
from ge_nas.yolo.model_names import HEAD_TASKS, INSIDE_BLOCKS, task_of

__all__ = ["InsertionPoint", "SearchSpace", "load_space", "resolve_space_path", "shipped_spaces"]

SPACE_PACKAGE = "ge_nas.search_spaces"
_KEYS = ("base", "points", "modules", "variants", "extents", "modes", "max_units")
_POINT_KEYS = ("at", "modules", "variants", "extents", "modes")
_ALL_POINT_MODULES = ("C2f", "C3k2", "C2PSA", "SPPF")
# Layers with an alias of their own: there is one of each in a YOLO model.
_SINGLE_LAYERS = ("sppf", "c2psa")


@dataclass(frozen=True)
class InsertionPoint:
    """A layer of the base model whose output (or whose bottlenecks) may get GE."""

    layer: LayerInfo
    alias: str
    choices: tuple[Placement, ...]

    @property
    def index(self) -> int:
        return self.layer.index


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space, resolved against its base model."""

    name: str
    source: str
    base_name: str
    base: dict[str, Any] = field(repr=False)  # the base model dict, baked to its scale
    layers: tuple[LayerInfo, ...] = field(repr=False)
    points: tuple[InsertionPoint, ...]
    max_units: int | None = None

    @property
    def task(self) -> str:
        """The Ultralytics task the base model's head trains for: detect, segment, pose or obb."""
        return task_of(self.base)

    @property
    def modules(self) -> tuple[str, ...]:
        """The attention modules some point offers, in :data:`~ge_nas.layers.choices.MODULES` order."""
        offered = {c.module for p in self.points for c in p.choices}
        return tuple(name for name in MODULES if name in offered)

    @property
    def size(self) -> int:
        """Number of distinct architectures, the baseline included."""
        return self._counts()[0][self._budget]

    @property
    def fingerprint(self) -> str:
        """A hash of what the space allows; a study refuses to continue with another space."""
        content = {
            "base": self.base,
            "points": [[p.index, [c.label for c in p.choices]] for p in self.points],
            "max_units": self.max_units,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def point(self, index: int) -> InsertionPoint:
        for p in self.points:
            if p.index == index:
                return p
        raise KeyError(index)

    def contains(self, candidate: Candidate) -> bool:
        """Whether every placement is allowed at its point and the unit limit holds."""
        allowed = {p.index: set(p.choices) for p in self.points}
        return candidate.units <= self._budget and all(
            placement in allowed.get(index, ()) for index, placement in candidate.placements
        )

    def enumerate(self) -> Iterator[Candidate]:
        """Every architecture of the space, baseline first (use when :attr:`size` is small)."""
        options = [[None, *p.choices] for p in self.points]
        for combo in itertools.product(*options):
            candidate = Candidate.of({p.index: c for p, c in zip(self.points, combo, strict=True) if c is not None})
            if candidate.units <= self._budget:
                yield candidate

    def sample(self, rng: random.Random) -> Candidate:
        """One architecture drawn uniformly from the space (the unit limit respected)."""
        counts, budget, chosen = self._counts(), self._budget, {}
        for i, p in enumerate(self.points):
            if budget == 0 or rng.randrange(counts[i][budget]) < counts[i + 1][budget]:
                continue
            chosen[p.index] = rng.choice(p.choices)
            budget -= 1
        return Candidate.of(chosen)

    def sample_path(self, rng: random.Random) -> Candidate:
        """One supernet training path: each point gets a unit with probability 1/2, of a uniform choice.

        Points are visited in random order, so that ``max_units`` stops none of them more
        often than another. Not :meth:`sample`: uniform over architectures, it would leave a
        point without a unit once in ``len(choices) + 1`` draws, so the shared weights would
        barely train on the paths that keep a point as the parent had it, which half of the
        candidates a search draws do (its parameters ask "unit here?" first).
        """
        order = list(self.points)
        rng.shuffle(order)
        chosen: dict[int, Placement] = {}
        for p in order:
            if len(chosen) < self._budget and rng.random() < 0.5:
                chosen[p.index] = rng.choice(p.choices)
        return Candidate.of(chosen)

    @property
    def _budget(self) -> int:
        return len(self.points) if self.max_units is None else min(self.max_units, len(self.points))

    def _counts(self) -> list[list[int]]:
        """counts[i][b]: architectures over points i.. with at most b units."""
        n, budget = len(self.points), self._budget
        counts = [[1] * (budget + 1) for _ in range(n + 1)]
        for i in range(n - 1, -1, -1):
            for b in range(budget + 1):
                counts[i][b] = counts[i + 1][b] + (len(self.points[i].choices) * counts[i + 1][b - 1] if b else 0)
        return counts


def shipped_spaces() -> list[str]:
    """Names of the search spaces that ship with ge-nas."""
    folder = resources.files(SPACE_PACKAGE)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_space_path(name_or_path: str | Path) -> Path:
    """A space file by path, or a shipped space by name (``yolov8n_ge``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = path.name.removesuffix(".yaml")
    if path.parent == Path(".") and name in shipped_spaces():
        return Path(str(resources.files(SPACE_PACKAGE) / f"{name}.yaml"))
    raise InputError(
        f"search space {str(name_or_path)!r} not found: give a path to a space YAML file "
        f"or one of the shipped spaces: {', '.join(shipped_spaces())}"
    )


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Read, validate and resolve a search space; errors name the file, the key and the fix."""
    path = resolve_space_path(name_or_path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot be read ({type(error).__name__}); give a search space YAML file") from None
    return _SpaceReader(path).read(load_yaml(text, str(path)))


class _SpaceReader:
    """Turns the raw YAML of one file into a SearchSpace, raising InputError on any fault."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> InputError:
        return InputError(f"{self.path}: key '{key}': {message}")

    def read(self, raw: object) -> SearchSpace:
        if not isinstance(raw, dict):
            raise InputError(f"{self.path}: a search space is a YAML mapping with keys {', '.join(_KEYS)}")
        for key in raw:
            if key not in _KEYS:
                raise self.fail(str(key), f"unknown key; allowed keys: {', '.join(_KEYS)}")
        if "base" not in raw:
            raise self.fail("base", "missing; name a YOLO model such as yolov8n.yaml, yolo11n.yaml or yolo26n.yaml")
        base_name = str(raw["base"])
        base = self._base(base_name)
        try:
            layers = tuple(describe_layers(base))
        except Exception as error:  # any fault Ultralytics meets building the rows
            message = str(error).splitlines()[0] if str(error) else ""
            raise self.fail(
                "base",
                f"{excerpt(base_name)} cannot be built ({type(error).__name__}: {excerpt(message, 100)}); "
                "fix its rows' arguments",
            ) from None
        aliases = _aliases(layers)
        shared = {
            "modules": self._modules(raw.get("modules", [GE]), "modules"),
            "variants": self._variants(raw.get("variants", list(VARIANTS)), "variants"),
            "extents": self._extents(raw.get("extents", list(EXTENTS)), "extents"),
            "modes": self._modes(raw.get("modes", ["after"]), "modes"),
        }
        points = self._points(raw.get("points", "all"), layers, aliases, shared)
        max_units = raw.get("max_units")
        if max_units is not None and (isinstance(max_units, bool) or not isinstance(max_units, int) or max_units < 0):
            raise self.fail("max_units", f"must be a whole number, 0 or more; got {excerpt(max_units)}")
        return SearchSpace(
            name=self.path.name.removesuffix(".yaml"),
            source=str(self.path),
            base_name=base_name,
            base=base,
            layers=layers,
            points=points,
            max_units=max_units,
        )

    def _base(self, name: str) -> dict[str, Any]:
        local = (self.path.parent / name) if not Path(name).is_absolute() else Path(name)
        try:
            d = load_model_yaml(local if local.is_file() else name)
        except FileNotFoundError:
            raise self.fail(
                "base",
                f"unknown base model {name!r}; use an Ultralytics YOLOv8, YOLO11 or YOLO26 YAML such as "
                "yolov8n.yaml, yolo11s.yaml, yolo26n-seg.yaml or yolov8s-p2.yaml, or a path to your own model YAML",
            ) from None
        if not task_of(d):
            raise self.fail(
                "base",
                f"{name!r} has no detection, segmentation, pose or OBB head: its last layer must be one of "
                f"{', '.join(HEAD_TASKS)}",
            )
        try:
            return bake_scale(d)
        except ValueError as error:
            raise self.fail("base", f"{excerpt(name)}: {error}") from None
        except (TypeError, KeyError, IndexError) as error:  # e.g. a string where a channel count belongs
            raise self.fail(
                "base", f"{excerpt(name)} has a row Ultralytics cannot scale ({type(error).__name__}: {error}); fix it"
            ) from None

    def _choice_list(self, value: object, key: str, allowed: str) -> list[Any]:
        if not isinstance(value, list):
            value = [value]
        if not value:
            raise self.fail(key, f"empty list; give at least one of {allowed}")
        return value

    def _modules(self, value: object, key: str) -> list[str]:
        return self._names(value, key, tuple(MODULES), "attention module")

    def _variants(self, value: object, key: str) -> list[str]:
        return self._names(value, key, VARIANTS, "variant")

    def _extents(self, value: object, key: str) -> list[int]:
        extents = []
        for e in self._choice_list(value, key, "2, 4, 8, global"):
            e = GLOBAL_EXTENT if e == "global" else e
            if isinstance(e, bool) or not isinstance(e, (int, float)) or e not in EXTENTS:
                raise self.fail(key, f"extent {excerpt(e)} is not allowed; use 2, 4, 8 or global")
            extents.append(int(e))  # 2.0 is 2: one spelling per architecture in keys and codes
        return list(dict.fromkeys(extents))

    def _modes(self, value: object, key: str) -> list[str]:
        return self._names(value, key, MODES, "placement mode")

    def _names(self, value: object, key: str, known: tuple[str, ...], what: str) -> list[str]:
        """A non-empty list of known names, duplicates dropped, in the order given."""
        allowed = ", ".join(known)
        names = self._choice_list(value, key, allowed)
        for name in names:
            if name not in known:
                raise self.fail(key, f"unknown {what} {excerpt(name)}; allowed: {allowed}")
        return list(dict.fromkeys(names))

    def _points(
        self, value: object, layers: tuple[LayerInfo, ...], aliases: dict[int, str], shared: dict[str, list[Any]]
    ) -> tuple[InsertionPoint, ...]:
        if value == "all":
            value = [layer.index for layer in layers if layer.module in _ALL_POINT_MODULES]
        if not isinstance(value, list):
            raise self.fail("points", "use 'all' or a list of layer indices, aliases or {at: ...} mappings")
        if not value:
            raise self.fail("points", "empty list; name at least one insertion point (or 'all')")
        points: dict[int, InsertionPoint] = {}
        for n, item in enumerate(value):
            key = f"points[{n}]"
            overrides: dict[str, Any] = {}
            if isinstance(item, dict):
                for k in item:
                    if k not in _POINT_KEYS:
                        raise self.fail(f"{key}.{k}", f"unknown key; allowed keys: {', '.join(_POINT_KEYS)}")
                if "at" not in item:
                    raise self.fail(key, "a point mapping needs 'at: <layer index or alias>'")
                overrides, item = item, item["at"]
            layer = self._layer(item, key, layers, aliases)
            if layer.index in points:
                raise self.fail(key, f"layer {layer.index} ({aliases[layer.index]}) is listed twice")
            modules = self._modules(overrides["modules"], f"{key}.modules") if "modules" in overrides else None
            variants = self._variants(overrides["variants"], f"{key}.variants") if "variants" in overrides else None
            extents = self._extents(overrides["extents"], f"{key}.extents") if "extents" in overrides else None
            modes = self._modes(overrides["modes"], f"{key}.modes") if "modes" in overrides else None
            has_bottlenecks = layer.module in INSIDE_BLOCKS
            if modes is not None and "inside" in modes and not has_bottlenecks:
                raise self.fail(
                    f"{key}.modes", f"'inside' needs a C2f or C3k2 layer, but layer {layer.index} is {layer.module}"
                )
            point_modes = modes or [m for m in shared["modes"] if has_bottlenecks or m != "inside"]
            if not point_modes:
                raise self.fail(key, f"layer {layer.index} is {layer.module}: only the 'after' mode applies there")
            choices = tuple(
                placement
                for m in point_modes
                for module in modules or shared["modules"]
                for placement in _placements(module, variants or shared["variants"], extents or shared["extents"], m)
            )
            points[layer.index] = InsertionPoint(layer, aliases[layer.index], choices)
        return tuple(points[i] for i in sorted(points))

    def _layer(self, item: object, key: str, layers: tuple[LayerInfo, ...], aliases: dict[int, str]) -> LayerInfo:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise self.fail(key, f"{excerpt(item)} is neither a layer index nor an alias")
        if isinstance(item, str):
            by_alias = {alias: i for i, alias in aliases.items()}
            if item not in by_alias:
                raise self.fail(key, f"unknown alias {excerpt(item)}; known aliases: {', '.join(by_alias)}")
            item = by_alias[item]
        if not 0 <= item < len(layers):
            raise self.fail(key, f"layer {item} is out of range; the base has layers 0..{len(layers) - 1}")
        layer = layers[item]
        if layer.module in HEAD_TASKS:
            raise self.fail(
                key, f"layer {item} is the {layer.module} layer (the head); a unit can go after any other layer"
            )
        return layer


def _placements(module: str, variants: list[str], extents: list[int], mode: str) -> list[Placement]:
    """A module's choices at a point: GE's variants x extents, or the other module's one form."""
    if module != GE:
        return [Placement(module, GLOBAL_EXTENT, mode)]
    return [Placement(v, e, mode) for v in variants for e in extents]


def _aliases(layers: tuple[LayerInfo, ...]) -> dict[int, str]:
    """Readable names: ``backbone.c2f_p3``, ``sppf``, ``c2psa``, ``neck.c3k2_p4`` (the P4 output) and
    ``neck.c2f_p4_up`` (the top-down path, before the first output), by pyramid level."""
    first_output = min((layer.index for layer in layers if layer.feeds_detect), default=len(layers))
    names: dict[int, str] = {}
    for layer in layers:
        if layer.module in HEAD_TASKS:
            names[layer.index] = layer.module.lower()
            continue
        module = layer.module.removeprefix("nn.").lower()
        level = f"_p{round(math.log2(layer.stride))}" if layer.stride else ""
        if module in _SINGLE_LAYERS:
            name = module
        elif layer.section == "backbone":
            name = f"backbone.{module}{level}"
        else:
            name = f"neck.{module}{level}{'_up' if layer.index < first_output else ''}"
        names[layer.index] = name
    seen: dict[str, int] = {}
    for index, name in names.items():
        if list(names.values()).count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            names[index] = f"{name}_{seen[name]}"
    return names
