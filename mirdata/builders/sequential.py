"""The sequential category: questions whose answer depends on time, asked over frames sampled from videos.

By default every record is built from a procedural H.264 clip (mirdata.generators.video) whose facts are known
by construction; its frames are sampled with decord (mirdata.generators.frames), as they would be from a real
video. With `--source` (a video file or a folder), the tasks whose ground truth follows from time alone,
`cooking_process` (the order of frames, or of annotated steps with `--steps-csv`) and `image_puzzle` (a frame
cut into pieces), use the real videos; `speed_comparison` and `motion_detection` need object positions, which
an unannotated video does not give, so they stay procedural.

Definitions (reasoned choices; the original release's thresholds are not public):

* speed_comparison: speed is distance travelled relative to the ground (the backdrop) per second. Consecutive
  speeds differ by at least 30 %, and every shape is at least 60 % visible in two or more of the frames, so
  the ranking can be read off the frames. When the camera pans, its motion is part of the facts.
* motion_detection: exactly one shape moves, at least 18 % of the shorter image side, in one of eight compass
  directions, within one interval between two frames; every other shape keeps its exact position.
* cooking_process: each step of a recipe leaves a visible change that is never undone (an item appears, is
  sliced, liquid rises, everything blends, then browns), so the state in a frame fixes its place in time.
* image_puzzle: a frame is cut into a grid of pieces shown shuffled; a frame is used only when every piece has
  texture and no two pieces look alike, so the arrangement is determined by the content.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageOps

from mirdata.builders.base import BuildOptions, Reasoning, Sample, Task, cite, conclude, join_and, pick, regions_by_id
from mirdata.builders.options import distinct_distractors, place_answer
from mirdata.errors import MirdataError
from mirdata.generators.frames import FrameSampler, VideoInfo, find_videos, probe_videos
from mirdata.generators.video import (
    RECIPES,
    STEP_TEXT,
    MotionScene,
    Occluder,
    ProcessScene,
    Thing,
    Trajectory,
    open_clip,
    random_looks,
    to_image,
)
from mirdata.schema.record import Record, Region

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


def _near_permutations(correct: tuple[int, ...], rng: np.random.Generator, count: int) -> list[tuple[int, ...]]:
    """`count` wrong orders close to `correct`: adjacent swaps first (the plausible slips), then others."""
    close = []
    for k in range(len(correct) - 1):
        p = list(correct)
        p[k], p[k + 1] = p[k + 1], p[k]
        close.append(tuple(p))
    close.append(tuple(reversed(correct)))
    close = [p for p in dict.fromkeys(close) if p != correct]
    picks = [close[i] for i in rng.permutation(len(close))][:count]
    others = [p for p in itertools.permutations(correct) if p != correct and p not in picks]
    while len(picks) < count and others:
        picks.append(others.pop(int(rng.integers(len(others)))))
    return picks


class _Regions:
    """Regions of one record, ids r0, r1, ... in the order they are added."""

    def __init__(self, size_of: dict[int, tuple[int, int]] | tuple[int, int]):
        self.items: list[Region] = []
        self._size_of = size_of

    def add(self, image: int, box: tuple[float, ...] | list[float], label: str) -> str | None:
        w, h = self._size_of[image] if isinstance(self._size_of, dict) else self._size_of
        x0, y0 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
        x1, y1 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        rid = f"r{len(self.items)}"
        self.items.append(Region(id=rid, image=image, box=[x0, y0, x1, y1], label=label))
        return rid


def _stages(summary: str, captions: list[str], t2r: list[str], r2r: list[str], why: str, answer: str) -> Reasoning:
    """The five stages, one line per grounded phrase and per cross-image link, concluding from `why`."""
    return Reasoning(summary=summary, caption=captions, text2region="\n".join(t2r),
                     region2region="\n".join(r2r), conclusion=conclude(why, answer))


def _fit(frame: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A real video frame scaled and centre-cropped to the image size (aspect kept)."""
    return ImageOps.fit(Image.fromarray(frame), tuple(size), Image.Resampling.BICUBIC)


# -- real sources ------------------------------------------------------------------------------------------------

_PROBED: dict[tuple[str, int, int], VideoInfo | str] = {}  # per process: (path, size, mtime) -> info or reason


def usable_videos(task: Task) -> list[VideoInfo]:
    """The videos of `--source` that decode, in path order; the others go to `task.skipped` (or, with
    `--on-error fail`, the first one stops the build). Probed once per process."""
    paths = find_videos(task.options.source)
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
            if task.options.on_error == "fail":
                raise MirdataError(f"{p}: {result}")
            task.skipped.append({"file": str(p), "reason": result})
        else:
            usable.append(result)
    if not usable:
        raise MirdataError(f"{task.options.source}: none of its {len(paths)} video file(s) can be decoded")
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

class SequentialTask(Task):
    category: ClassVar[str] = "sequential"
    uses_source: ClassVar[bool] = False  # builds from --source videos when given

    def __init__(self, options: BuildOptions):
        super().__init__(options)
        self.size = tuple(options.image_size)
        self.videos: list[VideoInfo] = []
        if options.steps_csv is not None and options.source is None:
            raise MirdataError("--steps-csv needs --source (the folder of the annotated videos)")
        if self.uses_source and options.source is not None:
            self.videos = usable_videos(self)


# speed_comparison ------------------------------------------------------------------------------------------------

SPEED_FRAME_LINES = [
    "Frame {n}, taken at {t}: <image>",
    "At t = {t}: <image>",
    "Image {n} ({t} into the clip): <image>",
]
SPEED_INTROS = [
    "These frames come from one video of shapes moving across a scene.",
    "A camera filmed several shapes moving over the ground; here are frames from that clip.",
    "Below are frames sampled from a short video, with the time each was taken.",
]
SPEED_QUESTIONS = {
    "fastest": ["Which shape moves fastest relative to the ground?",
                "Relative to the ground, which shape travels at the highest speed?"],
    "slowest": ["Which shape moves slowest relative to the ground?",
                "Relative to the ground, which shape covers the least distance per second?"],
    "ranking": ["Rank the shapes from fastest to slowest, relative to the ground.",
                "Which list orders the shapes from the fastest to the slowest (speeds relative to the ground)?"],
    "ratio": ["Relative to the ground, about how many times as fast as the {slow} does the {fast} move?",
              "The {fast} and the {slow} both move. Roughly how many times the {slow}'s speed is the {fast}'s speed?"],
}
SPEED_SUMMARIES = [
    ("The task is to compare how fast the shapes move. I find every shape in each frame, take the distance it "
     "covers between its first and last visible frame, and divide by the time between those frames{pan}."),
    ("To compare speeds I track each shape across the {k} frames ({times}), measure its displacement and divide "
     "by the elapsed time{pan}."),
]
RATIOS = [1.5, 2.0, 3.0, 4.0]
MIN_SPEED_RATIO = 1.3
MIN_VISIBLE = 0.6


