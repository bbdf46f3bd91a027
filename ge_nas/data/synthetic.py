"""The built-in synthetic datasets, so the demo, the tests and the benchmarks need no download.

Two kinds of scene, written in Ultralytics YOLO format (``images/{train,val}``,
``labels/{train,val}`` and a ``data.yaml``) by one writer:

* ``shapes`` (:mod:`ge_nas.data.shapes`, the default): coloured shapes whose class is their
  shape; what decides the class lies inside each object's box;
* ``context`` (:mod:`ge_nas.data.context`): identical grey shapes whose class is the colour
  of a band across the image from them, amid clutter; only context beyond the object decides
  it (train it without mosaic).

Either is written for detection (boxes) or, with ``task="segment"``, segmentation: each
label is then the shape's outline as a polygon (a triangle's three corners, a square's
four, a circle as a 32-gon); the images are the same. Generation is deterministic for given
arguments; an existing dataset made with the same arguments (kind and task included: the
manifest records them) is reused as it is.

The output folder is never a place to lose data: a dataset is written into a new or
empty folder, or replaces one that ge-nas made itself (it carries ge-nas's manifest and
nothing else at its top level). Any other folder, or a file, is refused.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> data_yaml = make_synthetic_dataset(Path(tempfile.mkdtemp()), n_train=4, n_val=2, imgsz=64, kind="context")
    >>> data_yaml.name
    'data.yaml'
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import yaml
from PIL import Image

from ge_nas.data import context, shapes
from ge_nas.errors import InputError

__all__ = ["KINDS", "TASKS", "SceneKind", "SyntheticSpec", "default_dataset_dir", "make_synthetic_dataset"]

# Label formats the generator writes: boxes, or outlines as polygons.
TASKS: tuple[str, ...] = ("detect", "segment")


@dataclass(frozen=True)
class SceneKind:
    """One kind of built-in scene: its class names and how one image and its labels are drawn."""

    class_names: tuple[str, ...]
    # (rng, imgsz, max_objects, task) -> the image and its label lines
    draw: Callable[[np.random.Generator, int, int, str], tuple[Image.Image, list[str]]]
    folder_prefix: str  # of its default folder under studies/data/
    version: int = 1  # bump when its drawing changes, so stale folders of it are regenerated


# ``ge-nas dataset --kind``; the first is the default.
KINDS: MappingProxyType[str, SceneKind] = MappingProxyType(
    {
        "shapes": SceneKind(shapes.CLASS_NAMES, shapes.draw_scene, "synthetic"),
        "context": SceneKind(context.CLASS_NAMES, context.draw_scene, "context", version=2),  # 1: a thin frame
    }
)
_MANIFEST = "ge_nas_dataset.json"
# What a generated dataset holds at its top level; Ultralytics adds its label caches under labels/.
_OWN_ENTRIES = frozenset({"images", "labels", "data.yaml", _MANIFEST})
# Where a generation in progress writes, inside the output folder; left over only if killed.
_STAGING_PREFIX = ".ge-nas-staging-"


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines the generated files."""

    n_train: int = 128
    n_val: int = 32
    imgsz: int = 128
    seed: int = 0
    max_objects: int = 3
    kind: str = "shapes"  # a key of KINDS; in the manifest, so a folder of one kind is never taken for the other
    version: int = 1  # the kind's SceneKind.version: a folder drawn by an older version is regenerated
    task: str = "detect"

    def manifest(self) -> dict[str, object]:
        """What the dataset's manifest records; a detection dataset's as before tasks existed, so it is reused."""
        fields = asdict(self)
        if self.task == "detect":
            del fields["task"]
        return fields


def default_dataset_dir(spec: SyntheticSpec, root: Path = Path("studies") / "data") -> Path:
    """Where the dataset for ``spec`` lives by default (one folder per kind, task and setting)."""
    prefix = KINDS[spec.kind].folder_prefix
    task = "" if spec.task == "detect" else f"{spec.task}-"
    return root / f"{prefix}-{task}{spec.imgsz}px-{spec.n_train}+{spec.n_val}-seed{spec.seed}"


