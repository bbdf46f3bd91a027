"""The ``shapes`` scenes of the built-in dataset: a shape's class is what it looks like.

Coloured circles, squares and triangles (one class per shape, each class with its own
hue, jittered) on a noisy background. Everything needed to tell an object's class lies
inside its own box, so a detector's local features suffice: this is the quick demo's data.
The shape primitives here are shared with :mod:`ge_nas.data.context`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["CLASS_NAMES", "Box", "draw_scene", "draw_shape", "object_label", "outline", "overlaps"]

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle")
# Corners of the polygon a circle's outline is written as.
_CIRCLE_CORNERS = 32
# One base colour per class (RGB); each object gets it with some jitter.
_CLASS_COLOURS = np.array([(230, 60, 50), (60, 200, 70), (60, 90, 235)], dtype=np.int16)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def draw_scene(
    rng: np.random.Generator, imgsz: int, max_objects: int, task: str = "detect"
) -> tuple[Image.Image, list[str]]:
    """One noisy background with 1..max_objects non-overlapping shapes, and its YOLO labels (see :func:`object_label`).

    The random draws are the same for every task, so a segmentation dataset shows the same images.
    """
    background = rng.integers(60, 190, size=3)
    pixels = background + rng.normal(0, 18, size=(imgsz, imgsz, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    boxes: list[Box] = []
    labels: list[str] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            size = rng.uniform(0.18, 0.42) * imgsz
            x0, y0 = rng.uniform(0, imgsz - size, size=2)
            box = (x0, y0, x0 + size, y0 + size)
            if not any(overlaps(box, other) for other in boxes):
                break
        else:
            continue
        cls = int(rng.integers(len(CLASS_NAMES)))
        colour = tuple(int(c) for c in np.clip(_CLASS_COLOURS[cls] + rng.integers(-25, 26, size=3), 0, 255))
        draw_shape(draw, CLASS_NAMES[cls], box, colour)
        boxes.append(box)
        labels.append(object_label(cls, CLASS_NAMES[cls], box, imgsz, task))
    return image, labels


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: Box, colour: tuple[int, ...]) -> None:
    """A filled ``circle``, ``square`` or ``triangle`` (apex up) filling ``box``."""
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon(outline(shape, box), fill=colour)


def object_label(cls: int, shape: str, box: Box, imgsz: int, task: str) -> str:
    """One YOLO label line: the box for ``detect``, the shape's outline as a polygon for ``segment``."""
    if task == "segment":
        corners = " ".join(f"{x / imgsz:.6f} {y / imgsz:.6f}" for x, y in outline(shape, box))
        return f"{cls} {corners}\n"
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2 / imgsz, (y0 + y1) / 2 / imgsz
    return f"{cls} {cx:.6f} {cy:.6f} {(x1 - x0) / imgsz:.6f} {(y1 - y0) / imgsz:.6f}\n"


def outline(shape: str, box: Box) -> list[tuple[float, float]]:
    """The shape's outline in pixels: the polygon drawn (a square, a triangle), or a circle's 32-gon."""
    x0, y0, x1, y1 = box
    if shape == "square":
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if shape == "triangle":
        return [((x0 + x1) / 2, y0), (x1, y1), (x0, y1)]
    cx, cy, radius = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    angles = np.linspace(0, 2 * np.pi, _CIRCLE_CORNERS, endpoint=False)
    return [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in angles]


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