class SpeedComparison(SequentialTask):
    name = "speed_comparison"

    def build(self, index: int, rng: np.random.Generator) -> Sample | None:
        w, h = self.size
        duration = 3.0
        variant = pick(rng, list(SPEED_QUESTIONS))
        n = int(rng.integers(3, 5))
        looks = random_looks(rng, n)
        speeds = self._speeds(rng, n, variant)
        pans = bool(rng.random() < 0.35)
        cam_v = float(rng.choice([-1, 1]) * rng.uniform(0.04, 0.08) * w) if pans else 0.0
        margin = abs(cam_v) * duration
        world = (int(math.ceil(w + margin)) + 2, h)
        cam_start = margin if cam_v < 0 else 0.0
        band = h * 0.8 / n
        radius = float(min(0.055 * h, band * 0.38))
        things = []
        order = rng.permutation(n)  # shape k gets speeds[order[k]]
        for k, ((color, shape), speed) in enumerate(zip(looks, [speeds[i] for i in order])):
            angle = rng.uniform(-0.35, 0.35) + (math.pi if rng.random() < 0.5 else 0.0)
            vx, vy = speed * math.cos(angle), speed * math.sin(angle)
            sx_v = vx - cam_v  # velocity in the frame
            y0 = 0.15 * h + (k + 0.5) * band - vy * duration / 2
            lo, hi = radius + 2, w - radius - 2
            x_span = (lo, hi - sx_v * duration) if sx_v >= 0 else (lo - sx_v * duration, hi)
            if x_span[0] >= x_span[1]:
                return None
            screen_x0 = rng.uniform(*x_span)
            start = (screen_x0 + cam_start, y0)
            things.append(Thing(color, shape, radius, Trajectory.line(start, (vx, vy), duration)))
        occluders = []
        if rng.random() < 0.5:
            ox = rng.uniform(0.2, 0.75) * world[0]
            occluders.append(Occluder("grey pillar", (ox, 0.0, ox + 0.06 * w, float(h))))
        camera = Trajectory.line((cam_start, 0.0), (cam_v, 0.0), duration)
        scene = MotionScene(self.size, duration, FPS, things, int(rng.integers(1 << 31)), occluders, camera, world)

        k_images = int(rng.integers(3, 5))
        gap = float(pick(rng, [g for g in (0.6, 0.8, 1.0, 1.2, 1.4) if (k_images - 1) * g <= 2.9]))
        first = round(float(rng.uniform(0, 2.9 - (k_images - 1) * gap)), 1)
        times = [round(first + j * gap, 1) for j in range(k_images)]
        regions = _Regions(self.size)
        objects = []
        for thing in things:
            track = []
            for j, t in enumerate(times):
                obs = scene.observe(thing, t)
                region = regions.add(j, obs.box, thing.name) if obs.box and obs.visible >= 0.5 else None
                track.append({"image": j, "time_s": t, "center": [round(v, 1) for v in obs.center],
                              "world": [round(v, 1) for v in obs.world], "visible": round(obs.visible, 2),
                              "box": list(obs.box) if region else None, "region": region})
            seen = [p for p in track if p["visible"] >= MIN_VISIBLE and p["region"]]
            if len(seen) < 2:
                return None  # a shape seen in fewer than two frames has no measurable speed
            a, b = seen[0], seen[-1]
            dist = math.dist(a["world"], b["world"])
            elapsed = round(b["time_s"] - a["time_s"], 1)
            objects.append({"name": thing.name, "speed_px_s": round(dist / elapsed, 1), "track": track,
                            "measured_from": [a["image"], b["image"]], "distance_px": round(dist, 1),
                            "elapsed_s": elapsed})
        ranked = sorted(objects, key=lambda o: -o["speed_px_s"])
        for faster, slower in itertools.pairwise(ranked):
            if faster["speed_px_s"] < MIN_SPEED_RATIO * slower["speed_px_s"] * 0.97:
                return None

        with open_clip(scene) as sampler:
            frames = sampler.read(sampler.at_times(times))
        images = [to_image(f, self.size) for f in frames.images]

        names = [o["name"] for o in ranked]
        facts: dict[str, Any] = {
            "source": "procedural", "variant": variant, "fps": FPS, "frame_indices": frames.indices,
            "times_s": times, "image_size": list(self.size), "objects": objects,
            "ranking": names, "occluders": [{"label": o.label, "x": [round(o.box[0], 1), round(o.box[2], 1)]}
                                            for o in occluders],
            "camera": {"pans": pans, "velocity_px_s": round(cam_v, 1),
                       "offsets_x": [round(scene.camera_at(t)[0], 1) for t in times],
                       "shift_px": round(scene.camera_at(times[-1])[0] - scene.camera_at(times[0])[0], 1)},
        }
        fmt: dict[str, str] = {}
        if variant == "fastest":
            correct, distractors = names[0], names[1:]
        elif variant == "slowest":
            correct, distractors = names[-1], names[:-1]
        elif variant == "ranking":
            perms = _near_permutations(tuple(range(n)), rng, 3)
            correct = ", ".join(names)
            distractors = [", ".join(names[i] for i in p) for p in perms]
        else:
            fast, slow = (things[int(np.flatnonzero(order == i)[0])].name for i in (0, 1))
            facts["ratio_pair"] = [fast, slow]
            by_name = {o["name"]: o for o in objects}
            ratio = by_name[fast]["speed_px_s"] / by_name[slow]["speed_px_s"]
            nearest = min(RATIOS, key=lambda r: abs(r - ratio))
            if abs(ratio - nearest) > 0.15 * nearest:
                return None
            facts["ratio"] = round(ratio, 2)
            correct = f"about {nearest:g} times as fast"
            distractors = [f"about {r:g} times as fast" for r in RATIOS if r != nearest]
            fmt = {"fast": fast, "slow": slow}
        facts["answer_text"] = correct
        options, answer = place_answer(correct, distractors, self.slot(index), rng)
        line = pick(rng, SPEED_FRAME_LINES)  # one labelling per question: 'Frame 1 … Image 3' would read oddly
        lines = [line.format(n=j + 1, t=_seconds(t)) for j, t in enumerate(times)]
        question = "\n".join([pick(rng, SPEED_INTROS), *lines, pick(rng, SPEED_QUESTIONS[variant]).format(**fmt)])
        return Sample(question=question, options=options, answer=answer, images=images, regions=regions.items,
                      facts=facts, generator=GENERATOR)

    def _speeds(self, rng: np.random.Generator, n: int, variant: str) -> list[float]:
        """`n` speeds (image px/s relative to the ground), fastest first, consecutive ones 35-70 % apart; for
        "ratio" the first two are in one of RATIOS and the rest are slower still."""
        speeds = [rng.uniform(0.18, 0.26) * self.size[0]]
        if variant == "ratio":
            speeds.append(speeds[0] / float(pick(rng, RATIOS)))
        while len(speeds) < n:
            speeds.append(speeds[-1] / rng.uniform(1.35, 1.7))
        return speeds

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        regions = regions_by_id(record)
        objects = f["objects"]
        cam = f["camera"]
        times = f["times_s"]
        pan = (", correcting for the camera, which pans" if cam["pans"] else "")
        summary = pick(rng, SPEED_SUMMARIES).format(pan=pan, k=len(times), times=", ".join(_seconds(t) for t in times))
        captions = []
        for j, t in enumerate(times):
            parts = []
            for o in objects:
                p = o["track"][j]
                if p["region"]:
                    parts.append(f"the {o['name']} {_where(*p['center'], self.size)}")
                elif p["visible"] > 0:
                    parts.append(f"the {o['name']} mostly hidden")
            hidden = [o["name"] for o in objects if o["track"][j]["visible"] == 0]
            text = f"Frame {j + 1} ({_seconds(t)}): " + (join_and(parts) if parts else "no shape is clearly visible")
            if f["occluders"]:
                text += "; a grey pillar stands in front of the scene"
            if hidden:
                text += f"; the {join_and(hidden)} cannot be seen"
            captions.append(text + ".")
        t2r = []
        for o in objects:
            cites = [cite(regions[p["region"]]) for p in o["track"] if p["region"]]
            t2r.append(f"'the {o['name']}' → " + "; ".join(cites))
        r2r = []
        if cam["pans"]:
            shift = cam["shift_px"]
            way = "right" if shift > 0 else "left"
            r2r.append(f"The backdrop slides {abs(shift):g} px to the {'left' if shift > 0 else 'right'} between "
                       f"image 1 and image {len(times)}, so the camera pans {way} at "
                       f"{abs(cam['velocity_px_s']):g} px/s; "
                       "positions in the scene are frame positions plus the camera's offset.")
        for o in objects:
            a, b = (o["track"][k] for k in o["measured_from"])
            ra, rb = a["region"], b["region"]
            if cam["pans"]:
                move = (f"from ({a['world'][0]:g}, {a['world'][1]:g}) to ({b['world'][0]:g}, {b['world'][1]:g}) "
                        "in scene coordinates")
            else:
                move = f"from ({a['center'][0]:g}, {a['center'][1]:g}) to ({b['center'][0]:g}, {b['center'][1]:g})"
            r2r.append(f"[{ra}] → [{rb}]: the {o['name']} moves {move}, {o['distance_px']:g} px in "
                       f"{_seconds(o['elapsed_s'])}, about {o['speed_px_s']:g} px/s.")
        ranked = f["ranking"]
        speed_of = {o["name"]: o["speed_px_s"] for o in objects}
        r2r.append("From fastest to slowest: " + " > ".join(f"{n} ({speed_of[n]:g} px/s)" for n in ranked) + ".")
        variant = f["variant"]
        if variant == "fastest":
            why = f"The {ranked[0]} covers the most ground per second ({speed_of[ranked[0]]:g} px/s)"
        elif variant == "slowest":
            why = f"The {ranked[-1]} covers the least ground per second ({speed_of[ranked[-1]]:g} px/s)"
        elif variant == "ranking":
            why = f"The speeds put the shapes in the order {', '.join(ranked)}"
        else:
            fast, slow = f["ratio_pair"]
            why = (f"The {fast} moves at {speed_of[fast]:g} px/s and the {slow} at {speed_of[slow]:g} px/s, a "
                   f"ratio of {f['ratio']:g}, which is {f['answer_text']}")
        return _stages(summary, captions, t2r, r2r, why, record.answer)


