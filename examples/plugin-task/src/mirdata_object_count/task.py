"""object_count: how many shapes of a stated kind and/or colour several pictures hold.

Each record shows 4-6 pictures of flat shapes (circles, squares, triangles; red, green, blue, yellow) drawn on
faded grey photos. The question names what to count, a kind and a colour ("red triangles"), a kind of any colour
or a colour of any kind, and asks one of three families (object_count.yaml): the total over all pictures, the
picture with the most, or how many more one picture has than another.

How the answer is made fair and proven:
* The number options are drawn first: a value uniform over the answer range (2-9 in all, 1 to `max_count` more)
  and the option engine's distractors around it, inside the same range; the answer is then one of those values
  at random, and the counts are drawn to give it. Every option value is so right at exactly its share, and a
  text-only guesser is at chance (drawing the answer first and the options around it makes the range's edge
  values right more often than their share, which the audit's option-text prior finds: 28.7% against 23.4%
  chance on 600 records). The `most` family's options are all the pictures.
* The answer is solved from the instance masks of the drawn shapes, not from the plan: a shape counts only when
  its mask is painted in its colour, is big enough to see, and is a piece of its own (at least three pixels from
  every other shape). A draw the masks do not bear out is rejected by the family's constraint and drawn again.
* The regions are the boxes of the counted shapes' masks, in the pictures the question is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from scipy import ndimage

from mirdata.builders.base import Reasoning, Regions, Sample, Task, TaskConfig, cite, conclude, join_and, pick
from mirdata.builders.options import Slot, number_options, place_answer
from mirdata.errors import MirdataError
from mirdata.schema.record import IMAGE_TOKEN, Region

from mirdata_object_count.drawing import COLOURS, KINDS, PHOTOS, SIZE_RANGE, Shape, background, draw_picture, place

NAME = "object_count"
IMAGES = (4, 6)  # pictures per record, at least and at most
TOTAL_RANGE = (2, 9)  # the total family's answers: one digit, so no option is longer than another
GAP = 8  # pixels between two shapes' boxes, at least
SUBJECTS = ("kind and colour", "kind", "colour")
WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True)
class Config(TaskConfig):
    max_objects: int = 8  # shapes drawn in one picture, at most (`--set max_objects=N`)
    max_count: int = 5  # shapes of the asked kind in one picture, at most (`--set max_count=N`)

    def __post_init__(self) -> None:
        if not 3 <= self.max_objects <= 10:
            raise MirdataError(f"--set max_objects={self.max_objects}: object_count draws 3 to 10 shapes a picture")
        if not 4 <= self.max_count <= self.max_objects:  # 4: room for the difference family's options
            raise MirdataError(f"--set max_count={self.max_count}: it must lie between 4 and max_objects "
                               f"({self.max_objects})")


class ShapeFacts(TypedDict):
    kind: str
    colour: str
    box: list[int]  # of its mask: x0, y0, x1, y1 (exclusive)
    area: int  # pixels of its mask
    counted: bool  # of the asked kind and colour
    region: str | None  # its region id, when it is counted in a picture the question is about


class ImageFacts(TypedDict):
    photo: str  # the skimage.data photo behind the shapes
    scene: str  # what that photo shows
    shapes: list[ShapeFacts]  # left to right
    count: int  # counted shapes in this picture


class ObjectCountFacts(TypedDict):
    family: str  # total, most or difference
    kind: str | None  # the asked kind (None: any kind)
    colour: str | None  # the asked colour (None: any colour)
    subject: str  # the asked shapes, as the question names them: "red triangles"
    images: list[ImageFacts]
    counts: list[int]  # counted shapes per picture, from the masks
    pair: list[int]  # difference: the pictures compared (0-based, more first); else []
    left_out: int  # shapes of another kind or colour in the pictures the question is about
    answer_text: str


def total_count(facts: ObjectCountFacts) -> int:
    return sum(facts["counts"])


def image_with_most(facts: ObjectCountFacts) -> int:
    """The 1-based number of the picture with the most counted shapes."""
    return int(np.argmax(facts["counts"])) + 1


def count_difference(facts: ObjectCountFacts) -> int:
    a, b = facts["pair"]
    return facts["counts"][a] - facts["counts"][b]


def something_counted(facts: ObjectCountFacts) -> bool:
    return sum(facts["counts"]) >= TOTAL_RANGE[0]


def one_image_has_most(facts: ObjectCountFacts) -> bool:
    counts = facts["counts"]
    return max(counts) >= 1 and counts.count(max(counts)) == 1


def first_has_more(facts: ObjectCountFacts) -> bool:
    a, b = facts["pair"]
    return facts["counts"][a] > facts["counts"][b]


class ObjectCount(Task):
    Config = Config
    Facts = ObjectCountFacts
    answer_rules = {"total_count": total_count, "image_with_most": image_with_most,
                    "count_difference": count_difference}
    constraints = {"something_counted": something_counted, "one_image_has_most": one_image_has_most,
                   "first_has_more": first_has_more}

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        config: Config = self.config
        family = self.families.choose(slot)
        n = int(rng.integers(IMAGES[0], IMAGES[1] + 1))
        kind, colour = _subject(rng)
        # The option values first, then the answer one of them at random (the `most` family's options are the
        # images): every value is then right at exactly its share, at the edges of the answer range too.
        values = _number_values(family.name, config.max_count, rng) if family.name != "most" else []
        planned, pair = _plan(family.name, n, config.max_count, int(pick(rng, values)) if values else 0, rng)
        photos = [str(p) for p in rng.choice(list(PHOTOS), size=n, replace=False)]
        pictures, images, regions = [], [], Regions()
        relevant = pair or list(range(n))
        for k, (photo, count) in enumerate(zip(photos, planned)):
            others = int(rng.integers(max(0, 3 - count), config.max_objects - count + 1))
            wanted = [_matching(kind, colour, rng) for _ in range(count)]
            wanted += [_other(kind, colour, rng) for _ in range(others)]
            shapes = place([wanted[i] for i in rng.permutation(len(wanted))], config.image_size, GAP, rng)
            if shapes is None:
                return None
            picture, masks = draw_picture(background(photo, config.image_size, rng), shapes)
            proven = proven_shapes(np.asarray(picture), shapes, masks, kind, colour, config.image_size)
            if proven is None:
                return None
            for s in proven:
                if s["counted"] and k in relevant:
                    s["region"] = regions.add_pixels(k, s["box"], f"{s['colour']} {s['kind']}", config.image_size)
            pictures.append(picture)
            images.append(ImageFacts(photo=photo, scene=PHOTOS[photo], shapes=proven,
                                     count=sum(s["counted"] for s in proven)))
        subject = _subject_text(kind, colour)
        left_out = sum(len(images[k]["shapes"]) - images[k]["count"] for k in relevant)
        facts = ObjectCountFacts(family=family.name, kind=kind, colour=colour, subject=subject, images=images,
                                 counts=[im["count"] for im in images], pair=pair, left_out=left_out, answer_text="")
        if self.families.degenerate(family, facts):
            return None
        value = self.families.solve(family, facts)
        correct = f"Image {value}" if family.name == "most" else str(value)
        choices = [f"Image {k}" for k in range(1, n + 1)] if family.name == "most" else values
        if correct not in choices:  # the masks do not bear the plan out
            return None
        options, answer = place_answer(correct, [c for c in choices if c != correct], slot, rng)
        facts["answer_text"] = correct
        layout = " ".join(f"Image {k + 1}: {IMAGE_TOKEN}" for k in range(n))
        a, b = (pair[0] + 1, pair[1] + 1) if pair else (None, None)
        question = self.families.text(family, rng, images=layout, subject=subject, n=WORDS[n], a=a, b=b)
        return Sample(question, options, answer, pictures, regions.items, dict(facts),
                      generator="shapes on scikit-image photos")

    @classmethod
    def reason(cls, facts: ObjectCountFacts, regions: list[Region], answer: str, config: TaskConfig,
               rng: np.random.Generator) -> Reasoning:
        phrases = cls.registered_spec().phrases
        family, subject, counts, pair = facts["family"], facts["subject"], facts["counts"], facts["pair"]
        n = len(facts["images"])
        a, b = (pair[0] + 1, pair[1] + 1) if pair else (None, None)
        summary = pick(rng, phrases["summary"][family]).format(subject=subject, n=WORDS[n], a=a, b=b)
        caption = [pick(rng, phrases["caption"]).format(k=k + 1, scene=im["scene"], count=WORDS[len(im["shapes"])],
                                                        shapes=_shape_list(im["shapes"]))
                   for k, im in enumerate(facts["images"])]
        by_id = {r.id: r for r in regions}
        relevant = pair or list(range(n))
        cited = {k: [by_id[s["region"]] for s in facts["images"][k]["shapes"] if s["region"]] for k in relevant}
        text2region = f"{subject[0].upper()}{subject[1:]}: " + "; ".join(
            ", ".join(map(cite, cited[k])) if cited[k] else f"none in image {k + 1}" for k in relevant) + "."
        held = [f"image {k + 1} holds " + (f"{counts[k]} ({', '.join(f'[{r.id}]' for r in cited[k])})"
                                           if counts[k] else "none") for k in relevant]
        left_out = facts["left_out"]
        steps = [f"{held[0][0].upper()}{held[0][1:]}, " + ", ".join(held[1:]) + "."]
        if left_out:
            other = {(True, True): "kind or colour", (True, False): "kind", (False, True): "colour"}[
                (facts["kind"] is not None, facts["colour"] is not None)]
            steps.append(f"The other {left_out} shapes there are of another {other} and are not counted."
                         if left_out > 1 else f"The one other shape there is of another {other} and is not counted.")
        if family == "total":
            value = sum(counts)
            steps.append(f"{' + '.join(map(str, counts))} = {value}.")
        elif family == "most":
            value = counts.index(max(counts)) + 1
            runner_up = max(c for k, c in enumerate(counts) if k != value - 1)
            steps.append(f"Image {value}'s {max(counts)} is more than any other image holds (at most {runner_up}).")
        else:
            value = counts[pair[0]] - counts[pair[1]]
            steps.append(f"{counts[pair[0]]} - {counts[pair[1]]} = {value}.")
        body = phrases["conclusion"][family].format(value=value, subject=subject, a=a, b=b)
        return Reasoning(summary, caption, text2region, " ".join(steps), conclude(body, answer))


def proven_shapes(pixels: np.ndarray, shapes: list[Shape], masks: list[np.ndarray], kind: str | None,
                  colour: str | None, size: tuple[int, int]) -> list[ShapeFacts] | None:
    """The drawn shapes as their masks show them, left to right; None when a mask does not prove its shape: too
    small to see, not painted in its colour everywhere, or touching another shape (closer than three pixels)."""
    min_area = 0.4 * (SIZE_RANGE[0] * min(size)) ** 2
    pieces, _ = ndimage.label(ndimage.binary_dilation(np.any(masks, axis=0)), structure=np.ones((3, 3)))
    seen: set[int] = set()
    proven = []
    for shape, mask in zip(shapes, masks):
        piece = np.unique(pieces[mask])
        if mask.sum() < min_area or not np.all(pixels[mask] == COLOURS[shape.colour]) or len(piece) != 1 \
                or int(piece[0]) in seen:
            return None
        seen.add(int(piece[0]))
        ys, xs = np.nonzero(mask)
        proven.append(ShapeFacts(kind=shape.kind, colour=shape.colour,
                                 box=[int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                                 area=int(mask.sum()), counted=_matches(shape.kind, shape.colour, kind, colour),
                                 region=None))
    return sorted(proven, key=lambda s: (s["box"][0], s["box"][1]))


def _subject(rng: np.random.Generator) -> tuple[str | None, str | None]:
    """What to count: a kind and a colour, a kind of any colour, or a colour of any kind."""
    what = pick(rng, SUBJECTS)
    kind = pick(rng, KINDS) if what != "colour" else None
    colour = pick(rng, list(COLOURS)) if what != "kind" else None
    return kind, colour


def _subject_text(kind: str | None, colour: str | None) -> str:
    if kind and colour:
        return f"{colour} {kind}s"
    return f"{kind}s of any colour" if kind else f"{colour} shapes of any kind"


def _matches(shape_kind: str, shape_colour: str, kind: str | None, colour: str | None) -> bool:
    return (kind is None or shape_kind == kind) and (colour is None or shape_colour == colour)


def _matching(kind: str | None, colour: str | None, rng: np.random.Generator) -> tuple[str, str]:
    return kind or pick(rng, KINDS), colour or pick(rng, list(COLOURS))


def _other(kind: str | None, colour: str | None, rng: np.random.Generator) -> tuple[str, str]:
    """A shape that is not counted (for "red triangles": any other pair, red circles and blue triangles too)."""
    pairs = [(k, c) for k in KINDS for c in COLOURS if not _matches(k, c, kind, colour)]
    return pairs[int(rng.integers(len(pairs)))]


def _plan(family: str, n: int, max_count: int, target: int, rng: np.random.Generator
          ) -> tuple[list[int], list[int]]:
    """How many asked shapes each picture gets, so that the answer is `target` (`most`: any picture, at random);
    and the pair of pictures a difference question compares."""
    if family == "total":
        counts = [0] * n
        for _ in range(target):
            room = [k for k in range(n) if counts[k] < max_count]
            counts[pick(rng, room)] += 1
        return counts, []
    if family == "most":
        top = int(rng.integers(1, max_count + 1))
        counts = [int(rng.integers(0, top)) for _ in range(n)]
        counts[int(rng.integers(n))] = top
        return counts, []
    a, b = (int(k) for k in rng.choice(n, size=2, replace=False))
    more = target
    counts = [int(rng.integers(0, max_count + 1)) for _ in range(n)]
    counts[b] = int(rng.integers(0, max_count - more + 1))
    counts[a] = counts[b] + more
    return counts, [a, b]


def _total_high(max_count: int) -> int:
    return min(TOTAL_RANGE[1], IMAGES[0] * max_count)


def _number_values(family: str, max_count: int, rng: np.random.Generator) -> list[str]:
    """The number options of a total or difference question: a value drawn uniformly from the answer range and
    the option engine's distractors around it, all inside that range (so no option value is never right)."""
    low, high = (TOTAL_RANGE[0], _total_high(max_count)) if family == "total" else (1, max_count)
    count = min(3, high - low - 1)  # one value of the range to spare, so the engine finds room at its edges
    anchor = int(rng.integers(low, high + 1))
    return [str(anchor), *number_options(anchor, rng, count, step=1, fmt=lambda v: str(int(v)), quantum=1, low=low,
                                         high=high)]


def _shape_list(shapes: list[ShapeFacts]) -> str:
    """'two red triangles, a blue circle and a green square' (groups in order of first appearance)."""
    groups: dict[tuple[str, str], int] = {}
    for s in shapes:
        groups[(s["colour"], s["kind"])] = groups.get((s["colour"], s["kind"]), 0) + 1
    return join_and([f"a {c} {k}" if m == 1 else f"{WORDS[m]} {c} {k}s" for (c, k), m in groups.items()])
