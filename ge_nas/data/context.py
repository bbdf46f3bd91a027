"""The ``context`` scenes of the built-in dataset: an object's class is set far away from it.

Every object is a neutral grey circle, square or triangle (the shape and its grey say
nothing about the class). The class of every object in an image is the colour of a band,
red, green or blue, that covers a quarter of the image along one side, drawn at random
(top, bottom, left or right). Every object lies in the half of the image away from the
band, and 6 to 11 small blobs in all three colours (clutter, drawn independently of the
class) are scattered anywhere, so neither the object nor its neighbourhood tells the
class: only the band, at least a quarter of the image away, does.

It is built for what Gather-Excite is for: a unit with a global extent gathers the whole
map, band included, into each channel's gate, where a convolution stack has to carry the
band's colour to the object layer by layer. Measured (README, "The built-in dataset"): with
2,048 training images at 128 px, 30 epochs from scratch, mosaic off, yolov8n learns the
class (its SPPF and neck see the whole image), yolov8n cut at stride 8 (the shipped space
``yolov8n_p3``, whose receptive field does not reach the band) stays at chance, and one
global GE unit at its output lifts it to yolov8n's accuracy, 130 times the seed spread.

Train on it without mosaic (``ge-nas search --no-mosaic``): Ultralytics' mosaic tiles four
scenes, four bands of different classes, into one training image, and then no cue decides.
With 512 images or fewer no model learned the class in our pilots.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ge_nas.data.shapes import Box, draw_shape, object_label, overlaps

__all__ = ["CLASS_NAMES", "CUE_COLOURS", "OBJECT_SHAPES", "SIDES", "band_box", "draw_band_scene", "draw_scene"]

# The class is the band's colour; CUE_COLOURS[k] is class k's (RGB), also the clutter's palette.
CLASS_NAMES: tuple[str, ...] = ("red-band", "green-band", "blue-band")
CUE_COLOURS = np.array([(220, 40, 40), (40, 190, 50), (50, 70, 230)], dtype=np.int16)
OBJECT_SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# Where the band lies; the objects lie in the half across from it.
SIDES: tuple[str, ...] = ("top", "bottom", "left", "right")


def band_box(side: int, imgsz: int) -> Box:
    """The band's rectangle (inclusive pixel corners) on side ``SIDES[side]``: a quarter of the image."""
    band = imgsz // 4
    return (
        (0, 0, imgsz - 1, band - 1),
        (0, imgsz - band, imgsz - 1, imgsz - 1),
        (0, 0, band - 1, imgsz - 1),
        (imgsz - band, 0, imgsz - 1, imgsz - 1),
    )[side]


def draw_scene(
    rng: np.random.Generator, imgsz: int, max_objects: int, task: str = "detect"
) -> tuple[Image.Image, list[str]]:
    """One scene of a random class, and its YOLO labels (what the dataset writer draws)."""
    return draw_band_scene(rng, imgsz, max_objects, int(rng.integers(len(CLASS_NAMES))), task)


def draw_band_scene(
    rng: np.random.Generator, imgsz: int, max_objects: int, cls: int, task: str = "detect"
) -> tuple[Image.Image, list[str]]:
    """One scene with a band of class ``cls``'s colour and 1..max_objects grey shapes of that class, and its labels.

    ``rng`` draws the same values whatever ``cls`` is, so one generator state drawn with two
    classes gives two scenes that differ in the band's colour and the labels' class only.
    """
    background = rng.integers(70, 180, size=3)
    pixels = background + rng.normal(0, 18, size=(imgsz, imgsz, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    side = int(rng.integers(len(SIDES)))
    draw.rectangle(band_box(side, imgsz), fill=_jittered(rng, CUE_COLOURS[cls]))
    boxes: list[Box] = []
    labels: list[str] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            size = rng.uniform(0.2, 0.3) * imgsz
            along = rng.uniform(0, imgsz - size)  # anywhere along the band's side
            across = rng.uniform(imgsz // 2, imgsz - size)  # in the far half, counted from the band
            if SIDES[side] in ("bottom", "right"):
                across = imgsz - across - size
            x0, y0 = (along, across) if SIDES[side] in ("top", "bottom") else (across, along)
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
    _draw_clutter(rng, draw, imgsz, boxes)
    return image, labels


def _draw_clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, imgsz: int, objects: list[Box]) -> None:
    """6 to 11 small blobs in the cue colours, anywhere but on an object (labels stay exact)."""
    placed: list[Box] = []
    for _ in range(int(rng.integers(6, 12))):
        size = rng.uniform(0.03, 0.07) * imgsz
        x0, y0 = rng.uniform(0, imgsz - size, size=2)
        box = (x0, y0, x0 + size, y0 + size)
        if any(overlaps(box, other) for other in objects + placed):
            continue
        shape = OBJECT_SHAPES[int(rng.integers(len(OBJECT_SHAPES)))]
        draw_shape(draw, shape, box, _jittered(rng, CUE_COLOURS[int(rng.integers(len(CUE_COLOURS)))]))
        placed.append(box)


def _jittered(rng: np.random.Generator, colour: np.ndarray) -> tuple[int, ...]:
    return tuple(int(c) for c in np.clip(colour + rng.integers(-25, 26, size=3), 0, 255))
