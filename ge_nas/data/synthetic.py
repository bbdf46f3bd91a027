"""A built-in synthetic detection (or segmentation) dataset, so the demo and the tests need no download.

Coloured shapes (one class per shape, each class with its own hue, jittered) on a
noisy background, written in Ultralytics YOLO format: ``images/{train,val}``,
``labels/{train,val}`` and a ``data.yaml``. With ``task="segment"`` each label is the
shape's outline as a polygon (a triangle's three corners, a square's four, a circle as a
32-gon) instead of its box; the images are the same. Generation is deterministic for given
arguments; an existing dataset made with the same arguments is reused as it is.

The output folder is never a place to lose data: a dataset is written into a new or
empty folder, or replaces one that ge-nas made itself (it carries ge-nas's manifest and
nothing else at its top level). Any other folder, or a file, is refused.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> data_yaml = make_synthetic_dataset(Path(tempfile.mkdtemp()), n_train=4, n_val=2, imgsz=64)
    >>> data_yaml.name
    'data.yaml'
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

from ge_nas.errors import InputError

__all__ = ["CLASS_NAMES", "TASKS", "SyntheticSpec", "default_dataset_dir", "make_synthetic_dataset"]

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle")
# Label formats the generator writes: boxes, or outlines as polygons.
TASKS: tuple[str, ...] = ("detect", "segment")
# Corners of the polygon a circle's outline is written as.
_CIRCLE_CORNERS = 32
# One base colour per class (RGB); each object gets it with some jitter.
_CLASS_COLOURS = np.array([(230, 60, 50), (60, 200, 70), (60, 90, 235)], dtype=np.int16)
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
    version: int = 1  # bump when the drawing changes, so stale caches are regenerated
    task: str = "detect"

    def manifest(self) -> dict[str, object]:
        """What the dataset's manifest records; a detection dataset's as before tasks existed, so it is reused."""
        fields = asdict(self)
        if self.task == "detect":
            del fields["task"]
        return fields


def default_dataset_dir(spec: SyntheticSpec, root: Path = Path("studies") / "data") -> Path:
    """Where the dataset for ``spec`` lives by default (one folder per setting)."""
    task = "" if spec.task == "detect" else f"{spec.task}-"
    return root / f"synthetic-{task}{spec.imgsz}px-{spec.n_train}+{spec.n_val}-seed{spec.seed}"


def make_synthetic_dataset(
    root: Path | None = None,
    n_train: int = 128,
    n_val: int = 32,
    imgsz: int = 128,
    seed: int = 0,
    max_objects: int = 3,
    task: str = "detect",
) -> Path:
    """Generate (or reuse) the dataset under ``root`` and return its ``data.yaml``; ``task``: detect or segment."""
    spec = SyntheticSpec(n_train, n_val, imgsz, seed, max_objects, task=task)
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
    rng = np.random.default_rng(spec.seed)
    for split, count in (("train", spec.n_train), ("val", spec.n_val)):
        (staging / "images" / split).mkdir(parents=True)
        (staging / "labels" / split).mkdir(parents=True)
        for i in range(count):
            image, labels = _draw_image(rng, spec.imgsz, spec.max_objects, spec.task)
            image.save(staging / "images" / split / f"{i:05d}.png")
            (staging / "labels" / split / f"{i:05d}.txt").write_text("".join(labels))
    data = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(CLASS_NAMES)),
    }
    (staging / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (staging / _MANIFEST).write_text(json.dumps(spec.manifest()))


def _draw_image(rng: np.random.Generator, imgsz: int, max_objects: int, task: str) -> tuple[Image.Image, list[str]]:
    """One noisy background with 1..max_objects non-overlapping shapes, and its YOLO labels (boxes or outlines).

    The random draws are the same for both tasks, so a segmentation dataset shows the same images.
    """
    background = rng.integers(60, 190, size=3)
    pixels = background + rng.normal(0, 18, size=(imgsz, imgsz, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    boxes: list[tuple[float, float, float, float]] = []
    labels: list[str] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            size = rng.uniform(0.18, 0.42) * imgsz
            x0, y0 = rng.uniform(0, imgsz - size, size=2)
            box = (x0, y0, x0 + size, y0 + size)
            if not any(_overlaps(box, other) for other in boxes):
                break
        else:
            continue
        cls = int(rng.integers(len(CLASS_NAMES)))
        colour = tuple(int(c) for c in np.clip(_CLASS_COLOURS[cls] + rng.integers(-25, 26, size=3), 0, 255))
        outline = _outline(cls, box)
        if CLASS_NAMES[cls] == "circle":
            draw.ellipse(box, fill=colour)
        elif CLASS_NAMES[cls] == "square":
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon(outline, fill=colour)
        boxes.append(box)
        if task == "segment":
            corners = " ".join(f"{x / imgsz:.6f} {y / imgsz:.6f}" for x, y in outline)
            labels.append(f"{cls} {corners}\n")
        else:
            cx, cy = (box[0] + box[2]) / 2 / imgsz, (box[1] + box[3]) / 2 / imgsz
            labels.append(f"{cls} {cx:.6f} {cy:.6f} {size / imgsz:.6f} {size / imgsz:.6f}\n")
    return image, labels


def _outline(cls: int, box: tuple[float, ...]) -> list[tuple[float, float]]:
    """The shape's outline in pixels: the polygon drawn (a square, a triangle), or a circle's 32-gon."""
    x0, y0, x1, y1 = box
    if CLASS_NAMES[cls] == "square":
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if CLASS_NAMES[cls] == "triangle":
        return [((x0 + x1) / 2, y0), (x1, y1), (x0, y1)]
    cx, cy, radius = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    angles = np.linspace(0, 2 * np.pi, _CIRCLE_CORNERS, endpoint=False)
    return [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in angles]


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
