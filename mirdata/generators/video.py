"""Procedural videos with known motion, encoded as H.264 with PyAV; the facts come out with the video.

Two kinds of scene, both described in image coordinates (the size of the dataset's images):

* `MotionScene`: coloured shapes on piecewise-linear trajectories over a textured backdrop, with optional
  occluders the shapes pass behind, static posts planted in the ground (a reference that shows a camera pan)
  and an optional camera pan. Positions are exact, so speeds and directions are known by construction; what
  a frame shows of each object (its visible pixels, hence its box and visible fraction) comes from rendering
  the frame with and without that object, so occlusion by whatever is drawn on top is respected.
* `ProcessScene`: a top-down kitchen counter where a recipe happens step by step (items cut on a board,
  added to a bowl, liquid poured, everything mixed, then cooked). Every step changes what is visible and
  nothing is undone, so the order of the steps can be read from the frames; step boundaries are facts.

The video is rendered at the dataset's image size (rounded up to even sides for H.264), so a sampled frame is
the image itself, never an upscaled one, and masks are in the image's pixels. `open_clip` writes a scene to a
temporary file and hands back a `FrameSampler` on it; the dataset keeps only the sampled frames.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Protocol

import av
import numpy as np
from PIL import Image, ImageDraw

from mirdata.generators.frames import FrameSampler, VideoInfo

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (214, 48, 39), "blue": (38, 88, 204), "green": (40, 160, 64), "yellow": (244, 204, 36),
    "purple": (128, 58, 176), "orange": (242, 128, 28), "pink": (236, 108, 172), "cyan": (36, 190, 206),
    "white": (246, 246, 246), "black": (28, 28, 28),
}
SHAPES = ("circle", "square", "triangle", "diamond", "hexagon", "star")

Box = tuple[float, float, float, float]


# -- video files ---------------------------------------------------------------------------------------------

def video_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """The size a scene of `image_size` is rendered at: the image size, each side rounded up to even (H.264's
    4:2:0 chroma needs even sides); `to_image` crops the extra column or row off again."""
    width, height = image_size
    return max(16, width + width % 2), max(16, height + height % 2)


def write_video(path: Path, frames: Iterable[np.ndarray], fps: int) -> Path:
    """Encode RGB frames (h, w, 3 uint8, even sizes) as H.264 in an MP4 at a constant `fps`."""
    container = av.open(str(path), "w", format="mp4")
    try:
        stream = None
        for k, frame in enumerate(frames):
            if stream is None:
                # Same frames, same bytes: one x264 thread, and no lookahead (with it, x264 gave run-to-run
                # differences here even on one thread). "ultrafast": a clip lives only until its frames are
                # sampled, so encoding time counts and file size does not.
                stream = container.add_stream("libx264", rate=fps, options={
                    "crf": "18", "preset": "ultrafast", "x264-params": "bframes=0:rc-lookahead=0"})
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.thread_count = 1
                stream.codec_context.gop_size = fps  # a key frame each second, so sampling seeks cheaply
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            video_frame.pts, video_frame.time_base = k, Fraction(1, fps)
            container.mux(stream.encode(video_frame))
        if stream is not None:
            container.mux(stream.encode())
    finally:
        container.close()
    return path


class Scene(Protocol):
    size: tuple[int, int]
    duration: float
    fps: int

    def render(self, t: float, video: tuple[int, int]) -> np.ndarray: ...


def frame_count(scene: Scene) -> int:
    return int(round(scene.duration * scene.fps))


@contextmanager
def open_clip(scene: Scene) -> Iterator[FrameSampler]:
    """Render `scene` to a temporary H.264 file and sample it; the file is gone when the block ends."""
    video = video_size(scene.size)
    count = frame_count(scene)
    with tempfile.TemporaryDirectory(prefix="mirdata-clip-") as tmp:
        path = write_video(Path(tmp) / "clip.mp4", (scene.render(k / scene.fps, video) for k in range(count)),
                           scene.fps)
        # What the file holds is known from writing it: no probe needed.
        info = VideoInfo(path=str(path), frames=count, width=video[0], height=video[1], fps=float(scene.fps),
                         timestamps=tuple(round(k / scene.fps, 6) for k in range(count)), reported_frames=count)
        with FrameSampler(path, info) as sampler:
            yield sampler


def to_image(frame: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A decoded frame as a PIL image of the dataset's image size (its top-left part: the video is the image
    size rounded up to even sides, never scaled)."""
    width, height = size
    return Image.fromarray(np.ascontiguousarray(frame[:height, :width]))


