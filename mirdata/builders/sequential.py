"""The sequential category: questions whose answer depends on time, asked over frames sampled from videos.

By default every record is built from a procedural H.264 clip (mirdata.generators.video), rendered at the image
size, whose facts are known by construction; its frames are sampled with decord (mirdata.generators.frames), as
they would be from a real video. Every box comes from the named object's visible pixels in that frame, and a
record is emitted only when what a viewer measures from those boxes gives its answer. With `--source` (a video
file or a folder), `image_puzzle` cuts real frames, and `cooking_process` uses real videos only with step
annotations (`--steps-csv`); `speed_comparison` and `motion_detection` need object positions, which an
unannotated video does not give, so they stay procedural.

Each task's spec (mirdata/tasks/<task>.yaml) defines it: what is asked, the thresholds, and why a viewer can
answer it (the original release's thresholds are not public; these are reasoned choices), with its question
families and phrasings. A task's `sample` draws the facts (`_draw`; for these tasks that means rendering the clip
and measuring the shapes' visible pixels in it, since the facts are what a viewer measures), solves the answer
through its family's rule, and makes the options and question; `reason` writes the stages from the facts alone.
All option lists come from the option engine (mirdata.builders.options): orderings against random permutations,
"none" options right at their share.
"""

from __future__ import annotations

import csv
import itertools
import math
import zlib
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypedDict

import numpy as np
from PIL import Image, ImageOps

from mirdata.builders.base import (BuildOptions, Reasoning, Regions, Sample, Task, TaskConfig, cite, conclude, join_and,
                                   pick)
from mirdata.builders.families import AnswerRule, Constraint, Family, QuestionFamilies
from mirdata.builders.options import Slot, ordering_distractors, pick_balanced, place_answer, special_is_answer
from mirdata.errors import MirdataError
from mirdata.generators.frames import FrameSampler, VideoInfo, find_videos, probe_videos
from mirdata.generators.video import (RECIPES, MotionScene, Occluder, Post, ProcessScene, Thing, Trajectory, mask_box,
                                      open_clip, random_looks, to_image)
from mirdata.registry import TaskSpec
from mirdata.schema.record import Region

FPS = 10
GENERATOR = "mirdata.generators.video (PyAV H.264) + mirdata.generators.frames (decord)"
REAL_GENERATOR = "mirdata.generators.frames (decord) on --source videos"


# -- small shared helpers --------------------------------------------------------------------------------------

def _seconds(t: float) -> str:
    """A time as the facts hold it: '1.2 s', '0.0 s', '23.13 s'."""
    return f"{t:.1f} s" if round(t, 1) == t else f"{t:g} s"


def _where(x: float, y: float, size: tuple[int, int]) -> str:
    """'in the upper left', 'in the centre', 'on the left side', ... for a point in an image."""
    w, h = size
    col = "left" if x < w / 3 else "right" if x > 2 * w / 3 else ""
    row = "upper" if y < h / 3 else "lower" if y > 2 * h / 3 else ""
    if not row and not col:
        return "in the centre"
    if not row:
        return f"on the {col} side"
    if not col:
        return f"in the {row} middle"
    return f"in the {row} {col}"


DIRECTIONS = ["right", "down and to the right", "down", "down and to the left", "left", "up and to the left",
              "up", "up and to the right"]  # k * 45 degrees in image coordinates (y grows downwards)


def _order_text(order: list[int]) -> str:
    """[2, 4, 1, 3] -> 'image 2, image 4, image 1, image 3'."""
    return ", ".join(f"image {k}" for k in order)


def _frames_at(scene: MotionScene | ProcessScene, times: list[float],
               size: tuple[int, int]) -> tuple[list[Image.Image], list[int]]:
    """The frames of `scene`'s clip shown at `times` (encoded, then sampled with decord), and their indices."""
    with open_clip(scene) as sampler:
        frames = sampler.read(sampler.at_times(times))
    return [to_image(f, size) for f in frames.images], frames.indices


def _track_regions(objects: list[dict[str, Any]], size: tuple[int, int]) -> Regions:
    """A region for each tracked object in each frame where it has a box; its id goes into the track."""
    regions = Regions()
    for o in objects:
        for p in o["track"]:
            p["region"] = regions.add_pixels(p["image"], p["box"], o["name"], size) if p["box"] else None
    return regions


def _by_id(regions: list[Region]) -> dict[str, Region]:
    return {r.id: r for r in regions}


def _stages(summary: str, captions: list[str], t2r: list[str], r2r: list[str], why: str, answer: str) -> Reasoning:
    """The five stages, one line per grounded phrase and per cross-image link, concluding from `why`."""
    return Reasoning(summary=summary, caption=captions, text2region="\n".join(t2r),
                     region2region="\n".join(r2r), conclusion=conclude(why, answer))