def make_synthetic_dataset(
    root: Path | None = None,
    n_train: int = 128,
    n_val: int = 32,
    imgsz: int = 128,
    seed: int = 0,
    max_objects: int = 3,
    kind: str = "shapes",
    task: str = "detect",
) -> Path:
    """Generate (or reuse) the dataset of ``kind`` (see :data:`KINDS`) for ``task`` under ``root``; its ``data.yaml``.

    Raises:
        InputError: ``kind`` is not a kind of :data:`KINDS`, or ``root`` is not ours to write (see the module).
    """
    if kind not in KINDS:
        raise InputError(f"dataset kind {kind!r}: use one of {', '.join(KINDS)}")
    spec = SyntheticSpec(n_train, n_val, imgsz, seed, max_objects, kind, KINDS[kind].version, task)
    if min(n_train, n_val) < 1 or imgsz < 32 or max_objects < 1:
        raise ValueError("synthetic dataset needs n_train, n_val, max_objects >= 1 and imgsz >= 32")
    if task not in TASKS:
        raise ValueError(f"synthetic dataset task {task!r}: use one of {', '.join(TASKS)}")
    root = Path(root) if root is not None else default_dataset_dir(spec)
    manifest = root / _MANIFEST
    if manifest.is_file() and _read_manifest(manifest) == spec.manifest():
        return root / "data.yaml"
    replace = _check_output(root)
    # Build inside the target folder and move the files up at the end, the manifest last: an
    # interrupted generation never leaves a dataset that looks complete, and nothing is
    # written outside the folder the user named.
    root.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=root))
    try:
        _write(staging, root, spec)
        if replace:  # an older dataset of ours: remove its files only, the manifest first
            (root / _MANIFEST).unlink()
            for name in sorted(_OWN_ENTRIES - {_MANIFEST}):
                old = root / name
                if old.is_dir():
                    shutil.rmtree(old)
                elif old.exists():
                    old.unlink()
        for entry in sorted(staging.iterdir(), key=lambda p: p.name == _MANIFEST):
            entry.rename(root / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root / "data.yaml"


def _check_output(root: Path) -> bool:
    """Whether ``root`` holds an older dataset of ours to replace; refuse what is not ours to touch.

    Returns False for a new or empty folder (written into as it is).

    Raises:
        InputError: ``root`` is a file, sits under a file, or holds anything ge-nas did not make.
    """
    if root.exists() and not root.is_dir():
        raise InputError(f"dataset folder {root} is a file; give -o a new or empty folder")
    for parent in root.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"dataset folder {root}: {parent} is a file; give -o a new or empty folder")
            break
    if not root.exists():
        try:
            root.mkdir(parents=True)
        except OSError as error:
            raise InputError(f"cannot create the dataset folder {root}: {error.strerror}; choose another -o") from None
        return False
    entries = {p.name for p in root.iterdir() if not p.name.startswith(_STAGING_PREFIX)}
    if not entries:
        return False
    foreign = sorted(entries - _OWN_ENTRIES)
    if (root / _MANIFEST).is_file() and not foreign:
        return True
    shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
    reason = f"holds files ge-nas did not make ({shown})" if foreign else "was not made by ge-nas"
    raise InputError(f"dataset folder {root} {reason}; give -o a new or empty folder, nothing was changed")


def _read_manifest(manifest: Path) -> object:
    try:
        return json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None


def _write(staging: Path, root: Path, spec: SyntheticSpec) -> None:
    """Draw every image and label of ``spec`` into ``staging``; ``data.yaml`` points at ``root``."""
    kind = KINDS[spec.kind]
    rng = np.random.default_rng(spec.seed)
    for split, count in (("train", spec.n_train), ("val", spec.n_val)):
        (staging / "images" / split).mkdir(parents=True)
        (staging / "labels" / split).mkdir(parents=True)
        for i in range(count):
            image, labels = kind.draw(rng, spec.imgsz, spec.max_objects, spec.task)
            image.save(staging / "images" / split / f"{i:05d}.png")
            (staging / "labels" / split / f"{i:05d}.txt").write_text("".join(labels))
    data = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(kind.class_names)),
    }
    (staging / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (staging / _MANIFEST).write_text(json.dumps(spec.manifest()))