def visible_mask(full: np.ndarray, without: np.ndarray) -> np.ndarray:
    """The pixels of one object that a frame shows: where the frame differs from the same frame rendered
    without that object. Whatever is drawn over the object hides it, so occlusion is respected; fragments
    thinner than 3 pixels (a rim peeking out from under another shape, lost to video compression) are dropped."""
    differs = full != without
    return _opened(differs[..., 0] | differs[..., 1] | differs[..., 2])


def _opened(mask: np.ndarray) -> np.ndarray:
    """Morphological opening with a 3x3 square: what survives erosion, grown back."""
    h, w = mask.shape
    padded = np.pad(mask, 1)
    eroded = np.ones_like(mask)
    for dy in range(3):
        for dx in range(3):
            eroded &= padded[dy:dy + h, dx:dx + w]
    padded = np.pad(eroded, 1)
    grown = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            grown |= padded[dy:dy + h, dx:dx + w]
    return grown


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box [x0, y0, x1, y1) of a mask's pixels, or None when it is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# -- drawing helpers -----------------------------------------------------------------------------------------

class _Canvas:
    """Draws in image coordinates (pixels) onto an image whose top-left corner is at `offset`."""

    def __init__(self, image: Image.Image, offset: tuple[float, float] = (0.0, 0.0)):
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.ox, self.oy = offset

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return x - self.ox, y - self.oy

    def box(self, box: Box) -> list[float]:
        x0, y0 = self.xy(box[0], box[1])
        x1, y1 = self.xy(box[2], box[3])
        return [x0, y0, x1, y1]

    def shape(self, shape: str, cx: float, cy: float, r: float, fill: tuple[int, int, int],
              outline: tuple[int, int, int] | None = None) -> None:
        outline = outline or tuple(int(c * 0.55) for c in fill)
        if shape == "circle":
            self.draw.ellipse(self.box((cx - r, cy - r, cx + r, cy + r)), fill=fill, outline=outline)
        elif shape == "square":
            self.draw.rectangle(self.box((cx - r, cy - r, cx + r, cy + r)), fill=fill, outline=outline)
        else:
            self.draw.polygon([self.xy(x, y) for x, y in shape_points(shape, cx, cy, r)], fill=fill, outline=outline)


def shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Polygon corners of a shape centred at (cx, cy) whose bounding box is 2r wide (image coordinates)."""
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "hexagon":
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 7)[:-1]]
    if shape == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rad = r if k % 2 == 0 else r * 0.45
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        return pts
    raise ValueError(f"unknown shape {shape!r}")


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _intersect(a: Box, b: Box) -> Box:
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


# -- motion scenes -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trajectory:
    """A piecewise-linear path: at `times[k]` the point is `points[k]`; constant before and after."""

    times: tuple[float, ...]
    points: tuple[tuple[float, float], ...]

    @classmethod
    def still(cls, point: tuple[float, float]) -> Trajectory:
        return cls((0.0,), (tuple(point),))

    @classmethod
    def line(cls, start: tuple[float, float], velocity: tuple[float, float], duration: float) -> Trajectory:
        end = (start[0] + velocity[0] * duration, start[1] + velocity[1] * duration)
        return cls((0.0, duration), (tuple(start), end))

    @classmethod
    def move(cls, start: tuple[float, float], end: tuple[float, float], t0: float, t1: float) -> Trajectory:
        """Still at `start` until t0, moving at constant speed to `end` by t1, still afterwards."""
        return cls((0.0, t0, t1), (tuple(start), tuple(start), tuple(end)))

    def at(self, t: float) -> tuple[float, float]:
        xs, ys = zip(*self.points)
        return float(np.interp(t, self.times, xs)), float(np.interp(t, self.times, ys))


@dataclass(frozen=True)
class Thing:
    """A moving shape; `radius` is half its width in image pixels."""

    color: str
    shape: str
    radius: float
    path: Trajectory

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    def center(self, t: float) -> tuple[float, float]:
        return self.path.at(t)

    def box(self, t: float) -> Box:
        x, y = self.center(t)
        return x - self.radius, y - self.radius, x + self.radius, y + self.radius


@dataclass(frozen=True)
class Occluder:
    """Something in front of the moving shapes (a pillar, a signpost); `box` is in world coordinates."""

    label: str
    box: Box
    color: tuple[int, int, int] = (120, 120, 128)


POST_COLORS = ((20, 20, 20), (250, 250, 250))  # black and white bands: no shape has these colours


@dataclass(frozen=True)
class Post:
    """A black-and-white banded post planted in the ground, behind the shapes: it never moves in the world, so
    its shift from frame to frame is the camera's."""

    x: float  # world x of its centre line
    top: float
    bottom: float
    width: float
    label: str = "striped post"

    @property
    def box(self) -> Box:
        return self.x - self.width / 2, self.top, self.x + self.width / 2, self.bottom


