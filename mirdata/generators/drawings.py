"""2D procedural drawings: balance scales with labelled objects, and simple street scenes with signs.

Everything is drawn with PIL from explicit parameters, so a drawing is a pure function of its arguments, and
every drawn thing reports its pixel box (and, for sprites, its alpha mask): the builders turn those into
regions and the editors use the masks. A generator knows nothing about questions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 45, 40),
    "blue": (40, 90, 200),
    "green": (45, 150, 60),
    "yellow": (235, 195, 35),
    "orange": (235, 125, 30),
    "purple": (130, 60, 170),
    "grey": (120, 120, 125),
    "brown": (125, 80, 40),
    "white": (240, 240, 240),
    "black": (30, 30, 30),
}

# Pale backdrops for scale drawings: none can hide an object of any colour in COLOURS.
BACKDROPS: dict[str, tuple[int, int, int]] = {
    "white": (250, 250, 250), "cream": (250, 244, 226), "sky": (226, 238, 250)}

# The shapes an object on a scale can have; scenes use the sprite kinds in SPRITES.
SCALE_SHAPES = ("cube", "ball", "cylinder", "sack")


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans from matplotlib's data folder: present wherever matplotlib is, so text renders the same."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), max(6, int(size)))


def shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """Darker (factor < 1) or lighter (factor > 1) version of a colour."""
    if factor <= 1:
        return tuple(int(c * factor) for c in colour)  # type: ignore[return-value]
    return tuple(int(c + (255 - c) * (factor - 1)) for c in colour)  # type: ignore[return-value]


def clip_box(box: Box, size: tuple[int, int]) -> Box:
    w, h = size
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def text_box(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fnt: ImageFont.FreeTypeFont,
             fill: tuple[int, int, int], anchor: str = "mm") -> Box:
    draw.text(xy, text, font=fnt, fill=fill, anchor=anchor)
    x0, y0, x1, y1 = draw.textbbox(xy, text, font=fnt, anchor=anchor)
    return int(x0), int(y0), int(math.ceil(x1)), int(math.ceil(y1))


# -- sprites: RGBA drawings of one object, pasted into scenes --------------------------------------------

@dataclass
class Sprite:
    """One object drawn on a transparent canvas; `name` says what it is ("a red car")."""

    image: Image.Image  # RGBA
    name: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def _canvas(w: int, h: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("RGBA", (max(2, w), max(2, h)), (0, 0, 0, 0))
    return im, ImageDraw.Draw(im)


def _car(w: int, colour: tuple[int, int, int]) -> Image.Image:
    h = int(w * 0.55)
    im, d = _canvas(w, h)
    body_top, body_bottom = int(h * 0.42), int(h * 0.82)
    d.rounded_rectangle([0, body_top, w - 1, body_bottom], radius=int(h * 0.12), fill=colour,
                        outline=shade(colour, 0.6))
    d.polygon([(w * 0.2, body_top), (w * 0.32, h * 0.08), (w * 0.7, h * 0.08), (w * 0.84, body_top)],
              fill=shade(colour, 0.85), outline=shade(colour, 0.6))
    d.polygon([(w * 0.27, body_top - 2), (w * 0.35, h * 0.15), (w * 0.5, h * 0.15), (w * 0.5, body_top - 2)],
              fill=(180, 215, 235))
    d.polygon([(w * 0.54, body_top - 2), (w * 0.54, h * 0.15), (w * 0.67, h * 0.15), (w * 0.77, body_top - 2)],
              fill=(180, 215, 235))
    r = int(h * 0.17)
    for cx in (w * 0.24, w * 0.76):
        d.ellipse([cx - r, h - 2 * r - 1, cx + r, h - 1], fill=(35, 35, 35))
        d.ellipse([cx - r // 2, h - 1.5 * r - 1, cx + r // 2, h - 0.5 * r - 1], fill=(170, 170, 170))
    return im


def _person(h: int, colour: tuple[int, int, int]) -> Image.Image:
    w = int(h * 0.45)
    im, d = _canvas(w, h)
    head = int(h * 0.16)
    cx = w / 2
    d.ellipse([cx - head / 2, 0, cx + head / 2, head], fill=(230, 190, 150), outline=(120, 80, 50))
    d.rounded_rectangle([cx - w * 0.28, head + 2, cx + w * 0.28, h * 0.58], radius=int(w * 0.12), fill=colour)
    limb = max(2, int(w * 0.12))
    d.line([(cx - w * 0.27, head + 6), (cx - w * 0.45, h * 0.5)], fill=colour, width=limb)
    d.line([(cx + w * 0.27, head + 6), (cx + w * 0.45, h * 0.5)], fill=colour, width=limb)
    d.line([(cx - w * 0.12, h * 0.56), (cx - w * 0.18, h - 1)], fill=(40, 40, 70), width=limb + 1)
    d.line([(cx + w * 0.12, h * 0.56), (cx + w * 0.18, h - 1)], fill=(40, 40, 70), width=limb + 1)
    return im


def _tree(h: int, colour: tuple[int, int, int]) -> Image.Image:
    w = int(h * 0.7)
    im, d = _canvas(w, h)
    d.rectangle([w * 0.42, h * 0.55, w * 0.58, h - 1], fill=(110, 70, 35))
    d.ellipse([0, 0, w - 1, h * 0.7], fill=colour, outline=shade(colour, 0.6))
    d.ellipse([w * 0.15, h * 0.08, w * 0.55, h * 0.4], fill=shade(colour, 1.25))
    return im


def _apple(w: int, colour: tuple[int, int, int]) -> Image.Image:
    im, d = _canvas(w, w)
    d.ellipse([0, w * 0.15, w - 1, w - 1], fill=colour, outline=shade(colour, 0.6))
    d.ellipse([w * 0.2, w * 0.3, w * 0.4, w * 0.5], fill=shade(colour, 1.4))
    d.line([(w * 0.5, w * 0.2), (w * 0.58, 0)], fill=(90, 60, 30), width=max(1, w // 10))
    return im


def _litter(w: int, colour: tuple[int, int, int]) -> Image.Image:
    h = int(w * 0.8)
    im, d = _canvas(w, h)
    d.ellipse([0, h * 0.25, w - 1, h - 1], fill=colour, outline=shade(colour, 0.5))
    d.polygon([(w * 0.4, h * 0.3), (w * 0.5, 0), (w * 0.6, h * 0.3)], fill=shade(colour, 0.8))
    d.line([(w * 0.2, h * 0.6), (w * 0.45, h * 0.75)], fill=shade(colour, 0.5), width=max(1, w // 14))
    return im


def _burger(w: int, colour: tuple[int, int, int]) -> Image.Image:
    h = int(w * 0.75)
    im, d = _canvas(w, h)
    bun = (215, 150, 70)
    d.pieslice([0, 0, w - 1, h * 0.9], 180, 360, fill=bun, outline=shade(bun, 0.6))
    d.rectangle([w * 0.04, h * 0.45, w * 0.96, h * 0.55], fill=(90, 170, 60))
    d.rectangle([w * 0.02, h * 0.55, w * 0.98, h * 0.72], fill=colour)
    d.rounded_rectangle([0, h * 0.72, w - 1, h - 1], radius=int(h * 0.08), fill=bun, outline=shade(bun, 0.6))
    return im


def _bench(w: int, colour: tuple[int, int, int]) -> Image.Image:
    h = int(w * 0.45)
    im, d = _canvas(w, h)
    d.rectangle([0, h * 0.1, w - 1, h * 0.3], fill=colour, outline=shade(colour, 0.6))
    d.rectangle([0, h * 0.5, w - 1, h * 0.65], fill=colour, outline=shade(colour, 0.6))
    for x in (w * 0.1, w * 0.85):
        d.rectangle([x, h * 0.3, x + w * 0.05, h - 1], fill=(60, 60, 60))
    return im


def _bin(h: int, colour: tuple[int, int, int]) -> Image.Image:
    w = int(h * 0.7)
    im, d = _canvas(w, h)
    d.polygon([(w * 0.08, h * 0.15), (w * 0.92, h * 0.15), (w * 0.8, h - 1), (w * 0.2, h - 1)],
              fill=colour, outline=shade(colour, 0.6))
    d.rectangle([0, 0, w - 1, h * 0.15], fill=shade(colour, 0.8))
    for x in (0.35, 0.5, 0.65):
        d.line([(w * x, h * 0.3), (w * x, h * 0.85)], fill=shade(colour, 0.6), width=max(1, w // 20))
    return im


def _dog(w: int, colour: tuple[int, int, int]) -> Image.Image:
    h = int(w * 0.7)
    im, d = _canvas(w, h)
    d.ellipse([w * 0.15, h * 0.3, w * 0.8, h * 0.7], fill=colour, outline=shade(colour, 0.6))
    d.ellipse([w * 0.68, h * 0.08, w * 0.98, h * 0.42], fill=colour, outline=shade(colour, 0.6))
    d.polygon([(w * 0.72, h * 0.12), (w * 0.78, 0), (w * 0.84, h * 0.12)], fill=shade(colour, 0.7))
    d.ellipse([w * 0.88, h * 0.2, w * 0.93, h * 0.26], fill=(20, 20, 20))
    leg = max(2, int(w * 0.07))
    for x in (0.22, 0.35, 0.6, 0.72):
        d.line([(w * x, h * 0.6), (w * x, h - 1)], fill=shade(colour, 0.7), width=leg)
    d.line([(w * 0.17, h * 0.4), (0, h * 0.15)], fill=shade(colour, 0.7), width=leg)
    return im


def _bicycle(w: int, colour: tuple[int, int, int]) -> Image.Image:
    h = int(w * 0.6)
    im, d = _canvas(w, h)
    r = int(h * 0.36)
    line = max(2, w // 30)
    for cx in (r + 1, w - r - 2):
        d.ellipse([cx - r, h - 2 * r - 1, cx + r, h - 1], outline=(30, 30, 30), width=line)
    hub_y = h - r - 1
    seat, bars = (w * 0.42, h * 0.2), (w * 0.7, h * 0.14)
    d.line([(r, hub_y), seat, (w * 0.5, hub_y), (r, hub_y)], fill=colour, width=line)
    d.line([seat, bars, (w - r - 2, hub_y)], fill=colour, width=line)
    d.line([bars, (w * 0.5, hub_y)], fill=colour, width=line)
    d.line([(seat[0] - w * 0.06, seat[1]), (seat[0] + w * 0.06, seat[1])], fill=(30, 30, 30), width=line + 1)
    return im


def _flowers(w: int, colour: tuple[int, int, int]) -> Image.Image:
    h = int(w * 0.45)
    im, d = _canvas(w, h)
    d.rectangle([0, h * 0.7, w - 1, h - 1], fill=(110, 75, 45))
    for k in range(7):
        x = w * (0.08 + 0.84 * k / 6)
        d.line([(x, h * 0.75), (x, h * 0.35)], fill=(40, 120, 40), width=max(1, w // 60))
        r = w * 0.055
        d.ellipse([x - r, h * 0.35 - r, x + r, h * 0.35 + r], fill=colour, outline=shade(colour, 0.6))
        d.ellipse([x - r * 0.35, h * 0.35 - r * 0.35, x + r * 0.35, h * 0.35 + r * 0.35], fill=(250, 220, 60))
    return im


def _cloud(w: int, colour: tuple[int, int, int]) -> Image.Image:
    h = int(w * 0.45)
    im, d = _canvas(w, h)
    for x0, y0, x1, y1 in ((0, 0.35, 0.45, 1), (0.2, 0, 0.65, 0.8), (0.45, 0.2, 0.85, 0.95), (0.6, 0.4, 1, 1)):
        d.ellipse([w * x0, h * y0, w * x1 - 1, h * y1 - 1], fill=colour)
    return im


# kind -> (drawing function taking its main dimension, default colour name, "width" or "height" as main)
SPRITES = {
    "dog": (_dog, "width"),
    "bicycle": (_bicycle, "width"),
    "flowers": (_flowers, "width"),
    "cloud": (_cloud, "width"),
    "car": (_car, "width"),
    "person": (_person, "height"),
    "tree": (_tree, "height"),
    "apple": (_apple, "width"),
    "litter": (_litter, "width"),
    "burger": (_burger, "width"),
    "bench": (_bench, "width"),
    "bin": (_bin, "height"),
}


def sprite(kind: str, colour: str, dimension: int) -> Sprite:
    """A sprite of `kind` ("car", "tree", ...) in a named colour; `dimension` is its width or height in pixels."""
    if kind not in SPRITES:
        raise ValueError(f"unknown sprite kind {kind!r}; kinds are {', '.join(SPRITES)}")
    draw, _ = SPRITES[kind]
    return Sprite(draw(int(dimension), COLOURS[colour]), f"{colour} {kind}")


def paste_sprite(image: Image.Image, item: Sprite, xy: tuple[int, int]) -> tuple[Box, np.ndarray]:
    """Paste a sprite with its top-left at `xy`; returns its box (clipped to the image) and its full-size mask."""
    image.paste(item.image, xy, item.image)
    mask = np.zeros((image.height, image.width), dtype=bool)
    x, y = xy
    alpha = np.asarray(item.image.getchannel("A")) > 0
    w, h = item.size
    x0, y0, x1, y1 = clip_box((x, y, x + w, y + h), image.size)
    mask[y0:y1, x0:x1] = alpha[y0 - y:y1 - y, x0 - x:x1 - x]
    return mask_box(mask), mask


def mask_box(mask: np.ndarray) -> Box:
    """Tight box of the True pixels of a mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("empty mask has no box")
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# -- scenes: ground, sky and signs ------------------------------------------------------------------------

