"""A candidate architecture: one choice (none, or a unit and its mode) per insertion point.

Candidates are plain, hashable values. Two equal architectures always have the same
``key`` whatever order their placements were given in, and a short ``code`` fits a
plot label:

* ``key``: ``"base"`` for no unit at all, else ``"<layer>:<variant>:<extent>:<mode>"``
  items joined by ``;`` in layer order, e.g. ``"9:theta:4:after;15:theta-plus:0:inside"``.
  A module other than GE is its own variant, with extent 0: ``"12:cbam:0:after"``.
* ``code``: one token per placement, ``<layer><variant><extent>[i]``, where the variant
  is ``m`` (θ−), ``t`` (θ) or ``p`` (θ+), the extent ``2``/``4``/``8``/``g`` (global),
  and ``i`` marks the ``inside`` mode, e.g. ``"9t4 15pgi"``; another module is its code
  (``se``, ``eca``, ``cbam``, ``ca``, ``sim``) with no extent: ``"12cbam 15sei"``.

Example:
    >>> c = Candidate.of({15: Placement("theta-plus", 0, "inside"), 9: Placement("theta", 4)})
    >>> c.key, c.code
    ('9:theta:4:after;15:theta-plus:0:inside', '9t4 15pgi')
    >>> Candidate.from_key(c.key) == c
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ge_nas.layers.choices import GE, GLOBAL_EXTENT, MODULES, check_variant_and_extent, module_of

__all__ = ["BASELINE_KEY", "MODES", "Candidate", "Placement"]

MODES: tuple[str, ...] = ("after", "inside")
BASELINE_KEY = "base"
_VARIANT_LETTER = {"theta-minus": "m", "theta": "t", "theta-plus": "p"}


@dataclass(frozen=True, order=True)
class Placement:
    """One unit: which variant (a GE variant, or another module's name), which extent (0 = global), and where
    relative to the layer."""

    variant: str
    extent: int
    mode: str = "after"

    def __post_init__(self) -> None:
        check_variant_and_extent(self.variant, self.extent)
        if self.mode not in MODES:
            raise ValueError(f"unknown placement mode {self.mode!r}: use one of {', '.join(MODES)}")

    @property
    def module(self) -> str:
        """The attention module: ``ge`` for θ−, θ and θ+, else the variant (``se``, ``cbam``, ...)."""
        return module_of(self.variant)

    @property
    def label(self) -> str:
        """``"theta-plus/4/after"``: the form used for Optuna's categorical choices."""
        return f"{self.variant}/{self.extent}/{self.mode}"

    @property
    def code(self) -> str:
        inside = "i" if self.mode == "inside" else ""
        if self.module != GE:
            return f"{MODULES[self.module].code}{inside}"
        extent = "g" if self.extent == GLOBAL_EXTENT else str(self.extent)
        return f"{_VARIANT_LETTER[self.variant]}{extent}{inside}"


@dataclass(frozen=True)
class Candidate:
    """Placements by base-model layer index, kept sorted so equal candidates compare equal."""

    placements: tuple[tuple[int, Placement], ...] = ()

    @classmethod
    def of(cls, placements: Mapping[int, Placement]) -> Candidate:
        return cls(tuple(sorted(placements.items())))

    @classmethod
    def baseline(cls) -> Candidate:
        return cls()

    @property
    def units(self) -> int:
        """Number of insertion points that get a unit (an ``inside`` point counts once)."""
        return len(self.placements)

    @property
    def key(self) -> str:
        if not self.placements:
            return BASELINE_KEY
        return ";".join(f"{i}:{p.variant}:{p.extent}:{p.mode}" for i, p in self.placements)

    @property
    def code(self) -> str:
        if not self.placements:
            return BASELINE_KEY
        return " ".join(f"{i}{p.code}" for i, p in self.placements)

    @classmethod
    def from_key(cls, key: str) -> Candidate:
        """Parse a ``key`` back into the candidate (inverse of :attr:`key`)."""
        if key == BASELINE_KEY:
            return cls()
        placements = {}
        for item in key.split(";"):
            index, variant, extent, mode = item.split(":")
            placements[int(index)] = Placement(variant, int(extent), mode)
        return cls.of(placements)