# motion_detection -------------------------------------------------------------------------------------------------

MOTION_INTROS = [
    "A fixed camera filmed a few shapes; these frames come from that video.",
    "The frames below were taken from one clip by a camera that does not move.",
    "Here are frames from a short video of shapes on the ground (the camera stays still).",
]
MOTION_FRAME_LINES = ["Frame {n} ({t}): <image>", "At {t}: <image>", "Image {n}, taken at {t}: <image>"]
MOTION_QUESTIONS = {
    "which_moved": ["Which shape moved between the two frames?",
                    "One shape changed position between the frames. Which one?"],
    "direction": ["In which direction did the {mover} move between the two frames?",
                  "Between the first and the second frame, which way did the {mover} go?"],
    "which_interval": ["Between which two consecutive frames does a shape move?",
                       "All shapes stay put except during one interval. When does something move?"],
}
MOTION_SUMMARIES = [
    ("The question is about what changed between frames. I locate every shape in each frame and compare its "
     "position from frame to frame; a shape whose box stays the same did not move."),
    ("Since the camera is still, any change of a shape's position between frames is motion. I compare each "
     "shape's box across the {k} frames."),
]
MIN_MOVE = 0.18  # of the shorter image side


class MotionDetection(SequentialTask):
    name = "motion_detection"

    def build(self, index: int, rng: np.random.Generator) -> Sample | None:
        w, h = self.size
        variant = pick(rng, list(MOTION_QUESTIONS))
        n = int(rng.integers(3, 5)) if variant != "which_moved" else 4
        looks = random_looks(rng, n)
        radius = 0.06 * h
        spots = self._spots(rng, n + 1, radius)  # the last spot is where the mover ends up
        if spots is None:
            return None
        mover = int(rng.integers(n))
        start, end = spots[mover], spots[-1]
        dx, dy = end[0] - start[0], end[1] - start[1]
        heading = round(math.atan2(dy, dx) / (math.pi / 4))  # snap the move onto one of eight directions
        dist = math.hypot(dx, dy)
        end = (start[0] + dist * math.cos(heading * math.pi / 4), start[1] + dist * math.sin(heading * math.pi / 4))
        if not (radius < end[0] < w - radius and radius < end[1] < h - radius) or dist < MIN_MOVE * min(w, h):
            return None
        if any(math.dist(end, spots[k]) < 2.6 * radius for k in range(n) if k != mover):
            return None
        if variant == "which_interval":
            k_images = int(rng.integers(3, 5))
            gap = float(pick(rng, [0.6, 0.7, 0.8]))
            times = [round(j * gap, 1) for j in range(k_images)]
            moving_interval = int(rng.integers(k_images - 1))
        else:
            times = [round(float(pick(rng, [0.0, 0.1, 0.2, 0.3])), 1), round(float(pick(rng, [1.4, 1.6, 1.8])), 1)]
            moving_interval = 0
        t0, t1 = times[moving_interval] + 0.1, times[moving_interval + 1] - 0.1
        things = []
        for k, (color, shape) in enumerate(looks):
            path = Trajectory.move(start, end, t0, t1) if k == mover else Trajectory.still(spots[k])
            things.append(Thing(color, shape, radius, path))
        scene = MotionScene(self.size, round(times[-1] + 0.2, 1), FPS, things, int(rng.integers(1 << 31)))
        regions = _Regions(self.size)
        objects = []
        for thing in things:
            track = []
            for j, t in enumerate(times):
                obs = scene.observe(thing, t)
                track.append({"image": j, "time_s": t, "center": [round(v, 1) for v in obs.center],
                              "box": list(obs.box), "region": regions.add(j, obs.box, thing.name)})
            objects.append({"name": thing.name, "moves": thing is things[mover], "track": track})
        with open_clip(scene) as sampler:
            frames = sampler.read(sampler.at_times(times))
        images = [to_image(f, self.size) for f in frames.images]

        mover_name = things[mover].name
        shift = [round(end[0] - start[0], 1), round(end[1] - start[1], 1)]
        direction = DIRECTIONS[heading % 8]
        facts: dict[str, Any] = {
            "source": "procedural", "variant": variant, "fps": FPS, "frame_indices": frames.indices, "times_s": times,
            "image_size": list(self.size), "objects": objects, "mover": mover_name, "direction": direction,
            "shift_px": shift, "distance_px": round(dist, 1),
            "moving_interval": [moving_interval + 1, moving_interval + 2],
            "motion_s": [round(t0, 1), round(t1, 1)],
        }
        fmt: dict[str, str] = {}
        if variant == "which_moved":
            correct, distractors = mover_name, [t.name for t in things if t.name != mover_name]
        elif variant == "direction":
            fmt = {"mover": mover_name}
            correct = direction
            distractors = [DIRECTIONS[(heading + d) % 8] for d in (4, 2, -2)]
        else:
            labels = [f"between frame {j + 1} and frame {j + 2}" for j in range(len(times) - 1)]
            correct = labels[moving_interval]
            distractors = [x for x in labels if x != correct] + ["no shape moves in any interval"]
        facts["answer_text"] = correct
        options, answer = place_answer(correct, distractors, self.slot(index), rng)
        line = pick(rng, MOTION_FRAME_LINES)
        lines = [line.format(n=j + 1, t=_seconds(t)) for j, t in enumerate(times)]
        question = "\n".join([pick(rng, MOTION_INTROS), *lines, pick(rng, MOTION_QUESTIONS[variant]).format(**fmt)])
        return Sample(question=question, options=options, answer=answer, images=images, regions=regions.items,
                      facts=facts, generator=GENERATOR)

    def _spots(self, rng: np.random.Generator, n: int, radius: float) -> list[tuple[float, float]] | None:
        """`n` positions at least 2.6 radii apart, inside the image."""
        w, h = self.size
        spots: list[tuple[float, float]] = []
        for _ in range(200):
            p = (float(rng.uniform(radius * 1.5, w - radius * 1.5)), float(rng.uniform(radius * 1.5, h - radius * 1.5)))
            if all(math.dist(p, q) >= 2.6 * radius for q in spots):
                spots.append(p)
                if len(spots) == n:
                    return spots
        return None

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        regions = regions_by_id(record)
        times = f["times_s"]
        summary = pick(rng, MOTION_SUMMARIES).format(k=len(times))
        captions = []
        for j, t in enumerate(times):
            parts = [f"the {o['name']} {_where(*o['track'][j]['center'], self.size)}" for o in f["objects"]]
            captions.append(f"Frame {j + 1} ({_seconds(t)}) shows {join_and(parts)}.")
        t2r = [f"'the {o['name']}' → " + "; ".join(cite(regions[p["region"]]) for p in o["track"] if p["region"])
               for o in f["objects"]]
        r2r = []
        for o in f["objects"]:
            cites = ", ".join(f"[{p['region']}]" for p in o["track"] if p["region"])
            if not o["moves"]:
                r2r.append(f"{cites}: the {o['name']} keeps the same box in every frame, so it did not move.")
        a, b = f["moving_interval"]
        mover = next(o for o in f["objects"] if o["moves"])
        pa, pb = mover["track"][a - 1], mover["track"][b - 1]
        dx, dy = f["shift_px"]
        r2r.append(f"[{pa['region']}] → [{pb['region']}]: the {mover['name']} goes from ({pa['center'][0]:g}, "
                   f"{pa['center'][1]:g}) in frame {a} to ({pb['center'][0]:g}, {pb['center'][1]:g}) in frame {b}, "
                   f"a shift of {dx:g} px horizontally and {dy:g} px vertically ({f['distance_px']:g} px), i.e. "
                   f"{f['direction']}.")
        if len(times) > 2:
            still = [f"frames {j + 1} and {j + 2}" for j in range(len(times) - 1) if j + 1 != a]
            r2r.append(f"Between {join_and(still)} nothing changes.")
        variant = f["variant"]
        if variant == "which_moved":
            why = f"Only the {mover['name']} changed position"
        elif variant == "direction":
            why = f"The {mover['name']} moved {f['direction']}"
        else:
            why = f"The only motion happens between frame {a} and frame {b}"
        return _stages(summary, captions, t2r, r2r, why, record.answer)