@dataclass
class Observation:
    """What a frame shows of one object: its centre in the frame and in the world, the box of its visible
    pixels, how many pixels are visible, and their fraction of the object's whole (unclipped, unoccluded)
    area."""

    center: tuple[float, float]
    world: tuple[float, float]
    box: tuple[int, int, int, int] | None
    visible: float
    pixels: int


@dataclass
class MotionScene:
    """Shapes moving over a backdrop. World coordinates are image pixels; the camera's view is `size` and its
    top-left corner follows `camera` (still at (0, 0) unless the camera pans; rounded to whole pixels), within
    a world of `world`. Drawing order, back to front: backdrop, posts, shapes in list order, occluders."""

    size: tuple[int, int]
    duration: float
    fps: int
    things: list[Thing]
    backdrop_seed: int
    occluders: list[Occluder] = field(default_factory=list)
    camera: Trajectory = field(default_factory=lambda: Trajectory.still((0.0, 0.0)))
    world: tuple[int, int] | None = None
    posts: list[Post] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.world = tuple(self.world or self.size)

    def thing(self, name: str) -> Thing:
        return next(t for t in self.things if t.name == name)

    def camera_at(self, t: float) -> tuple[int, int]:
        """The camera's top-left corner in the world, in whole pixels (what the frame is cropped at)."""
        cx, cy = self.camera.at(t)
        return int(round(cx)), int(round(cy))

    def observe(self, thing: Thing | Post, t: float) -> Observation:
        """What the frame at `t` shows of a shape or a post, from its visible pixels."""
        cx, cy = self.camera_at(t)
        if isinstance(thing, Post):
            wx, wy = thing.x, (thing.top + thing.bottom) / 2
            whole = _post_pixels(thing)
        else:
            wx, wy = thing.center(t)
            whole = _shape_pixels(thing.shape, wx, wy, thing.radius)
        mask = self.mask(thing, t)
        pixels = int(mask.sum())
        return Observation(center=(wx - cx, wy - cy), world=(wx, wy), box=mask_box(mask),
                           visible=min(1.0, pixels / max(1, whole)), pixels=pixels)

    def mask(self, thing: Thing | Post, t: float) -> np.ndarray:
        """The pixels of the frame at `t` (image size) that show `thing`."""
        w, h = self.size
        cx, cy = self.camera_at(t)
        x0, y0, x1, y1 = thing.box if isinstance(thing, Post) else thing.box(t)
        # Only around the object can the two renders differ: compare there.
        left, top = max(0, math.floor(x0 - cx) - 3), max(0, math.floor(y0 - cy) - 3)
        right, bottom = min(w, math.ceil(x1 - cx) + 4), min(h, math.ceil(y1 - cy) + 4)
        mask = np.zeros((h, w), dtype=bool)
        if right > left and bottom > top:
            without = self.render(t, video_size(self.size), omit=thing)
            mask[top:bottom, left:right] = visible_mask(self._frame(t)[top:bottom, left:right],
                                                        without[top:bottom, left:right])
        return mask

    def _frame(self, t: float) -> np.ndarray:
        key = round(t, 6)
        if key not in self._frames:
            self._frames[key] = self.render(t, video_size(self.size))
        return self._frames[key]

    @cached_property
    def _frames(self) -> dict[float, np.ndarray]:
        return {}

    @cached_property
    def backdrop(self) -> Image.Image:
        """The whole world's backdrop: sky, ground, a horizon of buildings and trees, and scattered marks on
        the ground."""
        return _draw_backdrop(self.world, self.size, self.backdrop_seed)

    def render(self, t: float, video: tuple[int, int], omit: Thing | Post | None = None) -> np.ndarray:
        """The frame at `t`, `video` pixels (the image size or one more column/row); `omit` left out."""
        left, top = self.camera_at(t)
        frame = self.backdrop.crop((left, top, left + video[0], top + video[1]))
        canvas = _Canvas(frame, offset=(left, top))
        for post in self.posts:
            if post is not omit:
                _draw_post(canvas, post)
        for thing in self.things:
            if thing is not omit:
                x, y = thing.center(t)
                canvas.shape(thing.shape, x, y, thing.radius, COLORS[thing.color])
        for occ in self.occluders:
            canvas.draw.rectangle(canvas.box(occ.box), fill=occ.color, outline=tuple(c // 2 for c in occ.color))
        return np.asarray(frame)


def _draw_post(canvas: _Canvas, post: Post) -> None:
    x0, y0, x1, y1 = post.box
    band = max(4.0, post.width * 1.5)
    k, y = 0, y0
    while y < y1:
        canvas.draw.rectangle(canvas.box((x0, y, x1, min(y1, y + band))), fill=POST_COLORS[k % 2])
        k, y = k + 1, y + band


def _post_pixels(post: Post) -> int:
    """How many pixels a post covers when nothing hides it."""
    x0, y0, x1, y1 = post.box
    left, top = math.floor(x0) - 2, math.floor(y0) - 2
    image = Image.new("RGB", (int(math.ceil(x1 - x0)) + 6, int(math.ceil(y1 - y0)) + 6))
    _draw_post(_Canvas(image, offset=(left, top)), post)
    return int(_opened(np.asarray(image).any(axis=2)).sum())


def _shape_pixels(shape: str, x: float, y: float, r: float) -> int:
    """How many pixels a shape covers when drawn whole at (x, y) (the same sub-pixel position as in a frame),
    counted as `visible_mask` counts them."""
    left, top = math.floor(x - r) - 3, math.floor(y - r) - 3
    side = int(math.ceil(2 * r)) + 8
    image = Image.new("RGB", (side, side))
    _Canvas(image, offset=(left, top)).shape(shape, x, y, r, (255, 255, 255))
    return int(_opened(np.asarray(image).any(axis=2)).sum())


def _draw_backdrop(world: tuple[int, int], size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    width, height = world[0] + 2, world[1] + 2
    horizon = rng.uniform(0.3, 0.45)
    sky_top, sky_low = np.array([110, 160, 225]), np.array([190, 215, 240])
    ground_near = np.array(rng.choice([[104, 150, 80], [150, 136, 104], [128, 128, 120]]))
    ground_far = ground_near * 0.8 + 40
    ys = np.linspace(0, 1, height)[:, None]
    sky = sky_top + (sky_low - sky_top) * (ys / horizon)
    ground = ground_far + (ground_near - ground_far) * ((ys - horizon) / (1 - horizon))
    column = np.where(ys < horizon, sky, ground)
    image = Image.fromarray(np.repeat(column[:, None, :], width, axis=1).clip(0, 255).astype(np.uint8))
    canvas = _Canvas(image)
    hy = horizon * world[1]
    x = 0.0
    while x < world[0]:  # a skyline: buildings and trees along the horizon
        w = rng.uniform(0.04, 0.1) * size[0]
        h = rng.uniform(0.05, 0.2) * size[1]
        if rng.random() < 0.6:
            shade = int(rng.integers(90, 170))
            canvas.draw.rectangle(canvas.box((x, hy - h, x + w, hy)), fill=(shade, shade - 10, shade - 20))
        else:
            green = (40, int(rng.integers(84, 108)), 48)  # darker than the green shapes, so they stand out
            canvas.draw.ellipse(canvas.box((x, hy - h, x + w, hy + 0.01 * size[1])), fill=green)
        x += w + rng.uniform(0.0, 0.05) * size[0]
    for _ in range(int(world[0] * world[1] / 500)):  # pebbles and grass on the ground: a texture that pans
        px, py = rng.uniform(0, world[0]), rng.uniform(hy + 4, world[1])
        r = rng.uniform(0.8, 2.4) * (0.5 + 0.5 * (py - hy) / max(1.0, world[1] - hy))  # smaller far away
        shade = ground_near * rng.uniform(0.6, 0.9)
        canvas.draw.ellipse(canvas.box((px - r, py - r, px + r, py + r)), fill=tuple(int(c) for c in shade))
    return image


def random_looks(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """`n` (colour, shape) pairs with distinct colours and distinct shapes, so every name is unique and
    every name differs from every other in both words."""
    colors = rng.choice([c for c in COLORS if c not in ("white", "black")], size=n, replace=False)
    shapes = rng.choice(SHAPES, size=n, replace=False)
    return [(str(c), str(s)) for c, s in zip(colors, shapes)]


# -- process scenes ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ingredient:
    name: str
    look: str  # round | rod | pile | yolk | leaf
    color: tuple[int, int, int]
    inside: tuple[int, int, int]  # the colour of its cut faces
    radius: float  # fraction of the image height


INGREDIENTS: dict[str, Ingredient] = {i.name: i for i in [
    Ingredient("tomato", "round", (210, 44, 38), (236, 96, 74), 0.07),
    Ingredient("cucumber", "rod", (48, 124, 50), (176, 222, 146), 0.075),
    Ingredient("carrot", "rod", (240, 124, 26), (250, 160, 70), 0.075),
    Ingredient("onion", "round", (196, 150, 96), (238, 224, 236), 0.065),
    Ingredient("apple", "round", (196, 30, 44), (250, 238, 196), 0.065),
    Ingredient("banana", "rod", (246, 218, 70), (252, 244, 206), 0.08),
    Ingredient("mushroom", "round", (176, 146, 116), (236, 222, 200), 0.055),
    Ingredient("lettuce", "leaf", (120, 192, 78), (170, 220, 120), 0.08),
    Ingredient("flour", "pile", (244, 242, 232), (244, 242, 232), 0.075),
    Ingredient("sugar", "pile", (252, 252, 252), (252, 252, 252), 0.055),
    Ingredient("egg", "yolk", (250, 246, 232), (250, 190, 30), 0.06),
    Ingredient("cheese", "pile", (250, 206, 70), (250, 206, 70), 0.06),
]}

LIQUIDS: dict[str, tuple[int, int, int]] = {
    "milk": (246, 246, 240), "water": (150, 190, 230), "olive oil": (206, 184, 60), "cream": (250, 242, 214),
    "tomato sauce": (186, 38, 28), "broth": (196, 150, 80),
}

# A recipe is its steps in the one order they make sense: (action, thing). Items are cut on the board before
# they go into the bowl; liquids are poured into the bowl; mixing and cooking act on the bowl's contents.
RECIPES: dict[str, list[tuple[str, str]]] = {
    "fruit salad": [("cut", "apple"), ("add", "apple"), ("cut", "banana"), ("add", "banana"), ("pour", "cream"),
                    ("mix", "")],
    "tomato salad": [("add", "lettuce"), ("cut", "tomato"), ("add", "tomato"), ("cut", "cucumber"),
                     ("add", "cucumber"), ("pour", "olive oil"), ("mix", "")],
    "vegetable soup": [("pour", "water"), ("cut", "carrot"), ("add", "carrot"), ("cut", "onion"), ("add", "onion"),
                       ("cook", "")],
    "pancake batter": [("add", "flour"), ("add", "sugar"), ("add", "egg"), ("pour", "milk"), ("mix", ""),
                       ("cook", "")],
    "mushroom sauce": [("cut", "mushroom"), ("add", "mushroom"), ("pour", "cream"), ("add", "cheese"), ("mix", ""),
                       ("cook", "")],
    "tomato soup": [("cut", "tomato"), ("add", "tomato"), ("cut", "onion"), ("add", "onion"), ("pour", "broth"),
                    ("cook", "")],
}

STEP_TEXT = {
    "cut": "cut the {thing} on the board", "add": "add the {thing} to the bowl", "pour": "pour {thing} into the bowl",
    "mix": "mix everything in the bowl", "cook": "cook the contents of the bowl",
}

CHANGE_DONE = 0.7  # a step's change completes at this fraction of the step; the rest of the step is still


@dataclass(frozen=True)
class Step:
    action: str
    thing: str
    start: float
    end: float

    @property
    def text(self) -> str:
        return STEP_TEXT[self.action].format(thing=self.thing)

    def progress(self, t: float) -> float:
        return float(np.clip((t - self.start) / ((self.end - self.start) * CHANGE_DONE), 0.0, 1.0))


@dataclass
class ProcessScene:
    """A recipe on a kitchen counter seen from above: the bowl on the left, the cutting board on the right."""

    size: tuple[int, int]
    recipe: str
    steps: list[Step]
    fps: int
    seed: int

    @classmethod
    def make(cls, recipe: str, steps: list[tuple[str, str]], step_seconds: float, size: tuple[int, int],
             fps: int, seed: int) -> ProcessScene:
        timed = [Step(a, th, round(k * step_seconds, 6), round((k + 1) * step_seconds, 6))
                 for k, (a, th) in enumerate(steps)]
        return cls(size=size, recipe=recipe, steps=timed, fps=fps, seed=seed)

    @property
    def duration(self) -> float:
        return self.steps[-1].end

    # Layout (image coordinates) ----------------------------------------------------------------------------

    @property
    def bowl(self) -> tuple[float, float, float]:
        w, h = self.size
        return 0.34 * w, 0.56 * h, 0.36 * h  # centre and radius

    @property
    def board(self) -> Box:
        w, h = self.size
        return 0.66 * w, 0.26 * h, 0.96 * w, 0.86 * h

    @cached_property
    def _slots(self) -> dict[str, tuple[float, float]]:
        """Where each item lands in the bowl (and lies on the board before it is added)."""
        rng = np.random.default_rng(self.seed)
        bx, by, br = self.bowl
        items = [s.thing for s in self.steps if s.action == "add"]
        angles = rng.uniform(0, 2 * math.pi) + np.arange(len(items)) * 2 * math.pi / max(1, len(items))
        slots = {name: (bx + 0.5 * br * math.cos(a), by + 0.5 * br * math.sin(a)) for name, a in zip(items, angles)}
        x0, y0, x1, y1 = self.board
        cut = [s.thing for s in self.steps if s.action == "cut"]
        for k, name in enumerate(cut):
            slots[f"board:{name}"] = ((x0 + x1) / 2, y0 + (k + 0.5) * (y1 - y0) / max(1, len(cut)))
        return slots

    # State ---------------------------------------------------------------------------------------------------

    def _step(self, action: str, thing: str = "") -> Step | None:
        return next((s for s in self.steps if s.action == action and (not thing or s.thing == thing)), None)

    def _done(self, step: Step | None, t: float) -> float:
        return step.progress(t) if step is not None else 0.0

    def item_box(self, name: str, t: float) -> Box | None:
        """The box of an item (whole or in slices) at time t, or None while it is not in view."""
        center, radius = self._item_place(name, t)
        if center is None:
            return None
        x, y = center
        slices = self._done(self._step("cut", name), t) >= 1.0
        spread = 1.35 if slices else 1.0
        return x - radius * spread, y - radius, x + radius * spread, y + radius

    def _item_place(self, name: str, t: float) -> tuple[tuple[float, float] | None, float]:
        ing = INGREDIENTS[name]
        radius = ing.radius * self.size[1]
        add = self._step("add", name)
        on_board = self._step("cut", name) is not None
        start = self._slots[f"board:{name}"] if on_board else (self._slots[name][0], -radius * 1.5)
        if add is None:
            return (start if on_board else None), radius
        p = self._done(add, t)
        if p <= 0:
            return (start if on_board else None), radius
        end = self._slots[name]
        mix = self._done(self._step("mix"), t)
        if mix > 0:  # mixing swirls the bowl's contents half a turn
            bx, by, _ = self.bowl
            a = math.pi * mix
            dx, dy = end[0] - bx, end[1] - by
            end = (bx + dx * math.cos(a) - dy * math.sin(a), by + dx * math.sin(a) + dy * math.cos(a))
        ease = p * p * (3 - 2 * p)
        return (start[0] + (end[0] - start[0]) * ease, start[1] + (end[1] - start[1]) * ease), radius

    def focus_box(self, step: Step, t: float) -> Box:
        """The box of what a step acts on, as it looks at time t: an item's from its visible pixels (the knife or
        another item over it is left out); a liquid's or the bowl's from its disc, whose rim nothing covers."""
        bx, by, br = self.bowl
        if step.action in ("cut", "add"):
            box = mask_box(self.item_mask(step.thing, t))
            if box is not None:
                return box
        if step.action == "pour":
            r = br * 0.86 * max(0.3, self._done(step, t))
            return bx - r, by - r, bx + r, by + r
        return bx - br, by - br, bx + br, by + br

    # Drawing -------------------------------------------------------------------------------------------------

    @cached_property
    def _counter(self) -> dict[tuple[int, int], Image.Image]:
        return {}

    def _counter_image(self, video: tuple[int, int]) -> Image.Image:
        if video not in self._counter:
            rng = np.random.default_rng(self.seed + 1)
            base = np.array(rng.choice([[186, 140, 96], [170, 126, 84], [200, 170, 130], [150, 150, 150]]))
            ys = np.arange(video[1])[:, None]
            grain = 10 * np.sin(ys * rng.uniform(0.15, 0.35) + rng.uniform(0, 6)) + rng.normal(0, 3, (video[1], 1))
            column = (base[None, :] + grain).clip(0, 255).astype(np.uint8)  # wood grain runs across the counter
            image = Image.fromarray(np.repeat(column[:, None, :], video[0], axis=1))
            canvas = _Canvas(image)
            canvas.draw.rounded_rectangle(canvas.box(self.board), radius=6, fill=(226, 196, 150),
                                          outline=(150, 110, 70))
            bx, by, br = self.bowl
            # A dark blue glazed bowl: pale liquids and ingredients stand out against it.
            canvas.draw.ellipse(canvas.box((bx - br, by - br, bx + br, by + br)), fill=(66, 84, 124),
                                outline=(40, 50, 80), width=2)
            ri = br * 0.88
            canvas.draw.ellipse(canvas.box((bx - ri, by - ri, bx + ri, by + ri)), fill=(86, 108, 152))
            self._counter[video] = image
        return self._counter[video]

    def item_mask(self, name: str, t: float) -> np.ndarray:
        """The pixels of the frame at `t` (image size) that show the item `name` (whole or sliced)."""
        video = video_size(self.size)
        w, h = self.size
        return visible_mask(self.render(t, video), self.render(t, video, omit=name))[:h, :w]

    def state(self, t: float) -> dict[str, object]:
        """What the counter shows at `t`: items on the board and in the bowl (each with whether it is sliced),
        the liquids poured, whether it is mixed and whether it is cooking."""
        def done(step: Step) -> bool:
            return self._done(step, t) >= 1.0

        board = [(s.thing, done(s)) for s in self.steps if s.action == "cut"
                 and not (self._step("add", s.thing) and self._done(self._step("add", s.thing), t) > 0)]
        return {"board": board,
                "bowl": [(s.thing, self._step("cut", s.thing) is not None) for s in self.steps
                         if s.action == "add" and done(s)],
                "liquids": [s.thing for s in self.steps if s.action == "pour" and done(s)],
                "mixed": any(s.action == "mix" and done(s) for s in self.steps),
                "cooking": any(s.action == "cook" and done(s) for s in self.steps)}

    def render(self, t: float, video: tuple[int, int], omit: str | None = None) -> np.ndarray:
        """The frame at `t`, `video` pixels; the item named `omit` left out."""
        frame = self._counter_image(video).copy()
        canvas = _Canvas(frame)
        bx, by, br = self.bowl
        mix = self._done(self._step("mix"), t)
        cook = self._done(self._step("cook"), t)
        in_bowl = [s.thing for s in self.steps if s.action == "add" and self._done(s, t) >= 1.0]
        for step in self.steps:
            if step.action == "pour" and self._done(step, t) > 0:
                r = br * 0.86 * self._done(step, t)
                liquid = _cooked(LIQUIDS[step.thing], cook)
                canvas.draw.ellipse(canvas.box((bx - r, by - r, bx + r, by + r)), fill=liquid)
        if mix > 0 and in_bowl:  # the mixture takes over the bowl as mixing goes on
            colors = [INGREDIENTS[n].inside for n in in_bowl] + [LIQUIDS[s.thing] for s in self.steps
                                                                  if s.action == "pour" and self._done(s, t) >= 1]
            blend = tuple(int(v) for v in np.mean(colors, axis=0))
            r = br * 0.86 * mix
            canvas.draw.ellipse(canvas.box((bx - r, by - r, bx + r, by + r)), fill=_cooked(blend, cook))
        for step in self.steps:  # each item once: through its "add" step, or its "cut" when it stays on the board
            if step.thing != omit and (step.action == "add" or (step.action == "cut" and
                                                                 self._step("add", step.thing) is None)):
                self._draw_item(canvas, step.thing, t, shrink=mix * 0.6, cook=cook)
        cut = next((s for s in self.steps
                    if s.action == "cut" and 0.05 < (t - s.start) / (s.end - s.start) < 0.8), None)
        if cut is not None:  # the knife over the item being cut
            x0, y0, x1, y1 = self.item_box(cut.thing, t) or self.focus_box(cut, t)
            p = (t - cut.start) / (cut.end - cut.start)
            kx = x0 + (x1 - x0) * p
            canvas.draw.rectangle(canvas.box((kx - 2, y0 - 14, kx + 2, y1 + 4)), fill=(196, 200, 206))
            canvas.draw.rectangle(canvas.box((kx - 4, y0 - 30, kx + 4, y0 - 14)), fill=(60, 40, 30))
        if cook > 0:  # steam rises once the heat is on
            for k in range(3):
                x = bx + (k - 1) * br * 0.4
                wave = [(x + 5 * math.sin(j * 1.3 + t * 6 + k), by - br * (0.2 + 0.12 * j)) for j in range(6)]
                canvas.draw.line([canvas.xy(*p) for p in wave], fill=(250, 250, 250), width=2)
        return np.asarray(frame)

    def _draw_item(self, canvas: _Canvas, name: str, t: float, shrink: float, cook: float) -> None:
        center, radius = self._item_place(name, t)
        if center is None:
            return
        ing = INGREDIENTS[name]
        in_bowl = self._done(self._step("add", name), t) >= 1.0
        r = radius * (1 - shrink) if in_bowl else radius
        if r < 1:
            return
        x, y = center
        color = _cooked(ing.color, cook) if in_bowl else ing.color
        inside = _cooked(ing.inside, cook) if in_bowl else ing.inside
        if self._done(self._step("cut", name), t) >= 1.0:  # slices side by side, cut faces up
            for k in (-1, 0, 1):
                sx = x + k * r * 0.9
                canvas.draw.ellipse(canvas.box((sx - r * 0.45, y - r, sx + r * 0.45, y + r)), fill=inside,
                                    outline=color, width=2)
            return
        if ing.look == "rod":
            canvas.draw.rounded_rectangle(canvas.box((x - r * 1.3, y - r * 0.45, x + r * 1.3, y + r * 0.45)),
                                          radius=4, fill=color, outline=tuple(int(c * 0.6) for c in color))
        elif ing.look == "yolk":
            canvas.draw.ellipse(canvas.box((x - r, y - r * 0.8, x + r, y + r * 0.8)), fill=color)
            canvas.draw.ellipse(canvas.box((x - r * 0.45, y - r * 0.45, x + r * 0.45, y + r * 0.45)), fill=inside)
        elif ing.look == "leaf":
            canvas.draw.polygon([canvas.xy(px, py) for px, py in shape_points("hexagon", x, y, r)], fill=color,
                                outline=(70, 130, 50))
            canvas.draw.line([canvas.xy(x - r * 0.8, y), canvas.xy(x + r * 0.8, y)], fill=(80, 140, 60), width=1)
        elif ing.look == "pile":
            canvas.draw.ellipse(canvas.box((x - r, y - r * 0.85, x + r, y + r * 0.85)), fill=color,
                                outline=tuple(int(c * 0.8) for c in color))
            canvas.draw.ellipse(canvas.box((x - r * 0.5, y - r * 0.4, x + r * 0.4, y + r * 0.35)),
                                fill=tuple(min(255, int(c * 1.04) + 4) for c in color))
        else:
            canvas.draw.ellipse(canvas.box((x - r, y - r, x + r, y + r)), fill=color,
                                outline=tuple(int(c * 0.6) for c in color))
            canvas.draw.ellipse(canvas.box((x - r * 0.2, y - r * 1.05, x + r * 0.2, y - r * 0.75)), fill=(60, 120, 40))


def _cooked(color: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    """A colour browned by cooking (amount 0..1)."""
    brown = np.array([120, 70, 30])
    return tuple(int(v) for v in np.array(color) * (1 - 0.6 * amount) + brown * 0.6 * amount)