def _fit(frame: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A real video frame scaled and centre-cropped to the image size (aspect kept)."""
    return ImageOps.fit(Image.fromarray(frame), tuple(size), Image.Resampling.BICUBIC)


# -- real sources ------------------------------------------------------------------------------------------------

_PROBED: dict[tuple[str, int, int], VideoInfo | str] = {}  # per process: (path, size, mtime) -> info or reason


def usable_videos(task: SequentialTask) -> list[VideoInfo]:
    """The videos of `--source` that decode, in path order; the others go to `task.skipped` (or, with
    `--on-error fail`, the first one stops the build). Probed once per process."""
    paths = find_videos(task.config.source)
    keys = {}
    for p in paths:
        st = p.stat()
        keys[str(p)] = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    todo = [p for p in paths if keys[str(p)] not in _PROBED]
    if todo:
        for path, result in probe_videos(todo).items():
            _PROBED[keys[path]] = result
    usable = []
    for p in paths:
        result = _PROBED[keys[str(p)]]
        if isinstance(result, str):
            if task.config.on_error == "fail":
                raise MirdataError(f"{p}: {result}")
            task.skipped.append({"file": str(p), "reason": result})
        else:
            usable.append(result)
    if not usable:
        raise MirdataError(f"{task.config.source}: none of its {len(paths)} video file(s) can be decoded")
    return usable


@dataclass(frozen=True)
class AnnotatedStep:
    start: float
    end: float
    text: str


def read_steps_csv(path: Path, videos: list[VideoInfo], source: Path) -> dict[str, list[AnnotatedStep]]:
    """Step annotations (columns video, start_s, end_s, step; one row per step, YouCook2/COIN style) for the
    given videos, keyed by video path. A row's video matches a file by name, stem or path under `source`."""
    names: dict[str, str] = {}
    root = source if source.is_dir() else source.parent
    for info in videos:
        p = Path(info.path)
        for key in (p.name, p.stem, p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name):
            names.setdefault(key, info.path)
    steps: dict[str, list[AnnotatedStep]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"video", "start_s", "end_s", "step"} - set(reader.fieldnames or [])
            if missing:
                raise MirdataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; the header must be "
                                   "video,start_s,end_s,step")
            for line, row in enumerate(reader, start=2):
                try:
                    start, end = float(row["start_s"]), float(row["end_s"])
                except (TypeError, ValueError):
                    raise MirdataError(f"{path}:{line}: start_s and end_s must be numbers, not "
                                       f"{row['start_s']!r}, {row['end_s']!r}") from None
                text = (row["step"] or "").strip()
                if not text or not math.isfinite(start) or not math.isfinite(end) or not 0 <= start < end:
                    raise MirdataError(f"{path}:{line}: a step needs a text and 0 <= start_s < end_s")
                video = names.get((row["video"] or "").strip())
                if video is not None:
                    steps.setdefault(video, []).append(AnnotatedStep(start, end, text))
    except OSError as e:
        raise MirdataError(f"{path}: cannot read the steps CSV ({e.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise MirdataError(f"{path}: not a readable CSV ({e})") from None
    return {video: sorted(s, key=lambda a: a.start) for video, s in steps.items()}


# -- the tasks ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SequentialConfig(TaskConfig):
    """The build options the sequential tasks read."""

    source: Path | None = None  # real videos instead of the procedural default
    steps_csv: Path | None = None  # step annotations (video, start_s, end_s, step) for cooking_process


class SequentialTask(Task):
    """What the sequential tasks share: their config, the `--source` videos, and the way from facts to an
    answer, its wrong options and the question."""

    Config: ClassVar[type[TaskConfig]] = SequentialConfig
    uses_source: ClassVar[bool] = False  # builds from --source videos when given

    def __init__(self, spec: TaskSpec, options: BuildOptions):
        super().__init__(spec, options)
        self.size = tuple(self.config.image_size)
        self.videos: list[VideoInfo] = []
        self._check_config()
        if self.uses_source and self.config.source is not None:
            self.videos = usable_videos(self)

    def _check_config(self) -> None:
        """Refuse options that do not go together, before any video is read."""
        if self.config.steps_csv is not None and self.config.source is None:
            raise MirdataError("--steps-csv needs --source (the folder of the annotated videos)")

    def answer(self, family: Family, facts: Any, rng: np.random.Generator) -> tuple[str, list[str]] | None:
        """The answer (kept in the facts) and the wrong options, or None when the facts break one of the family's
        constraints (the draw is refused)."""
        if self.families.degenerate(family, facts):
            return None
        correct = facts["answer_text"] = self.families.solve(family, facts)
        return correct, self._distractors(family.name, facts, correct, rng)

    @staticmethod
    @abstractmethod
    def _distractors(family: str, facts: Any, correct: str, rng: np.random.Generator) -> list[str]:
        """The wrong options of a question of `family`, drawn by `rng`."""

    def question(self, family: Family, rng: np.random.Generator, intros: list[str], images: list[dict[str, Any]],
                 **fields: Any) -> str:
        """The question: an intro drawn from `intros`, a line per image (one labelling for all, filled with that
        image's `images` fields) and one of the family's texts, each filled with `fields`."""
        line = pick(rng, self.families.phrase("image_lines"))
        lines = [line.format(**image) for image in images]
        intro = pick(rng, intros).format(**fields)
        return "\n".join([intro, *lines, self.families.text(family, rng, **fields)])

    @classmethod
    def phrases(cls) -> QuestionFamilies:
        """The task's families and phrase tables, for `reason` (a classmethod, with no spec of its own)."""
        return cls.question_families(cls.registered_spec())


class ClipTask(SequentialTask):
    """A task asked over the tracked shapes of one procedural clip."""

    def from_clip(self, slot: Slot, rng: np.random.Generator, label: str) -> tuple | None:
        """The family (balanced, hashed by `label`), the facts `_draw` makes, the answer and wrong options, the
        frames and the tracked shapes' regions; None when the draw is refused."""
        family = self.families.choose(slot, label)
        drawn = self._draw(slot, family.name, rng)
        if drawn is None:
            return None
        facts, scene = drawn
        answered = self.answer(family, facts, rng)
        if answered is None:
            return None
        images, facts["frame_indices"] = _frames_at(scene, facts["times_s"], self.size)
        regions = _track_regions([*facts["objects"], *facts.get("posts", [])], self.size)
        return family, facts, answered, images, regions

    @abstractmethod
    def _draw(self, slot: Slot, family: str, rng: np.random.Generator) -> tuple[Any, MotionScene] | None:
        """The facts and the scene, or None when this draw is refused."""


# speed_comparison ------------------------------------------------------------------------------------------------

# The speed ratio between neighbours in the ranking, by difficulty: what a viewer must tell apart.
SPEED_MARGINS = {"easy": (1.6, 2.0), "medium": (1.38, 1.6), "hard": (1.22, 1.38)}
# Nominal ratios; the true one lies within RATIO_BAND of its nominal. One digit apart in their texts, so no
# option is "central" to the others; neighbours at least 29 % apart.
RATIOS = [1.5, 2.5, 3.5, 4.5]
RATIO_BAND = 0.05
MIN_VISIBLE = 0.97  # a shape is measured only in frames that show at least this fraction of it
MIN_DISPLACEMENT = 0.05  # of the image width: the slowest shape's travel over the shown frames


def _box_center(box: list[int] | tuple[int, ...]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _speed_values(rng: np.random.Generator, n: int, family: str, difficulty: str, width: int, span: float,
                  ratio: float) -> list[float] | None:
    """`n` ground speeds (px/s), fastest first. Neighbours differ by the difficulty's margin; for "ratio" the
    first two are `ratio` apart (within RATIO_BAND) and the others anywhere between. None when the fastest
    would leave the frame over the shown span."""
    low = MIN_DISPLACEMENT * width / span
    if family == "ratio":
        slow = low * rng.uniform(1.0, 2.0)
        fast = slow * ratio * rng.uniform(1 - RATIO_BAND, 1 + RATIO_BAND)
        others = [float(v) for v in rng.uniform(low, fast, n - 2)]
        speeds = [fast, slow, *others]
    else:
        speeds = [low * rng.uniform(1.0, 1.4)]
        for _ in range(n - 1):
            speeds.append(speeds[-1] * rng.uniform(*SPEED_MARGINS[difficulty]))
        speeds.reverse()
    return speeds if speeds[0] * span <= 0.62 * width else None


def _ratio_text(ratio: float) -> str:
    return f"about {ratio:g} times as fast"


def _boxes_give_the_true_ranking(f: SpeedFacts) -> bool:
    """The ranking measured from the boxes is the ranking of the true speeds (listed fastest first, so a tie
    that rounding makes keeps the true order)."""
    true = f["true_speeds_px_s"]
    return f["ranking"] == sorted(true, key=lambda name: -true[name])


def _boxes_give_the_nominal_ratio(f: SpeedFacts) -> bool:
    """The ratio measured from the boxes is clearly nearest its option."""
    fast, slow = f["ratio_pair"]
    speed = {o["name"]: o["speed_px_s"] for o in f["objects"]}
    return abs(speed[fast] / speed[slow] / f["nominal_ratio"] - 1) <= RATIO_BAND + 0.03


class ClipFacts(TypedDict, total=False):
    """The facts every question over a procedural clip's tracked shapes keeps."""

    source: str
    variant: str  # the question family
    difficulty: str
    fps: int
    times_s: list[float]  # when each shown frame was taken
    image_size: list[int]
    objects: list[dict[str, Any]]  # per shape: its name and track (a box and region per frame), and what it did
    answer_text: str
    frame_indices: list[int]


class SpeedFacts(ClipFacts, total=False):
    posts: list[dict[str, Any]]
    camera_shift_px: list[float]  # since frame 1, read off the post
    ranking: list[str]  # fastest first, by the measured speeds
    true_speeds_px_s: dict[str, float]
    camera: dict[str, Any]
    occluders: list[dict[str, Any]]
    margin: float
    ratio_pair: list[str]  # ratio: the faster and the slower shape
    ratio: float  # ratio: as measured from the boxes
    nominal_ratio: float


class SpeedComparison(ClipTask):
    """How fast shapes move over the ground, from timed frames (defined in mirdata/tasks/speed_comparison.yaml)."""

    Facts = SpeedFacts
    answer_rules: ClassVar[dict[str, AnswerRule]] = {
        "fastest": lambda f: f["ranking"][0],
        "slowest": lambda f: f["ranking"][-1],
        "ranking": lambda f: ", ".join(f["ranking"]),
        "nominal_ratio": lambda f: _ratio_text(f["nominal_ratio"]),
    }
    constraints: ClassVar[dict[str, Constraint]] = {
        "boxes_give_the_true_ranking": _boxes_give_the_true_ranking,
        "boxes_give_the_nominal_ratio": _boxes_give_the_nominal_ratio,
    }

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        made = self.from_clip(slot, rng, "speed question")
        if made is None:
            return None  # among others: the boxes would give another answer than the true speeds
        family, facts, answered, images, regions = made
        options, answer = place_answer(*answered, slot, rng)
        intros = self.families.phrase("intros")["pan" if facts["camera"]["pans"] else "still"]
        lines = [{"n": j + 1, "t": _seconds(t)} for j, t in enumerate(facts["times_s"])]
        question = self.question(family, rng, intros, lines, **dict(zip(("fast", "slow"), facts.get("ratio_pair", ()))))
        return Sample(question=question, options=options, answer=answer, images=images, regions=regions.items,
                      facts=facts, generator=GENERATOR)

    def _draw(self, slot: Slot, family: str, rng: np.random.Generator) -> tuple[SpeedFacts, MotionScene] | None:
        """The scene and its facts: the speeds drawn, then each shape measured from its visible pixels."""
        w = self.size[0]
        difficulty = pick_balanced(slot, list(SPEED_MARGINS), "speed difficulty")
        ratio = float(pick_balanced(slot, RATIOS, "speed ratio"))
        n = int(rng.integers(3, 5 if difficulty == "easy" else 6))
        k_images = int(rng.integers(5, 8))
        gap = float(pick(rng, [g for g in (0.3, 0.4, 0.5) if (k_images - 1) * g <= 2.6]))
        first = round(float(rng.uniform(0, 2.8 - (k_images - 1) * gap)), 1)
        times = [round(first + j * gap, 1) for j in range(k_images)]
        span = times[-1] - times[0]
        speeds = _speed_values(rng, n, family, difficulty, w, span, ratio)
        if speeds is None:
            return None
        scene = self._scene(rng, speeds, times)
        if scene is None:
            return None
        measured = self._measure(scene, times)
        if measured is None:
            return None
        objects, posts, shifts = measured
        names = [t.name for t in scene.things]  # things[k] has speeds[k]: names[0] is the fastest
        by_speed = sorted(objects, key=lambda o: -o["speed_px_s"])
        facts: SpeedFacts = {
            "source": "procedural", "variant": family, "difficulty": difficulty, "fps": FPS, "times_s": times,
            "image_size": list(self.size), "objects": objects, "posts": posts, "camera_shift_px": shifts,
            "ranking": [o["name"] for o in by_speed],
            "true_speeds_px_s": {k: round(v, 1) for k, v in zip(names, speeds)},
            "camera": {"pans": scene.camera.points[0] != scene.camera.points[-1],
                       "velocity_px_s": round((scene.camera.points[-1][0] - scene.camera.points[0][0])
                                             / scene.duration, 1)},
            "occluders": [{"label": o.label, "x": [round(o.box[0], 1), round(o.box[2], 1)]} for o in scene.occluders],
        }
        if family == "ratio":
            fast, slow = names[0], names[1]
            by_name = {o["name"]: o for o in objects}
            measured_ratio = by_name[fast]["speed_px_s"] / by_name[slow]["speed_px_s"]
            facts.update(ratio_pair=[fast, slow], ratio=round(measured_ratio, 2), nominal_ratio=ratio,
                         margin=round(min(abs(measured_ratio - r) for r in RATIOS if r != ratio) / ratio, 2))
        else:
            facts["margin"] = round(min(a["speed_px_s"] / b["speed_px_s"] for a, b in itertools.pairwise(by_speed)), 2)
        return facts, scene

    @staticmethod
    def _distractors(family: str, facts: SpeedFacts, correct: str, rng: np.random.Generator) -> list[str]:
        ranked = facts["ranking"]
        if family in ("fastest", "slowest"):
            return [x for x in ranked if x != correct]
        if family == "ranking":
            return [", ".join(p) for p in ordering_distractors(ranked, rng, min(3, math.factorial(len(ranked)) - 1))]
        return [_ratio_text(r) for r in RATIOS if r != facts["nominal_ratio"]]

    def _scene(self, rng: np.random.Generator, speeds: list[float], times: list[float]) -> MotionScene | None:
        """Shapes at `speeds` (px/s over the ground), one per horizontal band, fully in view at every shown
        time; striped posts; maybe a pillar and a camera pan."""
        w, h = self.size
        n = len(speeds)
        duration = 3.0
        pans = bool(rng.random() < 0.4)
        cam_v = float(rng.choice([-1, 1]) * rng.uniform(0.03, 0.07) * w) if pans else 0.0
        margin = abs(cam_v) * duration
        world = (int(math.ceil(w + margin)) + 2, h)
        cam_start = margin if cam_v < 0 else 0.0
        top, bottom = 0.12 * h, 0.96 * h
        band = (bottom - top) / n
        looks = random_looks(rng, n)
        t0, t1 = times[0], times[-1]
        things = []
        for k in rng.permutation(n):  # band order unrelated to speed order
            color, shape = looks[len(things)]
            speed = speeds[len(things)]
            radius = float(min(0.05 * h, band * 0.36) * rng.uniform(0.85, 1.0))
            slope = rng.uniform(-1, 1) * min(0.25, 0.3 * (band - 2 * radius) / (speed * duration + 1e-9))
            angle = math.atan(slope) + (math.pi if rng.random() < 0.5 else 0.0)
            vx, vy = speed * math.cos(angle), speed * math.sin(angle)
            sx_v = vx - cam_v  # velocity in the frame
            lo, hi = radius + 3, w - radius - 3
            # screen x at t0 such that it stays within [lo, hi] until t1
            span = (lo, hi - sx_v * (t1 - t0)) if sx_v >= 0 else (lo - sx_v * (t1 - t0), hi)
            if span[0] >= span[1]:
                return None
            screen_x = float(rng.uniform(*span))
            cy = top + (k + 0.5) * band - vy * (t0 + t1) / 2
            cam_x0 = cam_start + cam_v * t0
            start = (screen_x + cam_x0 - vx * t0, cy)
            things.append(Thing(color, shape, radius, Trajectory.line(start, (vx, vy), duration)))
        spacing = 0.55 * w
        first_post = float(rng.uniform(0.04, 0.04 + spacing))
        post_w = max(4.0, round(0.012 * w))
        posts = [Post(round(x), round(0.16 * h), round(0.95 * h), post_w)
                 for x in np.arange(first_post, world[0] - 2, spacing)]
        occluders = []
        if rng.random() < 0.5:
            ox = rng.uniform(0.2, 0.75) * world[0]
            occluders.append(Occluder("grey pillar", (ox, 0.0, ox + 0.06 * w, float(h))))
        camera = Trajectory.line((cam_start, 0.0), (cam_v, 0.0), duration)
        return MotionScene(self.size, duration, FPS, things, int(rng.integers(1 << 31)), occluders, camera, world,
                           posts)

    @staticmethod
    def _measure(scene: MotionScene, times: list[float]) -> tuple[list[dict], list[dict], list[float]] | None:
        """Each shape's speed as a viewer measures it from the boxes of its visible pixels: the shift of the box
        centre between its first and last fully visible frames, plus the camera's shift read off the post that
        is in view in every frame. None when a shape is whole in fewer than three frames or no post stays in
        view."""
        posts = []
        for post in scene.posts:
            track = []
            for j, t in enumerate(times):
                obs = scene.observe(post, t)
                track.append({"image": j, "box": list(obs.box) if obs.box and obs.visible >= 0.5 else None})
            if all(p["box"] for p in track):
                posts.append({"name": post.label, "track": track})
        if not posts:
            return None
        posts = posts[:1]  # the reference
        post_x = [_box_center(p["box"])[0] for p in posts[0]["track"]]
        shifts = [round(post_x[0] - x, 1) for x in post_x]  # camera shift since frame 1 (a post moves the other way)
        objects = []
        for thing in scene.things:
            track = []
            for j, t in enumerate(times):
                obs = scene.observe(thing, t)
                track.append({"image": j, "visible": round(obs.visible, 2),
                              "box": list(obs.box) if obs.box and obs.visible >= 0.3 else None})
            whole = [p for p in track if p["visible"] >= MIN_VISIBLE and p["box"]]
            if len(whole) < 3:
                return None
            a, b = whole[0], whole[-1]
            (ax, ay), (bx, by) = _box_center(a["box"]), _box_center(b["box"])
            camera = shifts[b["image"]] - shifts[a["image"]]
            dx, dy = bx - ax + camera, by - ay
            elapsed = round(times[b["image"]] - times[a["image"]], 1)
            dist = math.hypot(dx, dy)
            objects.append({"name": thing.name, "track": track, "measured_from": [a["image"], b["image"]],
                            "centers": [[ax, ay], [bx, by]], "camera_px": round(camera, 1),
                            "ground_shift_px": [round(dx, 1), round(dy, 1)], "distance_px": round(dist, 1),
                            "elapsed_s": elapsed, "speed_px_s": round(dist / elapsed, 1)})
        return objects, posts, shifts

    @classmethod
    def reason(cls, facts: SpeedFacts, regions: list[Region], answer: str, config: SequentialConfig,
               rng: np.random.Generator) -> Reasoning:
        f, size, phrases = facts, config.image_size, cls.phrases()
        regions = _by_id(regions)
        objects = f["objects"]
        times = f["times_s"]
        pans = f["camera"]["pans"]
        summary = phrases.phrase("summaries", rng, camera=phrases.phrase("camera")["pan" if pans else "still"],
                                 k=len(times))
        says = phrases.phrase("captions")
        captions = []
        for j in range(len(times)):
            parts = []
            for o in objects:
                p = o["track"][j]
                if p["box"] and p["visible"] >= MIN_VISIBLE:
                    parts.append(says["shape"].format(name=o["name"], where=_where(*_box_center(p["box"]), size)))
                elif p["box"]:
                    parts.append(says["partly_hidden"].format(name=o["name"]))
                elif p["visible"] > 0:
                    parts.append(says["almost_hidden"].format(name=o["name"]))
            hidden = [o["name"] for o in objects if o["track"][j]["visible"] == 0]
            text = says["frame"].format(n=j + 1, shapes=join_and(parts) if parts else says["no_shape"])
            text += says["post"].format(where=_where(*_box_center(f["posts"][0]["track"][j]["box"]), size))
            if f["occluders"]:
                text += says["pillar"]
            if hidden:
                text += says["unseen"].format(names=join_and(hidden))
            captions.append(text + ".")
        t2r = []
        for o in [*objects, *f["posts"]]:
            cites = [cite(regions[p["region"]]) for p in o["track"] if p["region"]]
            t2r.append(f"'the {o['name']}' → " + "; ".join(cites))
        post = f["posts"][0]["track"]
        xs = [_box_center(p["box"])[0] for p in post]
        links = phrases.phrase("links")
        r2r = [links["post_pans" if pans else "post_still"].format(
            xs=", ".join(f"{x:g}" for x in xs), x=xs[0], k=len(xs), first=post[0]["region"], last=post[-1]["region"],
            shift=f["camera_shift_px"][-1])]
        for o in objects:
            a, b = (o["track"][k] for k in o["measured_from"])
            (ax, ay), (bx, by) = o["centers"]
            r2r.append(links["shape"].format(
                a=a["region"], b=b["region"], name=o["name"], ax=ax, ay=ay, bx=bx, by=by, fa=a["image"] + 1,
                fb=b["image"] + 1, camera=links["camera"].format(px=o["camera_px"]) if pans else "",
                distance=o["distance_px"], elapsed=_seconds(o["elapsed_s"]), speed=o["speed_px_s"]))
        ranked = f["ranking"]
        speed_of = {o["name"]: o["speed_px_s"] for o in objects}
        r2r.append(links["ranking"].format(
            ranking=" > ".join(links["ranked"].format(name=n, speed=speed_of[n]) for n in ranked)))
        fields = {"fastest": ranked[0], "slowest": ranked[-1], "fastest_speed": speed_of[ranked[0]],
                  "slowest_speed": speed_of[ranked[-1]], "order": ", ".join(ranked), "answer": f["answer_text"]}
        if "ratio_pair" in f:
            fast, slow = f["ratio_pair"]
            fields.update(fast=fast, slow=slow, fast_speed=speed_of[fast], slow_speed=speed_of[slow], ratio=f["ratio"])
        why = phrases.phrase("conclusions")[f["variant"]].format(**fields)
        return _stages(summary, captions, t2r, r2r, why, answer)


# motion_detection -------------------------------------------------------------------------------------------------

NONE_MOVES = "none of these moves"
NEVER_MOVES = "it never moves"
MOTION_SUMMARIES = [
    ("The question is about what changed between frames. I locate every shape in each frame and compare its "
     "box from frame to frame; since the camera is still, a shape whose box stays the same did not move."),
    ("Since the camera is still, any change of a shape's box between frames is motion. I compare each "
     "shape's box across the {k} frames."),
]
# How far a mover goes, by difficulty, as a fraction of the shorter image side.
MOTION_MOVES = {"easy": (0.12, 0.2), "medium": (0.07, 0.12), "hard": (0.04, 0.07)}


def _interval_text(j: int) -> str:
    """0-based interval j: 'between frame j+1 and frame j+2'."""
    return f"between frame {j + 1} and frame {j + 2}"


def _mover(f: MotionFacts, name: str) -> dict[str, Any]:
    return next(o for o in f["objects"] if o["name"] == name)


def _listed_movers(f: MotionFacts) -> list[str]:
    return [x for x in f["listed"] if x in f["movers"]]


class MotionFacts(ClipFacts, total=False):
    movers: list[str]
    min_move_px: float | None
    listed: list[str]  # which_moved: the shapes the options list
    target: str  # which_interval, direction: the shape the question names


class MotionDetection(ClipTask):
    """What moves, when and where to, in frames from a still camera (defined in
    mirdata/tasks/motion_detection.yaml)."""

    Facts = MotionFacts
    answer_rules: ClassVar[dict[str, AnswerRule]] = {
        "listed_mover": lambda f: next(iter(_listed_movers(f)), NONE_MOVES),
        "target_interval": lambda f: (_interval_text(_mover(f, f["target"])["interval"])
                                      if _mover(f, f["target"])["moves"] else NEVER_MOVES),
        "target_direction": lambda f: _mover(f, f["target"])["direction"],
    }
    constraints: ClassVar[dict[str, Constraint]] = {
        "at_most_one_listed_mover": lambda f: len(_listed_movers(f)) <= 1,
        "target_moves": lambda f: _mover(f, f["target"])["moves"],
    }

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        made = self.from_clip(slot, rng, "motion question")
        if made is None:
            return None
        family, facts, answered, images, regions = made
        options, answer = place_answer(*answered, slot, rng)
        question = self.question(family, rng, self.families.phrase("intros"),
                                 [{"n": j + 1} for j in range(len(images))], target=facts.get("target"))
        return Sample(question=question, options=options, answer=answer, images=images, regions=regions.items,
                      facts=facts, generator=GENERATOR)

    def _draw(self, slot: Slot, family: str, rng: np.random.Generator) -> tuple[MotionFacts, MotionScene] | None:
        """The scene and its facts: the shapes, who moves when and where to, and the shapes the question
        names (none of them moves where "none" is the answer)."""
        h = self.size[1]
        difficulty = pick_balanced(slot, list(MOTION_MOVES), "motion difficulty")
        special = special_is_answer(slot, 4, "motion none") and family != "direction"
        k_images = int(rng.integers(5, 8))
        times = [round(0.1 + 0.5 * j, 1) for j in range(k_images)]
        n = int(rng.integers(4, 7))
        most = n - (3 if family == "which_moved" and special else 2)
        movers = int(rng.integers(0 if special else 1, min(3, most) + 1))
        radius = float(rng.uniform(0.045, 0.06) * h)
        layout = self._layout(rng, n, movers, radius, difficulty, k_images)
        if layout is None:
            return None
        starts, moves = layout  # moves: shape index -> (end, interval, heading)
        looks = random_looks(rng, n)
        things = []
        for k, (color, shape) in enumerate(looks):
            if k in moves:
                end, j, _ = moves[k]
                path = Trajectory.move(starts[k], end, times[j] + 0.1, times[j + 1] - 0.1)
            else:
                path = Trajectory.still(starts[k])
            things.append(Thing(color, shape, radius, path))
        scene = MotionScene(self.size, round(times[-1] + 0.2, 1), FPS, things, int(rng.integers(1 << 31)))
        objects = []
        for k, thing in enumerate(things):
            track = [{"image": j, "box": list(scene.observe(thing, t).box)} for j, t in enumerate(times)]
            o: dict[str, Any] = {"name": thing.name, "moves": k in moves, "track": track}
            if k in moves:
                end, j, heading = moves[k]
                (ax, ay), (bx, by) = _box_center(track[j]["box"]), _box_center(track[j + 1]["box"])
                o.update(interval=j, shift_px=[bx - ax, by - ay], distance_px=round(math.hypot(bx - ax, by - ay), 1),
                         direction=DIRECTIONS[heading])
            objects.append(o)
        facts: MotionFacts = {
            "source": "procedural", "variant": family, "difficulty": difficulty, "fps": FPS, "times_s": times,
            "image_size": list(self.size), "objects": objects, "movers": [o["name"] for o in objects if o["moves"]],
            "min_move_px": min((o["distance_px"] for o in objects if o["moves"]), default=None),
        }
        moving = [o["name"] for o in objects if o["moves"]]
        still = [o["name"] for o in objects if not o["moves"]]
        if family == "which_moved":
            facts["listed"] = ([still[i] for i in rng.permutation(len(still))[:3]] if special else
                               [pick(rng, moving), *[still[i] for i in rng.permutation(len(still))[:2]]])
        else:
            facts["target"] = pick(rng, still) if special else pick(rng, moving)
        return facts, scene

    @staticmethod
    def _distractors(family: str, facts: MotionFacts, correct: str, rng: np.random.Generator) -> list[str]:
        if family == "which_moved":
            return [x for x in [*facts["listed"], NONE_MOVES] if x != correct]
        if family == "which_interval":
            spans = list(range(len(facts["times_s"]) - 1))
            if correct == NEVER_MOVES:
                offered = [spans[i] for i in rng.permutation(len(spans))[:3]]
            else:
                j = _mover(facts, facts["target"])["interval"]
                others = [s for s in spans if s != j]
                offered = [j, *[others[i] for i in rng.permutation(len(others))[:2]]]
            return [x for x in [*map(_interval_text, offered), NEVER_MOVES] if x != correct]
        others = [d for d in DIRECTIONS if d != correct]
        return [others[i] for i in rng.permutation(len(others))[:3]]

    def _layout(self, rng: np.random.Generator, n: int, movers: int, radius: float, difficulty: str,
                k_images: int) -> tuple[list[tuple[float, float]], dict[int, tuple]] | None:
        """Start spots for `n` shapes and, for the first `movers` of a random choice, an end spot, the interval
        of the move and its heading (k * 45 degrees); every spot, start or end, at least 2.6 radii from every
        other one and inside the image."""
        w, h = self.size
        taken: list[tuple[float, float]] = []

        def free(p: tuple[float, float]) -> bool:
            inside = radius * 1.3 < p[0] < w - radius * 1.3 and radius * 1.3 < p[1] < h - radius * 1.3
            return inside and all(math.dist(p, q) >= 2.6 * radius for q in taken)

        starts = []
        for _ in range(n):
            for _attempt in range(100):
                p = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
                if free(p):
                    break
            else:
                return None
            taken.append(p)
            starts.append(p)
        moves = {}
        low, high = MOTION_MOVES[difficulty]
        for k in rng.permutation(n)[:movers].tolist():
            for _attempt in range(50):
                heading = int(rng.integers(8))
                dist = float(rng.uniform(low, high) * min(w, h))
                a = heading * math.pi / 4
                end = (starts[k][0] + dist * math.cos(a), starts[k][1] + dist * math.sin(a))
                taken.remove(starts[k])
                ok = free(end) and all(math.dist(end, q) >= 2.6 * radius for q in taken)
                taken.append(starts[k])
                if ok:
                    break
            else:
                return None
            taken.append(end)
            moves[k] = (end, int(rng.integers(k_images - 1)), heading)
        return starts, moves

    @classmethod
    def reason(cls, facts: MotionFacts, regions: list[Region], answer: str, config: SequentialConfig,
               rng: np.random.Generator) -> Reasoning:
        f, size, phrases = facts, config.image_size, cls.phrases()
        regions = _by_id(regions)
        times = f["times_s"]
        summary = phrases.phrase("summaries", rng, k=len(times))
        says = phrases.phrase("captions")
        first = [says["shape"].format(name=o["name"], where=_where(*_box_center(o["track"][0]["box"]), size))
                 for o in f["objects"]]
        captions = [says["first"].format(shapes=join_and(first))]
        for j in range(1, len(times)):
            moved = [o for o in f["objects"] if o["moves"] and o["interval"] == j - 1]
            if moved:
                now = [says["move"].format(name=o["name"], direction=o["direction"]) for o in moved]
                captions.append(says["moved"].format(n=j + 1, before=j, moves=join_and(now)))
            else:
                captions.append(says["still"].format(n=j + 1, before=j))
        t2r = [f"'the {o['name']}' → " + "; ".join(cite(regions[p["region"]]) for p in o["track"] if p["region"])
               for o in f["objects"]]
        links = phrases.phrase("links")
        r2r = []
        for o in f["objects"]:
            track = o["track"]
            if not o["moves"]:
                r2r.append(links["still"].format(first=track[0]["region"], last=track[-1]["region"], name=o["name"],
                                                 box=", ".join(f"{v:g}" for v in track[0]["box"])))
                continue
            j = o["interval"]
            pa, pb = track[j], track[j + 1]
            (ax, ay), (bx, by) = _box_center(pa["box"]), _box_center(pb["box"])
            dx, dy = o["shift_px"]
            r2r.append(links["moved"].format(a=pa["region"], b=pb["region"], name=o["name"], ax=ax, ay=ay, bx=bx,
                                             by=by, fa=j + 1, fb=j + 2, dx=dx, dy=dy, distance=o["distance_px"],
                                             direction=o["direction"]))
        family = f["variant"]
        fields = {"target": f.get("target"), "answer": f["answer_text"]}
        conclusion = family
        if family == "which_moved":
            moved = _listed_movers(f)
            fields.update(listed=join_and(f["listed"]), mover=moved[0] if moved else None)
            conclusion += "" if moved else "_none"
        elif family == "which_interval" and f["answer_text"] == NEVER_MOVES:
            conclusion += "_never"
        why = phrases.phrase("conclusions")[conclusion].format(**fields)
        return _stages(summary, captions, t2r, r2r, why, answer)


# cooking_process -------------------------------------------------------------------------------------------------

STEP_SECONDS = 0.6
COOK_IMAGES = 6
MIN_ANNOTATED_STEPS = 4


def _counter_text(state: dict[str, Any], says: dict[str, str]) -> str:
    """What a frame of the counter shows, in the words of the phrase table `says`."""
    board = [says["sliced_on_board" if sliced else "whole_on_board"].format(name=name)
             for name, sliced in state["board"]]
    bowl = [says["sliced_in_bowl"].format(name=name) if sliced else name for name, sliced in state["bowl"]]
    bowl += list(state["liquids"])
    parts = [says["board"].format(items=join_and(board)) if board else says["board_empty"],
             says["bowl"].format(items=join_and(bowl)) if bowl else says["bowl_empty"]]
    if state["mixed"]:
        parts.append(says["mixed"])
    if state["cooking"]:
        parts.append(says["cooking"])
    return "; ".join(parts)


# The families each source asks: "between" needs the states between two frames, "which_step" the annotations.
PROCEDURAL_FAMILIES = ["order", "next", "between"]
ANNOTATED_FAMILIES = ["order", "next", "which_step"]


def _state_of(f: CookingFacts, image: int) -> int:
    """The recipe state (steps done) that image `image` (1-based) shows."""
    return f["images"][image - 1]["state"]


class CookingFacts(TypedDict, total=False):
    source: str  # "procedural" or "annotated video"
    recipe: str
    scene_seed: int
    video: str
    steps: list[dict[str, Any]]
    margin: int  # procedural: the fewest steps between two shown frames
    images: list[dict[str, Any]]  # per image: its place in time, its state or step, its region
    step_seconds: float
    fps: int
    frame_indices: list[int]
    ref_image: int
    next_image: int
    chronological_images: list[int]
    variant: str  # the question family
    answer_text: str


class CookingProcess(SequentialTask):
    """The time order of shuffled frames of a process (defined in mirdata/tasks/cooking_process.yaml)."""

    Facts = CookingFacts
    uses_source = True
    answer_rules: ClassVar[dict[str, AnswerRule]] = {
        "chronological_order": lambda f: _order_text(f["chronological_images"]),
        "next_image": lambda f: f"image {f['next_image']}",
        "step_between": lambda f: f["steps"][_state_of(f, f["ref_image"])]["text"],
        "step_shown": lambda f: f["images"][f["ref_image"] - 1]["step_text"],
    }
    constraints: ClassVar[dict[str, Constraint]] = {
        "consecutive_states": lambda f: _state_of(f, f["next_image"]) == _state_of(f, f["ref_image"]) + 1,
    }

    def __init__(self, spec: TaskSpec, options: BuildOptions):
        super().__init__(spec, options)
        self.steps: dict[str, list[AnnotatedStep]] = {}
        if self.videos:
            source, steps_csv = self.config.source, self.config.steps_csv
            by_video = read_steps_csv(Path(steps_csv), self.videos, Path(source))
            for info in self.videos:
                usable = [s for s in by_video.get(info.path, []) if (s.start + s.end) / 2 < info.duration]
                texts = [s.text.casefold() for s in usable]
                if len(usable) >= MIN_ANNOTATED_STEPS and len(set(texts)) == len(texts):
                    self.steps[info.path] = usable
                elif info.path in by_video:
                    self.skipped.append({"file": info.path, "reason": f"{steps_csv} gives it "
                                         f"{len(set(texts))} distinct steps within its length; "
                                         f"{MIN_ANNOTATED_STEPS} are needed"})
            if not self.steps:
                raise MirdataError(f"{steps_csv}: no video of {source} has {MIN_ANNOTATED_STEPS} "
                                   "or more distinct steps within its length")

    def _check_config(self) -> None:
        if self.config.source is not None and self.config.steps_csv is None:
            raise MirdataError(f"{self.config.source}: cooking_process from real video needs --steps-csv (columns "
                               "video,start_s,end_s,step): the order of unannotated frames is not shown by them")
        super()._check_config()

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        drawn = self._from_annotated(slot, rng) if self.steps else self._procedural(slot, rng)
        if drawn is None:
            return None
        family, facts, images, regions = drawn
        facts["variant"] = family.name
        answered = self.answer(family, facts, rng)
        if answered is None:
            return None
        options, answer = place_answer(*answered, slot, rng)
        procedural = facts["source"] == "procedural"
        question = self.question(family, rng,
                                 self.families.phrase("intros")["procedural" if procedural else "steps"],
                                 [{"n": j + 1} for j in range(len(images))], recipe=facts.get("recipe"),
                                 ref=facts.get("ref_image"), nxt=facts.get("next_image"))
        return Sample(question=question, options=options, answer=answer, images=images, regions=regions.items,
                      facts=facts, generator=GENERATOR if procedural else REAL_GENERATOR)

    def _procedural(self, slot: Slot, rng: np.random.Generator) -> tuple | None:
        """A recipe's clip, six of its states in a random order, their frames and what each shows."""
        recipe = pick(rng, sorted(RECIPES))
        scene_seed = int(rng.integers(1 << 31))
        scene = ProcessScene.make(recipe, RECIPES[recipe], STEP_SECONDS, self.size, FPS, scene_seed)
        family = pick_balanced(slot, PROCEDURAL_FAMILIES, "cooking question")
        n_states = len(scene.steps) + 1  # before the first step, and after each one
        if family == "between":
            k = int(pick_balanced(slot, list(range(len(scene.steps))), "cooking step"))
            rest = [s for s in range(n_states) if s not in (k, k + 1)]
            chosen = sorted([k, k + 1, *rng.choice(rest, size=COOK_IMAGES - 2, replace=False).tolist()])
        else:
            chosen = sorted(rng.choice(n_states, size=COOK_IMAGES, replace=False).tolist())
        # state s: after s steps; its frame is taken once step s's change is complete, before step s+1 starts
        times = [0.0 if s == 0 else round(scene.steps[s - 1].start + STEP_SECONDS * 0.85, 1) for s in chosen]
        shown = rng.permutation(len(chosen)).tolist()  # image j shows chosen[shown[j]]; any order, identity too
        regions = Regions()
        images_meta = []
        for j, rank in enumerate(shown):
            state, t = chosen[rank], times[rank]
            if state == 0:
                box, label = scene.board, "the cutting board"
            else:
                step = scene.steps[state - 1]
                box, label = scene.focus_box(step, t), self._focus_label(step)
            rid = regions.add_pixels(j, box, label, self.size)
            if rid is None:
                return None  # what the last step acted on is not in view: nothing to ground the answer on
            images_meta.append({"image": j, "rank": rank, "state": state, "focus": label,
                                "box": regions.items[-1].box, "region": rid, "shows": scene.state(t)})
        images, frame_indices = _frames_at(scene, [times[r] for r in shown], self.size)
        steps = [{"index": k, "action": s.action, "thing": s.thing, "text": s.text} for k, s in enumerate(scene.steps)]
        facts: CookingFacts = {"source": "procedural", "recipe": recipe, "scene_seed": scene_seed, "steps": steps,
                               "margin": min(b - a for a, b in itertools.pairwise(chosen)),  # fewest steps apart
                               "images": images_meta, "step_seconds": STEP_SECONDS, "fps": FPS,
                               "frame_indices": frame_indices}
        if family == "between":
            ref, nxt = (next(m["image"] + 1 for m in images_meta if m["state"] == s) for s in (k, k + 1))
            facts.update(ref_image=ref, next_image=nxt, chronological_images=self._chronological(shown))
        else:
            self._ask_about_order(family, facts, shown, rng)
        return self.families[family], facts, images, regions

    def _from_annotated(self, slot: Slot, rng: np.random.Generator) -> tuple | None:
        """One annotated video, a frame from each of up to six of its steps, in a random order."""
        path = pick(rng, sorted(self.steps))
        info = next(v for v in self.videos if v.path == path)
        steps = self.steps[path]
        k = min(COOK_IMAGES, len(steps))
        chosen = sorted(rng.choice(len(steps), size=k, replace=False).tolist())
        times = [(steps[i].start + steps[i].end) / 2 for i in chosen]
        shown = rng.permutation(k).tolist()
        with FrameSampler(info.path, info) as sampler:
            frames = sampler.read(sampler.at_times([times[i] for i in shown]))
        if not _distinct_frames(frames.images):
            return None  # a frozen or black stretch: checked on the pixels, before any facts are kept
        images = [_fit(f, self.size) for f in frames.images]
        regions = Regions()
        images_meta = []
        for j, rank in enumerate(shown):
            s = steps[chosen[rank]]
            images_meta.append({"image": j, "rank": rank, "step": chosen[rank], "step_text": s.text,
                                "time_s": round(frames.times[j], 2), "frame": frames.indices[j],
                                "region": regions.add_pixels(j, (0, 0, *self.size), f"the scene of image {j + 1}",
                                                             self.size)})
        facts: CookingFacts = {"source": "annotated video", "video": Path(path).name, "images": images_meta,
                               "steps": [{"index": i, "text": s.text, "start_s": s.start, "end_s": s.end}
                                         for i, s in enumerate(steps)],
                               "frame_indices": frames.indices}
        family = pick_balanced(slot, ANNOTATED_FAMILIES, "cooking question")
        if family == "which_step":
            facts["ref_image"] = int(rng.integers(k)) + 1
        else:
            self._ask_about_order(family, facts, shown, rng)
        return self.families[family], facts, images, regions

    def _ask_about_order(self, family: str, facts: CookingFacts, shown: list[int], rng: np.random.Generator) -> None:
        """The facts an "order" or "next" question rests on, for images whose chronological ranks are `shown`."""
        chronological = facts["chronological_images"] = self._chronological(shown)
        if family == "next":
            pos = int(rng.integers(len(shown) - 1))
            facts["ref_image"], facts["next_image"] = chronological[pos], chronological[pos + 1]

    @staticmethod
    def _distractors(family: str, facts: CookingFacts, correct: str, rng: np.random.Generator) -> list[str]:
        if family == "order":
            return [_order_text(list(p)) for p in ordering_distractors(facts["chronological_images"], rng, 3)]
        if family == "next":
            taken = (facts["ref_image"], facts["next_image"])
            others = [k for k in range(1, len(facts["images"]) + 1) if k not in taken]
            return [f"image {others[i]}" for i in rng.permutation(len(others))[:3]]
        others = [s["text"] for s in facts["steps"] if s["text"] != correct]  # wrong steps of the same recipe
        return [others[i] for i in rng.permutation(len(others))[:3]]

    @staticmethod
    def _chronological(shown: list[int]) -> list[int]:
        """Image numbers from first to last, for images whose chronological ranks are `shown`."""
        return [shown.index(r) + 1 for r in range(len(shown))]

    @staticmethod
    def _focus_label(step: Any) -> str:
        if step.action == "cut":
            return f"the sliced {step.thing}"
        if step.action in ("add", "pour"):
            return f"the {step.thing} in the bowl"
        return "the bowl's contents"

    @classmethod
    def reason(cls, facts: CookingFacts, regions: list[Region], answer: str, config: SequentialConfig,
               rng: np.random.Generator) -> Reasoning:
        f, phrases = facts, cls.phrases()
        regions = _by_id(regions)
        metas = f["images"]
        procedural = f["source"] == "procedural"
        how = phrases.phrase("how")["procedural" if procedural else "steps"]
        summary = phrases.phrase("summaries", rng, how=how, k=len(metas))
        says = phrases.phrase("captions")
        captions, t2r = [], []
        for m in metas:
            n = m["image"] + 1
            if procedural:
                captions.append(says["procedural"].format(n=n, counter=_counter_text(m["shows"], says)))
                t2r.append(f"'{m['focus']}' → {cite(regions[m['region']])}")
            else:
                captions.append(says["annotated"].format(n=n, video=f["video"], step=m["step_text"]))
                t2r.append(f"'the scene of image {n}' → {cite(regions[m['region']])}")
        by_time = sorted(metas, key=lambda m: m["rank"])
        chain = " → ".join(f"[{m['region']}]" for m in by_time)
        links = phrases.phrase("links")
        r2r = [links["time_order"].format(chain=chain)]
        for a, b in itertools.pairwise(by_time):
            ends = {"a": a["region"], "b": b["region"]}
            if procedural:
                new = join_and([f"'{s['text']}'" for s in f["steps"][a["state"]: b["state"]]])
                r2r.append(links["procedural"].format(**ends, before=a["image"] + 1, after=b["image"] + 1, steps=new))
            else:
                r2r.append(links["annotated"].format(**ends, before=a["step_text"], after=b["step_text"]))
        fields = {**f, "answer": f["answer_text"]}
        if "chronological_images" in f:
            fields["order"] = _order_text(f["chronological_images"])
        why = phrases.phrase("conclusions")[f["variant"]].format(**fields)
        return _stages(summary, captions, t2r, r2r, why, answer)


def _distinct_frames(images: np.ndarray, threshold: float = 2.0) -> bool:
    """Every pair of frames differs by more than `threshold` grey levels on average (not frozen or black)."""
    small = [np.asarray(Image.fromarray(a).resize((64, 48)), dtype=np.float32) for a in images]
    return all(np.abs(a - b).mean() > threshold for a, b in itertools.combinations(small, 2))


# image_puzzle ----------------------------------------------------------------------------------------------------

GRIDS = [(2, 3), (3, 2), (3, 3)]  # a 2x2 grid leaves too few different questions
CORNERS = {"top-left": (0, 0), "top-right": (0, -1), "bottom-left": (-1, 0), "bottom-right": (-1, -1)}
SEAM_MARGIN = 3.0  # grey levels: how much worse the cuts must look when any two pieces trade places
MIN_PART_PIXELS = 60  # a shape's visible pixels in a piece that make it a named part of that piece


def _swap_margin(pieces: list[np.ndarray], rows: int, cols: int) -> float:
    """How well the content across the cuts settles the arrangement: the least extra break, in grey levels,
    that exchanging two pieces of the same size (cells in row-major order) makes across the cuts (the mean
    absolute difference of the touching pixel lines, summed over the cuts). Small: two pieces could trade
    places unseen."""
    n = len(pieces)
    right = np.full((n, n), np.inf)
    below = np.full((n, n), np.inf)
    for p, q in itertools.permutations(range(n), 2):
        a, b = pieces[p], pieces[q]
        if a.shape[0] == b.shape[0]:
            right[p, q] = np.abs(a[:, -1] - b[:, 0]).mean()
        if a.shape[1] == b.shape[1]:
            below[p, q] = np.abs(a[-1] - b[0]).mean()

    def cost(cell: list[int]) -> float:  # cell[k]: the piece placed in cell k
        total = 0.0
        for k in range(n):
            r, c = divmod(k, cols)
            if c + 1 < cols:
                total += right[cell[k], cell[k + 1]]
            if r + 1 < rows:
                total += below[cell[k], cell[k + cols]]
        return total

    truth = list(range(n))
    base = cost(truth)
    margin = math.inf
    for i, j in itertools.combinations(range(n), 2):
        if pieces[i].shape != pieces[j].shape:
            continue  # a piece of another size does not fit the cell
        swapped = truth.copy()
        swapped[i], swapped[j] = j, i
        margin = min(margin, cost(swapped) - base)
    return margin


def _arrangement_text(grid: list[list[int]]) -> str:
    return "; ".join(f"row {r + 1}: " + ", ".join(str(k) for k in row) for r, row in enumerate(grid))


class PuzzleFacts(TypedDict, total=False):
    source: str  # "procedural" or "video"
    video: str
    time_s: float
    frame: int
    rows: int
    cols: int
    grid: list[list[int]]  # the restored picture: the piece (image number) in each cell
    margin: float  # the least extra break across the cuts that exchanging two pieces makes
    images: list[dict[str, Any]]  # per piece: its cell, its named parts and their regions, its tone
    seams: list[dict[str, Any]]
    cell_edges_x: list[int]
    cell_edges_y: list[int]
    corner: str
    corner_piece: int
    ref_piece: int
    right_piece: int
    variant: str  # the question family
    answer_text: str


class ImagePuzzle(SequentialTask):
    """Shuffled pieces of one frame put back together (defined in mirdata/tasks/image_puzzle.yaml)."""

    Facts = PuzzleFacts
    uses_source = True
    answer_rules: ClassVar[dict[str, AnswerRule]] = {
        "arrangement": lambda f: _arrangement_text(f["grid"]),
        "corner_piece": lambda f: f"piece {f['corner_piece']}",
        "right_neighbour": lambda f: f"piece {f['right_piece']}",
    }

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        cut = self._cut(slot, rng)
        if cut is None:
            return None
        facts, images, regions = cut
        family = self.families.choose(slot, "puzzle question")
        self._ask(family.name, facts, rng)
        facts["variant"] = family.name
        answered = self.answer(family, facts, rng)
        if answered is None:
            return None
        options, answer = place_answer(*answered, slot, rng)
        rows, cols = facts["rows"], facts["cols"]
        question = self.question(family, rng, self.families.phrase("intros"),
                                 [{"n": j + 1} for j in range(len(images))], n=rows * cols, rows=rows, cols=cols,
                                 corner=facts.get("corner"), ref=facts.get("ref_piece"))
        return Sample(question=question, options=options, answer=answer, images=images, regions=regions.items,
                      facts=facts, generator=GENERATOR if facts["source"] == "procedural" else REAL_GENERATOR)

    def _cut(self, slot: Slot, rng: np.random.Generator) -> tuple[PuzzleFacts, list[Image.Image], Regions] | None:
        """A frame cut into shuffled pieces, and its facts, measured on the pieces: each piece's visible shape
        parts, tone and seams. None when the pieces' content would not settle the arrangement."""
        rows, cols = pick(rng, GRIDS)
        made = self._real_frame(slot.index, rng) if self.videos else self._procedural_frame(rng)
        if made is None:
            return None
        frame, masks, origin = made
        procedural = origin["source"] == "procedural"
        w, h = self.size
        xs = [round(c * w / cols) for c in range(cols + 1)]
        ys = [round(r * h / rows) for r in range(rows + 1)]
        cells = [(r, c) for r in range(rows) for c in range(cols)]
        pieces = [np.asarray(frame.crop((xs[c], ys[r], xs[c + 1], ys[r + 1])), dtype=np.float32) for r, c in cells]
        # Checked on the pixels, before the facts are drawn: a flat or look-alike piece, or two pieces that could
        # trade places without a visible break across the cuts, would leave the arrangement open.
        if min(p.std() for p in pieces) < 6 or not _distinct_frames(np.stack(
                [np.asarray(Image.fromarray(p.astype(np.uint8)).resize((48, 48))) for p in pieces]), 6.0):
            return None
        margin = _swap_margin(pieces, rows, cols)
        if margin < SEAM_MARGIN:
            return None
        n = len(cells)
        shown = rng.permutation(n).tolist()  # image j shows cell shown[j]; any order, the identity too
        sizes = {j: (xs[cells[shown[j]][1] + 1] - xs[cells[shown[j]][1]], ys[cells[shown[j]][0] + 1] -
                     ys[cells[shown[j]][0]]) for j in range(n)}
        regions = Regions()
        images, images_meta = [], []
        for j, cell in enumerate(shown):
            r, c = cells[cell]
            x0, y0, x1, y1 = xs[c], ys[r], xs[c + 1], ys[r + 1]
            images.append(frame.crop((x0, y0, x1, y1)))
            parts = []
            for name, mask in masks.items():
                part = mask[y0:y1, x0:x1]
                box = mask_box(part)
                if box is not None and int(part.sum()) >= MIN_PART_PIXELS:
                    rid = regions.add_pixels(j, box, f"part of the {name}", sizes[j])
                    if rid:
                        parts.append({"name": name, "region": rid, "box": regions.items[-1].box,
                                      "pixels": int(part.sum())})
            if not procedural:
                parts.append({"name": "the whole piece",
                              "region": regions.add_pixels(j, (0, 0, *sizes[j]), f"piece {j + 1}", sizes[j]),
                              "box": [0, 0, *sizes[j]]})
            images_meta.append({"image": j, "row": r + 1, "col": c + 1, "parts": parts,
                                "tone": _tone(pieces[cell])})
        grid = [[0] * cols for _ in range(rows)]
        for j, cell in enumerate(shown):
            r, c = cells[cell]
            grid[r][c] = j + 1
        seams = self._seams(pieces, rows, cols, grid, shown)
        facts: PuzzleFacts = {**origin, "rows": rows, "cols": cols, "grid": grid, "margin": round(margin, 1),
                              "images": images_meta, "seams": seams, "cell_edges_x": xs, "cell_edges_y": ys}
        return facts, images, regions

    @staticmethod
    def _ask(family: str, facts: PuzzleFacts, rng: np.random.Generator) -> None:
        """The cell a corner or neighbour question names, drawn."""
        grid = facts["grid"]
        if family == "corner":
            corner = pick(rng, list(CORNERS))
            r, c = CORNERS[corner]
            facts["corner"], facts["corner_piece"] = corner, grid[r][c]
        elif family == "neighbour":
            r, c = int(rng.integers(facts["rows"])), int(rng.integers(facts["cols"] - 1))
            facts["ref_piece"], facts["right_piece"] = grid[r][c], grid[r][c + 1]

    @staticmethod
    def _distractors(family: str, facts: PuzzleFacts, correct: str, rng: np.random.Generator) -> list[str]:
        grid, cols = facts["grid"], facts["cols"]
        n = facts["rows"] * cols
        if family == "arrangement":
            flat = [k for row in grid for k in row]
            return [_arrangement_text([list(p[r * cols:(r + 1) * cols]) for r in range(facts["rows"])])
                    for p in ordering_distractors(flat, rng, 3)]
        taken = (facts["corner_piece"],) if family == "corner" else (facts["ref_piece"], facts["right_piece"])
        others = [k for k in range(1, n + 1) if k not in taken]
        return [f"piece {others[i]}" for i in rng.permutation(len(others))[:3]]

    def _procedural_frame(self, rng: np.random.Generator) -> tuple[Image.Image, dict[str, np.ndarray], dict]:
        """A frame of shapes drifting over sky and ground (later shapes on top of earlier ones where they
        overlap), and each shape's visible pixels in it."""
        w, h = self.size
        n = int(rng.integers(4, 7))
        things = []
        for color, shape in random_looks(rng, n):
            radius = float(rng.uniform(0.07, 0.13) * h)
            start = (float(rng.uniform(radius, w - radius)), float(rng.uniform(radius, h - radius)))
            velocity = (float(rng.uniform(-0.1, 0.1) * w), float(rng.uniform(-0.1, 0.1) * h))
            things.append(Thing(color, shape, radius, Trajectory.line(start, velocity, 1.0)))
        scene = MotionScene(self.size, 1.0, FPS, things, int(rng.integers(1 << 31)))
        with open_clip(scene) as sampler:
            frames = sampler.read(sampler.random(1, rng))
        t = frames.times[0]
        masks = {thing.name: scene.mask(thing, t) for thing in things}
        return to_image(frames.images[0], self.size), masks, {"source": "procedural", "time_s": round(t, 2)}

    def _real_frame(self, index: int, rng: np.random.Generator) -> tuple[Image.Image, dict, dict] | None:
        """A frame of the `--source` videos dealt to this record: the frames are dealt out by a permutation keyed
        on the seed, so records do not share a frame while the videos have frames enough; a retry after a
        flat frame may move on by a stride of 7919 frames."""
        candidates = [(v, k) for v, info in enumerate(self.videos) for k in
                      range(int(0.05 * info.frames), max(int(0.05 * info.frames) + 1, int(0.95 * info.frames)))]
        deal = np.random.default_rng([zlib.crc32(b"puzzle frames"), self.config.seed]).permutation(len(candidates))
        v, k = candidates[int(deal[(index + 7919 * int(rng.integers(4))) % len(candidates)])]
        info = self.videos[v]
        with FrameSampler(info.path, info) as sampler:
            frames = sampler.read([k])
        origin = {"source": "video", "video": Path(info.path).name, "time_s": round(frames.times[0], 2),
                  "frame": frames.indices[0]}
        return _fit(frames.images[0], self.size), {}, origin

    @staticmethod
    def _seams(pieces: list[np.ndarray], rows: int, cols: int, grid: list[list[int]], shown: list[int]) -> list[dict]:
        """How well neighbouring pieces continue each other across their shared edge (mean absolute difference
        of the touching pixel lines, in grey levels): low for true neighbours."""
        cell_of_image = {j + 1: shown[j] for j in range(len(shown))}
        seams = []
        for r in range(rows):
            for c in range(cols):
                left = grid[r][c]
                a = pieces[cell_of_image[left]]
                if c + 1 < cols:
                    right = grid[r][c + 1]
                    b = pieces[cell_of_image[right]]
                    seams.append({"pieces": [left, right], "side": "right",
                                  "difference": round(float(np.abs(a[:, -1] - b[:, 0]).mean()), 1)})
                if r + 1 < rows:
                    below = grid[r + 1][c]
                    b = pieces[cell_of_image[below]]
                    seams.append({"pieces": [left, below], "side": "below",
                                  "difference": round(float(np.abs(a[-1, :] - b[0, :]).mean()), 1)})
        return seams

    @classmethod
    def reason(cls, facts: PuzzleFacts, regions: list[Region], answer: str, config: SequentialConfig,
               rng: np.random.Generator) -> Reasoning:
        f, phrases = facts, cls.phrases()
        regions = _by_id(regions)
        rows, cols, grid = f["rows"], f["cols"], f["grid"]
        procedural = f["source"] == "procedural"
        clue = phrases.phrase("clues")["procedural" if procedural else "video"]
        summary = phrases.phrase("summaries", rng, n=rows * cols, rows=rows, cols=cols, clue=clue)
        says = phrases.phrase("captions")
        captions, t2r = [], []
        for m in f["images"]:
            n = m["image"] + 1
            shapes = [p["name"] for p in m["parts"] if p["name"] != "the whole piece"]
            if procedural:  # where the horizon falls is not a fact
                what = says["parts"].format(shapes=join_and(shapes)) if shapes else says["backdrop"]
                captions.append(says["procedural"].format(n=n, what=what, tone=m["tone"]))
            else:
                box = regions[m["parts"][-1]["region"]].box
                captions.append(says["video"].format(n=n, width=box[2], height=box[3], tone=m["tone"]))
            for p in m["parts"]:
                phrase = f"part of the {p['name']}" if p["name"] != "the whole piece" else f"piece {n}"
                t2r.append(f"'{phrase}' → {cite(regions[p['region']])}")
        links = phrases.phrase("links")
        r2r = []
        for s in f["seams"]:
            a, b = s["pieces"]
            shared = ""
            if procedural:
                pa = {p["name"]: p["region"] for p in f["images"][a - 1]["parts"]}
                pb = {p["name"]: p["region"] for p in f["images"][b - 1]["parts"]}
                common = [name for name in pa if name in pb]
                if common:
                    shared = "; " + ", ".join(links["continues"].format(name=name, a=pa[name], b=pb[name])
                                              for name in common)
            r2r.append(links["seam"].format(piece=b, side=links[s["side"]], other=a, difference=s["difference"],
                                            shared=shared))
        r2r.append(links["grid"].format(grid=_arrangement_text(grid)))
        why = phrases.phrase("conclusions")[f["variant"]].format(**f, arrangement=_arrangement_text(grid))
        return _stages(summary, captions, t2r, r2r, why, answer)


TONES = {"red": (200, 60, 50), "orange": (220, 140, 50), "yellow": (220, 200, 70), "green": (70, 150, 70),
         "blue": (60, 100, 190), "purple": (120, 70, 150), "brown": (130, 90, 60), "grey": (128, 128, 128),
         "white": (235, 235, 235), "black": (25, 25, 25), "sky blue": (150, 190, 230), "beige": (215, 195, 160)}


def _tone(piece: np.ndarray) -> str:
    """The one or two colour names that cover most of a piece, and how bright it is."""
    pixels = np.asarray(Image.fromarray(piece.astype(np.uint8)).resize((24, 24))).reshape(-1, 1, 3).astype(np.float32)
    palette = np.array(list(TONES.values()), dtype=np.float32)
    nearest = np.argmin(((pixels - palette[None]) ** 2).sum(axis=2), axis=1)
    counts = np.bincount(nearest, minlength=len(TONES))
    names = list(TONES)
    top = [names[k] for k in np.argsort(-counts, kind="stable")[:2] if counts[k] >= 0.15 * len(nearest)]
    level = float(piece.mean())
    light = "dark" if level < 80 else "bright" if level > 180 else "mid-tone"
    return f"{light}, mostly {' and '.join(top) if top else 'mixed colours'}"
