"""The pictures of object_count: flat shapes on a faded grey photo, each shape with its own instance mask.

Knows nothing about questions: it draws the shapes it is given where it finds room, and returns the picture and
one boolean mask per shape (what was actually painted, so the answer can be proven from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("circle", "square", "triangle")
COLOURS = {"red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 90, 220), "yellow": (240, 200, 20)}

# Photos scikit-image ships with its own data (no download), and what each shows. None of them is made of
# shapes a viewer could take for the drawn ones (the coins photo is left out for that reason).
PHOTOS = {
    "brick": "a brick wall",
    "grass": "blades of grass",
    "gravel": "gravel on the ground",
    "moon": "the cratered surface of the moon",
    "coffee": "a cup of coffee on a saucer",
    "astronaut": "an astronaut in a spacesuit",
    "chelsea": "a tabby cat's face",
    "camera": "a man with a camera on a tripod",
    "rocket": "a rocket on its launch pad",
    "stereo_motorcycle": "a motorcycle in a workshop",
}

SIZE_RANGE = (0.13, 0.20)  # a shape's width, as a fraction of the picture's short side
BORDER = 4  # pixels kept free along the picture's edges


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    box: tuple[int, int, int, int]  # where it is drawn: x0, y0, x1, y1 (x1, y1 exclusive)


@cache
def _photo(key: str) -> np.ndarray:
    import skimage.data

    pixels = getattr(skimage.data, key)()
    pixels = pixels[0] if isinstance(pixels, tuple) else pixels
    return np.asarray(Image.fromarray(pixels).convert("L"))


def background(key: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A random crop of the photo (at least 60% of its width, the picture's aspect), grey and faded to mid-tones,
    so that no part of it is as saturated as a drawn shape or as dark as a shadow."""
    w, h = size
    photo = _photo(key)
    ph, pw = photo.shape
    scale = min(pw / w, ph / h) * rng.uniform(0.6, 1.0)
    cw, ch = int(w * scale), int(h * scale)
    x, y = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
    crop = Image.fromarray(photo[y:y + ch, x:x + cw]).resize((w, h), Image.Resampling.LANCZOS)
    faded = 115 + np.asarray(crop, dtype=np.float32) * (90 / 255)
    return Image.fromarray(faded.round().astype(np.uint8)).convert("RGB")


def place(kinds_colours: list[tuple[str, str]], size: tuple[int, int], gap: int,
          rng: np.random.Generator, tries: int = 300) -> list[Shape] | None:
    """Boxes for the shapes, each `gap` pixels or more from the others; None when one finds no room."""
    w, h = size
    short = min(w, h)
    lo, hi = (round(f * short) for f in SIZE_RANGE)
    shapes: list[Shape] = []
    for kind, colour in kinds_colours:
        for _ in range(tries):
            s = int(rng.integers(lo, hi + 1))
            x0 = int(rng.integers(BORDER, w - BORDER - s + 1))
            y0 = int(rng.integers(BORDER, h - BORDER - s + 1))
            box = (x0, y0, x0 + s, y0 + s)
            if all(box[0] >= o.box[2] + gap or o.box[0] >= box[2] + gap or box[1] >= o.box[3] + gap
                   or o.box[1] >= box[3] + gap for o in shapes):
                shapes.append(Shape(kind, colour, box))
                break
        else:
            return None
    return shapes


def _outline(kind: str, box: tuple[int, int, int, int], draw: ImageDraw.ImageDraw) -> None:
    x0, y0, x1, y1 = box
    if kind == "circle":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=255)
    elif kind == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)
    elif kind == "triangle":
        draw.polygon([((x0 + x1 - 1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=255)
    else:
        raise ValueError(f"unknown shape kind {kind!r}")


def draw_picture(back: Image.Image, shapes: list[Shape]) -> tuple[Image.Image, list[np.ndarray]]:
    """The picture, and each shape's instance mask (the pixels painted in its colour)."""
    picture = back.copy()
    masks = []
    for shape in shapes:
        stencil = Image.new("L", picture.size, 0)
        _outline(shape.kind, shape.box, ImageDraw.Draw(stencil))
        picture.paste(COLOURS[shape.colour], mask=stencil)
        masks.append(np.asarray(stencil) > 0)
    return picture, masks