# cooking_process -------------------------------------------------------------------------------------------------

COOK_INTROS = {
    "procedural": ["These frames show someone making {recipe}, but they are shuffled.",
                   "Frames from a video of a {recipe} being prepared, in a random order:"],
    "procedural pair": ["Two frames from a video of a {recipe} being prepared, in the order they were filmed:",
                        "Here is the {recipe} a little earlier and a little later in the same video:"],
    "steps": ["These frames come from a video of a process with several steps, shown out of order.",
              "Frames from an instructional video, shuffled:"],
    "time": ["These frames were taken from one video at different moments, then shuffled.",
             "Here are frames from a single video, not in the order they were filmed:"],
}
COOK_IMAGE_LINES = ["Image {n}: <image>", "Frame {n}: <image>"]
COOK_QUESTIONS = {
    "order": ["Which order of the images follows the process from first to last?",
              "Put the images in the order in which they happened."],
    "next": ["Which image shows what happens right after image {ref}?",
             "Which image comes directly after image {ref} in time?"],
    "between": ["What was done between the first and the second image?",
                "Which step happened between these two moments?"],
    "which_step": ["Which step does image {ref} show?", "What is being done in image {ref}?"],
}
COOK_SUMMARIES = [
    "The images are out of order and I need to recover the sequence. {how}",
    "The task is to reconstruct the timeline of the {k} images. {how}",
]
STEP_SECONDS = 0.6


