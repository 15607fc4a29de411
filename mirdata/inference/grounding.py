"""How well a response grounds its reasoning: the boxes it cites, matched to a record's true regions.

A response cites a region as the reasoning does (`[r1] in image 2, box [12, 40, 96, 88]`, see `citations`). The
cited boxes are matched one-to-one to the true regions by Hungarian matching on IoU. The *region* score sums the
matched IoUs and divides by the number of true regions, or by the number of cited boxes when there are more of
those: every cited box that matches nothing counts as an IoU of 0, and citing exactly the true boxes scores 1. The
*image* score is the share of cited boxes whose stated image is the image of the true region the box is matched to
(a box that overlaps no true region is wrong); a response that cites nothing scores 0.

Boxes are compared at whole-pixel precision, the precision the reasoning cites them at, so a record's own text
scores exactly 1; IoU treats `[x0, y0, x1, y1]` as a continuous rectangle of area `(x1 - x0) * (y1 - y0)`. The same
box cited twice in the same image counts once. `rl-train`'s region and image rewards and `evaluate --grounding` are
these two scores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                 "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
_ORDINAL_WORDS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
                  "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
                  "eighteenth", "nineteenth", "twentieth"]
_IMAGE_NUMBERS = {w: k + 1 for k, w in enumerate(_NUMBER_WORDS)} | {w: k + 1 for k, w in enumerate(_ORDINAL_WORDS)}

_NUM = r"(-?\d{1,9}(?:\.\d{1,9})?)"  # bounded: a runaway digit string is no coordinate
_SEP = r"\s*[,;\s]\s*"
# "image 2", "Image #2", "image two", "the second image", "2nd image"
_IMAGE = (r"(?:\bimage\s*(?:#|no\.?\s*|number\s+)?(?P<n>\d{1,4}|" + "|".join(_NUMBER_WORDS) + r")\b"
          r"|\b(?P<ord>" + "|".join(_ORDINAL_WORDS) + r"|\d{1,4}(?:st|nd|rd|th))\s+image\b)")
# what may stand between the image and its box: ", box [", " (bbox: ", "): ", " at box (" ...
_GAP = r"[\s,;:()]{0,4}(?:(?:at|with)\s+)?(?:the\s+)?(?:(?:bounding\s+)?box|bbox)?[\s:=]{0,4}[\[(]?\s*"
_CITATION = re.compile(_IMAGE + _GAP + _SEP.join([_NUM] * 4), re.I)


@dataclass(frozen=True)
class Citation:
    """A box the text cites: `image` 0-based (the text says `image + 1`), `box` in whole pixels."""

    image: int
    box: tuple[int, int, int, int]


def citations(text: str) -> list[Citation]:
    """The boxes `text` cites with their image, in order, each (image, box) once. Reads the convention
    `[r1] in image 2, box [12, 40, 96, 88]` and loose variants of it: no brackets, extra spaces, float
    coordinates, "image two" or "the second image", "bbox:" or no word before the box."""
    found: dict[Citation, None] = {}
    for m in _CITATION.finditer(text):
        number = m.group("n") or m.group("ord")
        number = number.lower()
        image = _IMAGE_NUMBERS.get(number) or int(re.sub(r"\D", "", number))
        coords = [float(v) for v in m.groups()[-4:]]
        if image >= 1 and all(math.isfinite(v) for v in coords):
            found[Citation(image - 1, _whole_pixels(coords))] = None
    return list(found)


def _whole_pixels(box: Sequence[float]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    return x0, y0, x1, y1


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two `[x0, y0, x1, y1]` boxes; 0 for boxes with no area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    area_a = max(a[2] - a[0], 0) * max(a[3] - a[1], 0)
    area_b = max(b[2] - b[0], 0) * max(b[3] - b[1], 0)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Grounding:
    """How a text's citations match the true regions: `region` is the region reward, `image` the image reward."""

    region: float
    image: float
    cited: int


def grounding(text: str, regions: Sequence[Any]) -> Grounding | None:
    """Both grounding scores of `text` against the true `regions` (dicts or `Region`s); None without regions."""
    truth = [(_field(r, "image"), _whole_pixels(_field(r, "box"))) for r in regions]
    if not truth:
        return None
    cited = citations(text)
    if not cited:
        return Grounding(0.0, 0.0, 0)
    from scipy.optimize import linear_sum_assignment

    overlap = np.array([[iou(c.box, box) for _, box in truth] for c in cited])
    same_image = np.array([[c.image == image for image, _ in truth] for c in cited], dtype=float)
    # of equally good matchings (identical boxes in several images), take the one that agrees on images
    rows, cols = linear_sum_assignment(overlap + 1e-6 * same_image, maximize=True)
    matched = overlap[rows, cols]
    right_image = (matched > 0) & (same_image[rows, cols] > 0)
    return Grounding(region=float(matched.sum()) / max(len(cited), len(truth)),
                     image=float(right_image.sum()) / len(cited), cited=len(cited))


def _field(region: Any, name: str) -> Any:
    return region[name] if isinstance(region, dict) else getattr(region, name)
