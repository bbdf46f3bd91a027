"""The ``context`` scenes of the built-in dataset: an object's class is set far away from it.

Every object is a neutral grey circle, square or triangle (the shape and its grey say
nothing about the class). The class of every object in an image is the colour of a thin
frame along the image's border, red, green or blue. The objects keep a margin of a fifth
of the image from the border, and small red, green and blue blobs (clutter, colours drawn
independently of the class) are scattered over the background, so neither the object nor
its neighbourhood tells the class: only the frame, far from the object, does.

It is built for what Gather-Excite is for: a unit with a global extent gathers the whole
map, frame included, into each channel's gate, where a convolution stack has to carry the
frame's colour from the border to the object layer by layer. Measured, the premise does not
hold yet for yolov8n at 128 px: its SPPF and top-down neck already see the whole image, and
in ``benchmarks/results/ground_truth_context_yolov8n_small.csv`` the best placement beats the
baseline by 0.1x the baseline's seed spread (the ground-truth issue asks for 3x).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ge_nas.data.shapes import Box, draw_shape, object_label, overlaps

__all__ = ["CLASS_NAMES", "CUE_COLOURS", "OBJECT_SHAPES", "draw_framed_scene", "draw_scene", "frame_width", "margin"]

# The class is the frame's colour; CUE_COLOURS[k] is class k's (RGB), also the clutter's palette.
CLASS_NAMES: tuple[str, ...] = ("red-frame", "green-frame", "blue-frame")
CUE_COLOURS = np.array([(220, 40, 40), (40, 190, 50), (50, 70, 230)], dtype=np.int16)
OBJECT_SHAPES: tuple[str, ...] = ("circle", "square", "triangle")


def frame_width(imgsz: int) -> int:
    """The frame's width in pixels: 1/32 of the image (4 px at 128 px)."""
    return max(2, round(imgsz / 32))


def margin(imgsz: int) -> int:
    """How far every object's box stays from the image border: a fifth of the image."""
    return imgsz // 5


def draw_scene(
    rng: np.random.Generator, imgsz: int, max_objects: int, task: str = "detect"
) -> tuple[Image.Image, list[str]]:
    """One framed, cluttered scene of a random class, and its YOLO labels (what the dataset writer draws)."""
    return draw_framed_scene(rng, imgsz, max_objects, int(rng.integers(len(CLASS_NAMES))), task)


def draw_framed_scene(
    rng: np.random.Generator, imgsz: int, max_objects: int, cls: int, task: str = "detect"
) -> tuple[Image.Image, list[str]]:
    """One scene framed in class ``cls``'s colour with 1..max_objects grey shapes of that class, and its labels.

    ``rng`` draws the same values whatever ``cls`` is, so one generator state drawn with two
    classes gives two scenes that differ in the frame and the labels' class only.
    """
    background = rng.integers(70, 180, size=3)
    pixels = background + rng.normal(0, 18, size=(imgsz, imgsz, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    width = frame_width(imgsz)
    draw.rectangle((0, 0, imgsz - 1, imgsz - 1), outline=_jittered(rng, CUE_COLOURS[cls]), width=width)
    inner = margin(imgsz)
    boxes: list[Box] = []
    labels: list[str] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            size = rng.uniform(0.2, 0.3) * imgsz
            x0, y0 = rng.uniform(inner, imgsz - inner - size, size=2)
            box = (x0, y0, x0 + size, y0 + size)
            if not any(overlaps(box, other) for other in boxes):
                break
        else:
            continue
        grey = int(rng.choice([rng.integers(20, 50), rng.integers(205, 236)]))  # dark or light: always visible
        colour = tuple(int(c) for c in np.clip(grey + rng.integers(-8, 9, size=3), 0, 255))
        shape = OBJECT_SHAPES[int(rng.integers(len(OBJECT_SHAPES)))]
        draw_shape(draw, shape, box, colour)
        boxes.append(box)
        labels.append(object_label(cls, shape, box, imgsz, task))
    _draw_clutter(rng, draw, imgsz, width, boxes)
    return image, labels


def _draw_clutter(
    rng: np.random.Generator, draw: ImageDraw.ImageDraw, imgsz: int, width: int, objects: list[Box]
) -> None:
    """4 to 8 small blobs in the cue colours, anywhere inside the frame but on no object (labels stay exact)."""
    placed: list[Box] = []
    for _ in range(int(rng.integers(4, 9))):
        size = rng.uniform(0.03, 0.07) * imgsz
        x0, y0 = rng.uniform(width + 1, imgsz - width - 1 - size, size=2)
        box = (x0, y0, x0 + size, y0 + size)
        if any(overlaps(box, other) for other in objects + placed):
            continue
        colour = _jittered(rng, CUE_COLOURS[int(rng.integers(len(CUE_COLOURS)))])
        draw_shape(draw, OBJECT_SHAPES[int(rng.integers(len(OBJECT_SHAPES)))], box, colour)
        placed.append(box)


def _jittered(rng: np.random.Generator, colour: np.ndarray) -> tuple[int, ...]:
    return tuple(int(c) for c in np.clip(colour + rng.integers(-25, 26, size=3), 0, 255))
