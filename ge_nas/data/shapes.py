"""The ``shapes`` scenes of the built-in dataset: a shape's class is what it looks like.

Coloured circles, squares and triangles (one class per shape, each class with its own
hue, jittered) on a noisy background. Everything needed to tell an object's class lies
inside its own box, so a detector's local features suffice: this is the quick demo's data.
The shape primitives here are shared with :mod:`ge_nas.data.context`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["CLASS_NAMES", "Box", "draw_scene", "draw_shape", "overlaps"]

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle")
# One base colour per class (RGB); each object gets it with some jitter.
_CLASS_COLOURS = np.array([(230, 60, 50), (60, 200, 70), (60, 90, 235)], dtype=np.int16)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def draw_scene(rng: np.random.Generator, imgsz: int, max_objects: int) -> tuple[Image.Image, list[str]]:
    """One noisy background with 1..max_objects non-overlapping shapes, and its YOLO labels."""
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
        cx, cy = (box[0] + box[2]) / 2 / imgsz, (box[1] + box[3]) / 2 / imgsz
        labels.append(f"{cls} {cx:.6f} {cy:.6f} {size / imgsz:.6f} {size / imgsz:.6f}\n")
    return image, labels


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: Box, colour: tuple[int, ...]) -> None:
    """A filled ``circle``, ``square`` or ``triangle`` (apex up) filling ``box``."""
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