class CookingProcess(SequentialTask):
    name = "cooking_process"
    uses_source = True

    def __init__(self, options: BuildOptions):
        super().__init__(options)
        self.steps: dict[str, list[AnnotatedStep]] = {}
        if self.videos and options.steps_csv is not None:
            by_video = read_steps_csv(Path(options.steps_csv), self.videos, Path(options.source))
            for info in self.videos:
                usable = [s for s in by_video.get(info.path, []) if (s.start + s.end) / 2 < info.duration]
                texts = [s.text.casefold() for s in usable]
                if len(usable) >= 3 and len(set(texts)) == len(texts):
                    self.steps[info.path] = usable
                elif info.path in by_video:
                    self.skipped.append({"file": info.path, "reason": f"{options.steps_csv} gives it "
                                         f"{len(set(texts))} distinct steps within its length; 3 are needed"})
            if not self.steps:
                raise MirdataError(f"{options.steps_csv}: no video of {options.source} has 3 or more distinct steps "
                                   "within its length")

    def build(self, index: int, rng: np.random.Generator) -> Sample | None:
        if self.steps:
            return self._from_annotated(index, rng)
        if self.videos:
            return self._from_video(index, rng)
        return self._procedural(index, rng)

    def _procedural(self, index: int, rng: np.random.Generator) -> Sample | None:
        recipe = pick(rng, sorted(RECIPES))
        scene = ProcessScene.make(recipe, RECIPES[recipe], STEP_SECONDS, self.size, FPS, int(rng.integers(1 << 31)))
        variant = pick(rng, ["order", "order", "next", "between"])
        if variant == "between":  # two frames in time order, one step apart
            first = int(rng.integers(len(scene.steps) - 1))
            chosen = [first, first + 1]
        else:
            chosen = sorted(rng.choice(len(scene.steps), size=4, replace=False).tolist())
        times = [round(scene.steps[i].start + STEP_SECONDS * 0.85, 1) for i in chosen]
        shown = self._shuffle(rng, len(chosen)) if variant != "between" else [0, 1]
        regions = _Regions(self.size)
        images_meta = []
        for j, k in enumerate(shown):
            step = scene.steps[chosen[k]]
            box = scene.focus_box(step, times[k])
            label = self._focus_label(step)
            rid = regions.add(j, box, label)
            if rid is None:
                return None  # what the step acts on is not in view: nothing to ground the answer on
            images_meta.append({"image": j, "step": chosen[k], "step_text": step.text, "time_s": times[k],
                                "focus": label, "box": regions.items[-1].box, "region": rid})
        with open_clip(scene) as sampler:
            frames = sampler.read(sampler.at_times([times[i] for i in shown]))
        images = [to_image(f, self.size) for f in frames.images]
        steps = [{"index": k, "action": s.action, "thing": s.thing, "text": s.text, "start_s": s.start,
                  "end_s": s.end} for k, s in enumerate(scene.steps)]
        facts = {"source": "procedural", "recipe": recipe, "steps": steps, "images": images_meta, "fps": FPS,
                 "frame_indices": frames.indices}
        if variant == "between":
            middle = scene.steps[chosen[1]]
            others = [s.text for s in scene.steps if s.text != middle.text and s is not middle]
            pool = [STEP_TEXT[a].format(thing=t) for r in sorted(RECIPES) for a, t in RECIPES[r]]
            pool = [t for t in dict.fromkeys(pool) if t != middle.text and t not in others]
            distractors = [others[i] for i in rng.permutation(len(others))[:2]] + [pick(rng, pool)]
            return self._sample(index, rng, "procedural pair", variant, images, regions, facts, middle.text,
                                distractors, {"recipe": recipe}, GENERATOR)
        return self._ordering(index, rng, "procedural", variant, images, regions, facts, shown, {"recipe": recipe},
                              GENERATOR)

    def _from_video(self, index: int, rng: np.random.Generator) -> Sample | None:
        info = pick(rng, self.videos)
        k = 4
        with FrameSampler(info.path, info) as sampler:
            lo, hi = int(0.05 * info.frames), int(0.95 * info.frames) - 1
            gap = max(1, (hi - lo) // (3 * k))
            if hi - lo + 1 < k * gap:
                return None
            indices = sampler.random(k, rng, min_gap=gap, first=lo, last=hi)
            shown = self._shuffle(rng, k)
            frames = sampler.read([indices[i] for i in shown])
        if not _distinct_frames(frames.images):
            return None  # frames too alike to order
        images = [_fit(f, self.size) for f in frames.images]
        regions = _Regions(self.size)
        images_meta = []
        for j, kk in enumerate(shown):
            t = round(frames.times[j], 2)
            images_meta.append({"image": j, "rank": kk, "time_s": t, "frame": frames.indices[j],
                                "region": regions.add(j, (0, 0, *self.size), f"frame at {t:g} s")})
        facts = {"source": "video", "video": Path(info.path).name, "fps": info.fps,
                 "duration_s": round(info.duration, 2), "images": images_meta, "frame_indices": frames.indices}
        variant = pick(rng, ["order", "next"])
        return self._ordering(index, rng, "time", variant, images, regions, facts, shown, {}, REAL_GENERATOR)

    def _from_annotated(self, index: int, rng: np.random.Generator) -> Sample | None:
        path = pick(rng, sorted(self.steps))
        info = next(v for v in self.videos if v.path == path)
        steps = self.steps[path]
        k = min(4, len(steps))
        chosen = sorted(rng.choice(len(steps), size=k, replace=False).tolist())
        times = [(steps[i].start + steps[i].end) / 2 for i in chosen]
        shown = self._shuffle(rng, k)
        with FrameSampler(info.path, info) as sampler:
            frames = sampler.read(sampler.at_times([times[i] for i in shown]))
        if not _distinct_frames(frames.images):
            return None
        images = [_fit(f, self.size) for f in frames.images]
        regions = _Regions(self.size)
        images_meta = []
        for j, kk in enumerate(shown):
            s = steps[chosen[kk]]
            images_meta.append({"image": j, "rank": kk, "step": chosen[kk], "step_text": s.text,
                                "time_s": round(frames.times[j], 2), "frame": frames.indices[j],
                                "region": regions.add(j, (0, 0, *self.size), s.text)})
        facts = {"source": "annotated video", "video": Path(path).name, "images": images_meta,
                 "steps": [{"index": i, "text": s.text, "start_s": s.start, "end_s": s.end}
                           for i, s in enumerate(steps)],
                 "frame_indices": frames.indices}
        variant = pick(rng, ["order", "next", "which_step"])
        if variant == "which_step":
            ref = int(rng.integers(k))
            correct = images_meta[ref]["step_text"]
            others = [m["step_text"] for m in images_meta if m["image"] != ref]
            extra = [s.text for i, s in enumerate(steps) if i not in chosen]
            distractors = (others + extra)[:3]
            facts["ref_image"] = ref + 1
            return self._sample(index, rng, "steps", variant, images, regions, facts, correct, distractors,
                                {"ref": str(ref + 1)}, REAL_GENERATOR)
        return self._ordering(index, rng, "steps", variant, images, regions, facts, shown, {}, REAL_GENERATOR)

    @staticmethod
    def _shuffle(rng: np.random.Generator, k: int) -> list[int]:
        """shown[j] = the chronological rank of image j; never the identity, so the images are out of order."""
        while True:
            shown = rng.permutation(k).tolist()
            if shown != sorted(shown):
                return shown

    @staticmethod
    def _focus_label(step: Any) -> str:
        if step.action == "cut":
            return f"the {step.thing} on the board"
        if step.action == "add":
            return f"the {step.thing} in the bowl"
        if step.action == "pour":
            return f"the {step.thing} in the bowl"
        return "the bowl's contents"

    def _ordering(self, index: int, rng: np.random.Generator, intro: str, variant: str, images: list[Image.Image],
                  regions: _Regions, facts: dict[str, Any], shown: list[int], fmt: dict[str, str],
                  generator: str) -> Sample:
        """An "order" or "next" question over images whose chronological ranks are `shown`."""
        chronological = [shown.index(r) + 1 for r in range(len(shown))]  # image numbers, first to last
        facts["chronological_images"] = chronological
        if variant == "order":
            correct = _order_text(chronological)
            distractors = [_order_text(list(p)) for p in _near_permutations(tuple(chronological), rng, 3)]
        else:
            pos = int(rng.integers(len(shown) - 1))
            ref, nxt = chronological[pos], chronological[pos + 1]
            facts["ref_image"], facts["next_image"] = ref, nxt
            fmt = {**fmt, "ref": str(ref)}
            correct = f"image {nxt}"
            distractors = [f"image {k}" for k in range(1, len(shown) + 1) if k not in (ref, nxt)]
        return self._sample(index, rng, intro, variant, images, regions, facts, correct, distractors, fmt, generator)

    def _sample(self, index: int, rng: np.random.Generator, intro: str, variant: str, images: list[Image.Image],
                regions: _Regions, facts: dict[str, Any], correct: str, distractors: list[str],
                fmt: dict[str, str], generator: str) -> Sample:
        facts["variant"], facts["answer_text"] = variant, correct
        options, answer = place_answer(correct, distractors, self.slot(index), rng)
        line = pick(rng, COOK_IMAGE_LINES)
        lines = [line.format(n=j + 1) for j in range(len(images))]
        question = "\n".join([pick(rng, COOK_INTROS[intro]).format(**fmt), *lines,
                              pick(rng, COOK_QUESTIONS[variant]).format(**fmt)])
        return Sample(question=question, options=options, answer=answer, images=images, regions=regions.items,
                      facts=facts, generator=generator)

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        regions = regions_by_id(record)
        metas = f["images"]
        source = f["source"]
        if source == "procedural":
            how = ("Each step of the recipe leaves a change that stays (an item sliced, added, liquid poured, "
                   "everything mixed, then cooked), so what is already done in a frame tells when it was taken.")
        elif source == "annotated video":
            how = "Each frame belongs to one annotated step of the video; the steps' times give the order."
        else:
            how = "Each frame has its time in the video; sorting by time gives the order."
        summary = pick(rng, COOK_SUMMARIES).format(how=how, k=len(metas))
        captions, t2r, r2r = [], [], []
        for m in metas:
            n = m["image"] + 1
            if source == "procedural":
                step = f["steps"][m["step"]]
                done = [s["text"] for s in f["steps"][: m["step"] + 1]]
                captions.append(f"Image {n}: the counter after step {m['step'] + 1} of the {f['recipe']}, "
                                f"'{step['text']}' ({_seconds(m['time_s'])} into the clip); done so far: "
                                f"{join_and(done)}.")
                t2r.append(f"'{m['focus']}' → {cite(regions[m['region']])}")
            elif source == "annotated video":
                captions.append(f"Image {n}: a frame at {m['time_s']:g} s of {f['video']}, during the step "
                                f"'{m['step_text']}'.")
                t2r.append(f"'{m['step_text']}' → {cite(regions[m['region']])}")
            else:
                captions.append(f"Image {n}: the frame shown at {m['time_s']:g} s of {f['video']} "
                                f"({f['duration_s']:g} s long).")
                t2r.append(f"'image {n}' → {cite(regions[m['region']])}, the frame at {m['time_s']:g} s")
        by_time = sorted(metas, key=lambda m: m["time_s"])
        chain = " → ".join(f"[{m['region']}] ({_seconds(m['time_s'])})" for m in by_time)
        r2r.append(f"In time order: {chain}.")
        if source == "procedural":
            for a, b in itertools.pairwise(by_time):
                new = [s["text"] for s in f["steps"][a["step"] + 1: b["step"] + 1]]
                done = join_and([f"'{t}'" for t in new])
                r2r.append(f"[{a['region']}] → [{b['region']}]: image {b['image'] + 1} keeps everything of image "
                           f"{a['image'] + 1} and adds the result of {done}.")
        variant = f["variant"]
        if variant == "order":
            why = f"From first to last the images are {_order_text(f['chronological_images'])}"
        elif variant == "next":
            why = f"Image {f['next_image']} is the one right after image {f['ref_image']}"
        elif variant == "between":
            why = f"Going from image 1 to image 2 the step '{f['answer_text']}' was done"
        else:
            why = f"Image {f['ref_image']} is taken during the step '{f['answer_text']}'"
        return _stages(summary, captions, t2r, r2r, why, record.answer)


def _distinct_frames(images: np.ndarray, threshold: float = 2.0) -> bool:
    """Every pair of frames differs by more than `threshold` grey levels on average (not frozen or black)."""
    small = [np.asarray(Image.fromarray(a).resize((64, 48)), dtype=np.float32) for a in images]
    return all(np.abs(a - b).mean() > threshold for a, b in itertools.combinations(small, 2))


# image_puzzle ----------------------------------------------------------------------------------------------------

PUZZLE_INTROS = [
    "One picture was cut into {n} pieces ({rows} rows × {cols} columns) and the pieces were shuffled:",
    ("The following {n} images are the pieces of a single video frame cut into a {rows} × {cols} grid, in a "
     "random order:"),
]
PUZZLE_IMAGE_LINES = ["Piece {n}: <image>", "Image {n}: <image>"]
PUZZLE_QUESTIONS = {
    "arrangement": [
        "Which arrangement restores the picture (rows listed from top to bottom, pieces from left to right)?",
        "How must the pieces be placed to rebuild the frame (top row first, each row from left to right)?",
    ],
    "corner": ["Which piece belongs in the {corner} corner?", "Which image is the {corner} corner of the picture?"],
    "neighbour": ["Which piece goes directly to the right of piece {ref}?",
                  "In the restored picture, which piece sits immediately right of piece {ref}?"],
}
GRIDS = [(2, 2), (2, 3), (3, 2)]
CORNERS = {"top-left": (0, 0), "top-right": (0, -1), "bottom-left": (-1, 0), "bottom-right": (-1, -1)}


def _arrangement_text(grid: list[list[int]]) -> str:
    return "; ".join(f"row {r + 1}: " + ", ".join(str(k) for k in row) for r, row in enumerate(grid))


def _swapped(grid: list[list[int]], a: int, b: int) -> list[list[int]]:
    """The grid with the pieces in cells a and b (row-major) exchanged: a near miss of the right arrangement."""
    flat = [k for row in grid for k in row]
    flat[a], flat[b] = flat[b], flat[a]
    cols = len(grid[0])
    return [flat[r:r + cols] for r in range(0, len(flat), cols)]


class ImagePuzzle(SequentialTask):
    name = "image_puzzle"
    uses_source = True

    def build(self, index: int, rng: np.random.Generator) -> Sample | None:
        rows, cols = pick(rng, GRIDS)
        frame, objects, origin = self._real_frame(rng) if self.videos else self._procedural_frame(rng)
        procedural = origin["source"] == "procedural"
        w, h = self.size
        xs = [round(c * w / cols) for c in range(cols + 1)]
        ys = [round(r * h / rows) for r in range(rows + 1)]
        cells = [(r, c) for r in range(rows) for c in range(cols)]
        pieces = [np.asarray(frame.crop((xs[c], ys[r], xs[c + 1], ys[r + 1])), dtype=np.float32) for r, c in cells]
        if min(p.std() for p in pieces) < 6 or not _distinct_frames(np.stack(
                [np.asarray(Image.fromarray(p.astype(np.uint8)).resize((48, 48))) for p in pieces]), 6.0):
            return None  # flat or look-alike pieces: the arrangement would not be determined by the content
        n = len(cells)
        while True:
            shown = rng.permutation(n).tolist()  # image j shows cell shown[j]
            if shown != list(range(n)):
                break
        sizes = {j: (xs[cells[shown[j]][1] + 1] - xs[cells[shown[j]][1]], ys[cells[shown[j]][0] + 1] -
                     ys[cells[shown[j]][0]]) for j in range(n)}
        regions = _Regions(sizes)
        images, images_meta = [], []
        for j, cell in enumerate(shown):
            r, c = cells[cell]
            x0, y0 = xs[c], ys[r]
            images.append(frame.crop((x0, y0, xs[c + 1], ys[r + 1])))
            parts = []
            for o in objects:
                bx = (max(o["box"][0], x0) - x0, max(o["box"][1], y0) - y0,
                      min(o["box"][2], xs[c + 1]) - x0, min(o["box"][3], ys[r + 1]) - y0)
                if (bx[2] - bx[0]) * (bx[3] - bx[1]) >= 30:
                    rid = regions.add(j, bx, f"part of the {o['name']}")
                    if rid:
                        parts.append({"name": o["name"], "region": rid, "box": regions.items[-1].box})
            if not procedural:
                parts.append({"name": "the whole piece", "region": regions.add(j, (0, 0, *sizes[j]), f"piece {j + 1}"),
                              "box": [0, 0, *sizes[j]]})
            images_meta.append({"image": j, "row": r + 1, "col": c + 1, "parts": parts,
                                "tone": _tone(pieces[cell])})
        grid = [[0] * cols for _ in range(rows)]
        for j, cell in enumerate(shown):
            r, c = cells[cell]
            grid[r][c] = j + 1
        seams = self._seams(pieces, rows, cols, grid, shown)
        facts: dict[str, Any] = {**origin, "rows": rows, "cols": cols, "grid": grid,
                                 "images": images_meta, "objects": objects, "seams": seams,
                                 "cell_edges_x": xs, "cell_edges_y": ys}
        variant = pick(rng, list(PUZZLE_QUESTIONS))
        fmt = {"n": str(n), "rows": str(rows), "cols": str(cols)}
        if variant == "arrangement":
            correct = _arrangement_text(grid)
            swaps = (_swapped(grid, *rng.choice(n, size=2, replace=False)) for _ in range(50))
            distractors = distinct_distractors(correct, map(_arrangement_text, swaps), 3)
        elif variant == "corner":
            corner = pick(rng, list(CORNERS))
            r, c = CORNERS[corner]
            piece = grid[r][c]
            facts["corner"], facts["corner_piece"] = corner, piece
            fmt["corner"] = corner
            correct = f"piece {piece}"
            others = [k for k in range(1, n + 1) if k != piece]
            distractors = [f"piece {others[i]}" for i in rng.permutation(len(others))[:3]]
        else:
            r, c = int(rng.integers(rows)), int(rng.integers(cols - 1))
            ref, right = grid[r][c], grid[r][c + 1]
            facts["ref_piece"], facts["right_piece"] = ref, right
            fmt["ref"] = str(ref)
            correct = f"piece {right}"
            others = [k for k in range(1, n + 1) if k not in (ref, right)]
            distractors = [f"piece {others[i]}" for i in rng.permutation(len(others))[:3]]
        facts["variant"], facts["answer_text"] = variant, correct
        options, answer = place_answer(correct, distractors, self.slot(index), rng)
        line = pick(rng, PUZZLE_IMAGE_LINES)
        lines = [line.format(n=j + 1) for j in range(n)]
        question = "\n".join([pick(rng, PUZZLE_INTROS).format(**fmt), *lines,
                              pick(rng, PUZZLE_QUESTIONS[variant]).format(**fmt)])
        return Sample(question=question, options=options, answer=answer, images=images, regions=regions.items,
                      facts=facts, generator=GENERATOR if procedural else REAL_GENERATOR)

    def _procedural_frame(self, rng: np.random.Generator) -> tuple[Image.Image, list[dict[str, Any]], dict[str, Any]]:
        w, h = self.size
        n = int(rng.integers(4, 7))
        things = []
        for color, shape in random_looks(rng, n):
            radius = float(rng.uniform(0.07, 0.12) * h)
            start = (float(rng.uniform(radius, w - radius)), float(rng.uniform(radius, h - radius)))
            velocity = (float(rng.uniform(-0.1, 0.1) * w), float(rng.uniform(-0.1, 0.1) * h))
            things.append(Thing(color, shape, radius, Trajectory.line(start, velocity, 1.0)))
        scene = MotionScene(self.size, 1.0, FPS, things, int(rng.integers(1 << 31)))
        with open_clip(scene) as sampler:
            frames = sampler.read(sampler.random(1, rng))
        t = frames.times[0]
        objects = []
        for thing in things:
            obs = scene.observe(thing, t)
            if obs.box is not None and obs.visible > 0.2:
                objects.append({"name": thing.name, "box": list(obs.box)})
        return to_image(frames.images[0], self.size), objects, {"source": "procedural", "time_s": round(t, 2)}

    def _real_frame(self, rng: np.random.Generator) -> tuple[Image.Image, list[dict[str, Any]], dict[str, Any]]:
        info = pick(rng, self.videos)
        with FrameSampler(info.path, info) as sampler:
            lo, hi = int(0.05 * info.frames), max(int(0.05 * info.frames), int(0.95 * info.frames) - 1)
            frames = sampler.read(sampler.random(1, rng, first=lo, last=hi))
        origin = {"source": "video", "video": Path(info.path).name, "time_s": round(frames.times[0], 2),
                  "frame": frames.indices[0]}
        return _fit(frames.images[0], self.size), [], origin

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

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        regions = regions_by_id(record)
        rows, cols, grid = f["rows"], f["cols"], f["grid"]
        procedural = f["source"] == "procedural"
        clue = ("shapes cut by the piece edges must line up again, and the sky belongs at the top" if procedural
                else "the picture must continue smoothly across every edge between neighbouring pieces")
        summary = pick(rng, [
            "The {n} pieces form a {rows} × {cols} grid. To place them I use what runs across their edges: {clue}.",
            "I need to put {n} shuffled pieces back into a {rows} × {cols} frame; {clue}.",
        ]).format(n=rows * cols, rows=rows, cols=cols, clue=clue)
        captions, t2r = [], []
        for m in f["images"]:
            n = m["image"] + 1
            shapes = [p["name"] for p in m["parts"] if p["name"] != "the whole piece"]
            if procedural:
                what = f"parts of the {join_and(shapes)}" if shapes else "only backdrop"
                row_hint = "sky" if m["row"] == 1 else "ground" if m["row"] == rows else "the horizon area"
                captions.append(f"Piece {n}: {what}, over {row_hint}; {m['tone']}.")
            else:
                box = regions[m["parts"][-1]["region"]].box
                captions.append(f"Piece {n}: a {box[2]:g}×{box[3]:g} px crop of the frame, {m['tone']}.")
            for p in m["parts"]:
                phrase = f"part of the {p['name']}" if p["name"] != "the whole piece" else f"piece {n}"
                t2r.append(f"'{phrase}' → {cite(regions[p['region']])}")
        r2r = []
        for s in f["seams"]:
            a, b = s["pieces"]
            rel = "to the right of" if s["side"] == "right" else "below"
            shared = ""
            if procedural:
                pa = {p["name"]: p["region"] for p in f["images"][a - 1]["parts"]}
                pb = {p["name"]: p["region"] for p in f["images"][b - 1]["parts"]}
                common = [name for name in pa if name in pb]
                if common:
                    shared = "; " + ", ".join(f"the {name} continues from [{pa[name]}] into [{pb[name]}]"
                                              for name in common)
            r2r.append(f"Piece {b} goes {rel} piece {a}: the pixels across that edge differ by "
                       f"{s['difference']:g} grey levels on average{shared}.")
        r2r.append("Restored grid: " + _arrangement_text(grid) + ".")
        variant = f["variant"]
        if variant == "arrangement":
            why = f"The pieces fit together as {_arrangement_text(grid)}"
        elif variant == "corner":
            why = f"Piece {f['corner_piece']} sits in the {f['corner']} corner of the restored grid"
        else:
            why = f"In the restored grid piece {f['right_piece']} is immediately right of piece {f['ref_piece']}"
        return _stages(summary, captions, t2r, r2r, why, record.answer)


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


TASKS = [SpeedComparison, MotionDetection, CookingProcess, ImagePuzzle]