GROUNDS = {"grass": (95, 160, 70), "pavement": (175, 170, 160), "asphalt": (90, 92, 96), "sand": (220, 200, 150)}


def background(size: tuple[int, int], ground: str, horizon: float, rng: np.random.Generator) -> Image.Image:
    """Sky over a ground band starting at `horizon` (fraction of the height), with a little seeded texture."""
    w, h = size
    y = int(h * horizon)
    sky = np.linspace([150, 195, 240], [205, 225, 245], y).astype(np.float32)
    ground_rgb = np.array(GROUNDS[ground], dtype=np.float32)
    arr = np.empty((h, w, 3), dtype=np.float32)
    arr[:y] = sky[:, None, :]
    arr[y:] = ground_rgb * np.linspace(0.9, 1.05, h - y)[:, None, None]
    arr[y:] += rng.normal(0, 6, size=(h - y, w, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def draw_sign(image: Image.Image, text: str, centre_x: int, ground_y: int, height: int,
              board: str = "white", ink: str = "red") -> Box:
    """A sign board on a post standing on the ground at (centre_x, ground_y); returns the board's box.

    The text is wrapped on words so that it fits the board; the board is as wide as its longest line.
    """
    d = ImageDraw.Draw(image)
    fnt = font(height * 0.11, bold=True)
    lines = _wrap(text, 14)
    widths = [d.textlength(line, font=fnt) for line in lines]
    line_h = fnt.size * 1.2
    bw = int(max(widths) + fnt.size * 1.2)
    bh = int(line_h * len(lines) + fnt.size * 0.9)
    top = ground_y - height
    x0 = int(min(max(2, centre_x - bw / 2), image.width - bw - 3))  # the board stays inside the picture
    d.rectangle([centre_x - 3, top + bh, centre_x + 3, ground_y], fill=(90, 90, 95))
    d.rounded_rectangle([x0, top, x0 + bw, top + bh], radius=max(2, bh // 8), fill=COLOURS[board],
                        outline=COLOURS[ink], width=max(2, fnt.size // 5))
    for k, line in enumerate(lines):
        d.text((x0 + bw / 2, top + fnt.size * 0.45 + line_h * (k + 0.5)), line, font=fnt, fill=COLOURS[ink],
               anchor="mm")
    return clip_box((x0, top, x0 + bw + 1, top + bh + 1), image.size)


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


# -- balance scales -----------------------------------------------------------------------------------------

@dataclass
class ScaleItem:
    """One labelled object on a pan: its name is written on it ("red cube")."""

    name: str
    shape: str  # one of SCALE_SHAPES
    colour: str
    size: float = 1.0  # drawn size relative to the default; chosen apart from the weight


@dataclass
class ScaleDrawing:
    image: Image.Image
    left_box: Box  # the object on the left pan (label included)
    right_box: Box
    beam_box: Box
    angle: float  # degrees; positive: the left side is down


# A real equal-arm balance has no restoring force worth the name: any imbalance swings the beam to its stop.
STOP_ANGLE = 12.0


def balance_angle(left_weight: float, right_weight: float) -> float:
    """Where an equal-arm balance rests: level for equal weights, else at its stop on the heavier side (degrees,
    positive when the left side is down). The angle says which side is heavier, never by how much."""
    if left_weight == right_weight:
        return 0.0
    return STOP_ANGLE if left_weight > right_weight else -STOP_ANGLE


def draw_balance_scale(size: tuple[int, int], left: ScaleItem, right: ScaleItem, angle: float,
                       style: dict[str, object] | None = None) -> ScaleDrawing:
    """An equal-arm balance with `left` and `right` on its pans, the beam rotated by `angle` degrees; a small
    stop under each end of the beam shows where it rests when one side is heavier.

    `style` may set "backdrop" (a name in BACKDROPS), "metal" (a name in COLOURS) and "table" (a bool).
    """
    style = style or {}
    w, h = size
    image = Image.new("RGB", size, BACKDROPS[str(style.get("backdrop", "white"))])
    d = ImageDraw.Draw(image)
    metal = COLOURS.get(str(style.get("metal", "grey")), COLOURS["grey"])
    s = min(w / 448, h / 336)
    floor_y = int(h * 0.93)
    if style.get("table", True):
        d.rectangle([0, floor_y, w, h], fill=(170, 130, 90))
    pivot = (w / 2, h * 0.36)
    d.polygon([(pivot[0] - 55 * s, floor_y), (pivot[0] + 55 * s, floor_y), (pivot[0] + 8 * s, pivot[1]),
               (pivot[0] - 8 * s, pivot[1])], fill=shade(metal, 0.8), outline=shade(metal, 0.5))
    half = w * 0.34
    for sign in (-1, 1):  # the stops the beam rests on, drawn at the full-tilt angle
        sx = pivot[0] + sign * half * math.cos(math.radians(STOP_ANGLE)) * 0.55
        sy = pivot[1] + half * math.sin(math.radians(STOP_ANGLE)) * 0.55 + 3 * s
        d.rectangle([sx - 5 * s, sy, sx + 5 * s, sy + 6 * s], fill=shade(metal, 0.5))
        d.line([(sx, sy + 6 * s), (pivot[0], floor_y - 10 * s)], fill=shade(metal, 0.7), width=max(1, int(2 * s)))
    rad = math.radians(angle)
    # Screen y grows downwards: a positive angle lowers the left end.
    ends = [(pivot[0] - half * math.cos(rad), pivot[1] + half * math.sin(rad)),
            (pivot[0] + half * math.cos(rad), pivot[1] - half * math.sin(rad))]
    d.line([ends[0], ends[1]], fill=metal, width=max(3, int(7 * s)))
    d.ellipse([pivot[0] - 9 * s, pivot[1] - 9 * s, pivot[0] + 9 * s, pivot[1] + 9 * s], fill=shade(metal, 0.6))
    beam_box = clip_box((int(min(e[0] for e in ends)) - 4, int(min(e[1] for e in ends)) - 4,
                         int(max(e[0] for e in ends)) + 5, int(max(e[1] for e in ends)) + 5), size)
    boxes = []
    for (ex, ey), item in zip(ends, (left, right)):
        string = 62 * s
        pan_y = ey + string
        pan_w = 110 * s
        d.line([(ex, ey), (ex - pan_w * 0.45, pan_y)], fill=shade(metal, 0.6), width=max(1, int(2 * s)))
        d.line([(ex, ey), (ex + pan_w * 0.45, pan_y)], fill=shade(metal, 0.6), width=max(1, int(2 * s)))
        d.chord([ex - pan_w / 2, pan_y - 14 * s, ex + pan_w / 2, pan_y + 14 * s], 0, 180, fill=metal,
                outline=shade(metal, 0.5))
        boxes.append(_draw_scale_item(d, item, ex, pan_y, 64 * s * item.size, s))
    return ScaleDrawing(image, clip_box(boxes[0], size), clip_box(boxes[1], size), beam_box, angle)


def _draw_scale_item(d: ImageDraw.ImageDraw, item: ScaleItem, cx: float, base_y: float, dim: float, s: float) -> Box:
    colour = COLOURS[item.colour]
    edge = shade(colour, 0.55)
    x0, x1 = cx - dim / 2, cx + dim / 2
    top = base_y - dim
    if item.shape == "cube":
        d.rectangle([x0, top, x1, base_y], fill=colour, outline=edge, width=2)
    elif item.shape == "ball":
        d.ellipse([x0, top, x1, base_y], fill=colour, outline=edge, width=2)
    elif item.shape == "cylinder":
        d.rectangle([x0 + dim * 0.1, top + dim * 0.1, x1 - dim * 0.1, base_y - dim * 0.08], fill=colour)
        d.ellipse([x0 + dim * 0.1, base_y - dim * 0.16, x1 - dim * 0.1, base_y], fill=colour, outline=edge)
        d.ellipse([x0 + dim * 0.1, top, x1 - dim * 0.1, top + dim * 0.2], fill=shade(colour, 1.3), outline=edge)
    elif item.shape == "sack":
        d.polygon([(x0 + dim * 0.35, top + dim * 0.12), (x1 - dim * 0.35, top + dim * 0.12), (x1, base_y - dim * 0.2),
                   (x1 - dim * 0.1, base_y), (x0 + dim * 0.1, base_y), (x0, base_y - dim * 0.2)],
                  fill=colour, outline=edge)
        d.rectangle([cx - dim * 0.15, top, cx + dim * 0.15, top + dim * 0.14], fill=shade(colour, 0.7))
    else:
        raise ValueError(f"unknown shape {item.shape!r}; shapes are {', '.join(SCALE_SHAPES)}")
    ink = (255, 255, 255) if sum(colour) < 400 else (20, 20, 20)
    label = text_box(d, (cx, base_y - dim * 0.45), item.name, font(13 * s, bold=True), ink)
    return (int(min(x0, label[0])) - 1, int(min(top, label[1])) - 1, int(max(x1, label[2])) + 2,
            int(max(base_y, label[3])) + 2)


# -- scenes of known real size (for judging scale) ---------------------------------------------------------------

@dataclass
class ScaleScene:
    """A drawn scene whose real width follows from the known size of the things in it."""

    image: Image.Image
    subject: np.ndarray  # mask of the things that fix the scale
    width_m: float  # the real width of the whole picture
    scene: str  # what it shows
    subject_name: str


def draw_street(size: tuple[int, int], rng: np.random.Generator) -> ScaleScene:
    """A street: cars (4.5 m long), people and trees; its width is the picture's width in car lengths."""
    w, h = size
    image = background(size, str(rng.choice(["asphalt", "pavement"])), float(rng.uniform(0.35, 0.45)), rng)
    car_px = int(w * rng.uniform(0.14, 0.26))
    ground = int(h * rng.uniform(0.8, 0.9))
    subject = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(1, 3))):
        paste_sprite(image, sprite("tree", "green", int(car_px * 1.1)), (int(rng.integers(0, w - car_px)),
                                                                          ground - int(car_px * 1.25)))
    for _ in range(int(rng.integers(2, 4))):
        car = sprite("car", str(rng.choice(["red", "blue", "yellow", "white", "black"])), car_px)
        _, mask = paste_sprite(image, car, (int(rng.integers(0, w - car_px)), ground - car.size[1]))
        subject |= mask
    person = sprite("person", str(rng.choice(["red", "blue", "green", "orange"])), int(car_px * 0.4))
    _, in_front = paste_sprite(image, person, (int(rng.integers(0, w - person.size[0])), ground - person.size[1] + 4))
    subject &= ~in_front  # the masks respect occlusion
    return ScaleScene(image, subject, round(w / car_px * 4.5, 1), "a street with parked cars", "cars")


def draw_tabletop(size: tuple[int, int], rng: np.random.Generator) -> ScaleScene:
    """Apples (8 cm across) and a burger on a wooden table; its width is the picture's width in apples."""
    w, h = size
    wood = np.array(COLOURS["brown"], dtype=np.float32) * rng.uniform(1.0, 1.3)
    grain = np.sin(np.arange(h, dtype=np.float32)[:, None] / rng.uniform(3, 6) + rng.normal(0, 0.4, (1, w)))
    arr = wood[None, None, :] * (0.9 + 0.08 * grain[..., None]) + rng.normal(0, 4, (h, w, 1))
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    apple_px = int(w * rng.uniform(0.07, 0.13))
    subject = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(3, 6))):
        apple = sprite("apple", str(rng.choice(["red", "green", "yellow"])), apple_px)
        _, mask = paste_sprite(image, apple, (int(rng.integers(0, w - apple_px)), int(rng.integers(0, h - apple_px))))
        subject |= mask
    burger = sprite("burger", "brown", int(apple_px * 1.5))
    _, in_front = paste_sprite(image, burger, (int(rng.integers(0, w - burger.size[0])),
                                               int(rng.integers(0, h - burger.size[1]))))
    subject &= ~in_front
    return ScaleScene(image, subject, round(w / apple_px * 0.08, 2), "apples and a burger on a wooden table",
                      "apples")


def draw_town(size: tuple[int, int], rng: np.random.Generator) -> ScaleScene:
    """A town seen from above: houses (10 m across) along roads; its width is the picture's width in houses."""
    w, h = size
    image = background(size, "grass", 0.0, rng)
    d = ImageDraw.Draw(image)
    house_px = int(w * rng.uniform(0.035, 0.07))
    road = max(3, int(house_px * 0.6))
    block = house_px * int(rng.integers(3, 5))
    taken = np.zeros((h, w), dtype=bool)  # roads and houses: where no new house may stand
    for y in range(int(rng.integers(0, block)), h, block):
        d.rectangle([0, y, w, y + road], fill=GROUNDS["asphalt"])
        taken[max(0, y - 1):y + road + 2] = True
    for x in range(int(rng.integers(0, block)), w, block):
        d.rectangle([x, 0, x + road, h], fill=GROUNDS["asphalt"])
        taken[:, max(0, x - 1):x + road + 2] = True
    subject = np.zeros((h, w), dtype=bool)
    roofs = [COLOURS["red"], COLOURS["brown"], COLOURS["grey"], (200, 120, 90)]
    for _ in range(int(w * h / (block * block) * 3)):
        x, y = int(rng.integers(0, w - house_px)), int(rng.integers(0, h - house_px))
        if taken[y:y + house_px, x:x + house_px].any():
            continue
        roof = roofs[int(rng.integers(len(roofs)))]
        d.rectangle([x, y, x + house_px - 1, y + house_px - 1], fill=roof, outline=shade(roof, 0.6))
        d.line([(x, y + house_px // 2), (x + house_px - 1, y + house_px // 2)], fill=shade(roof, 0.7))
        subject[y:y + house_px, x:x + house_px] = True
        taken[max(0, y - 2):y + house_px + 2, max(0, x - 2):x + house_px + 2] = True
    return ScaleScene(image, subject, round(w / house_px * 10, 0), "a town seen from the air", "houses")


SCALE_SCENES = {"street": draw_street, "tabletop": draw_tabletop, "town": draw_town}
