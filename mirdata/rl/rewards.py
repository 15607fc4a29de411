"""Rewards for reinforcement learning on MIR, in TRL's form `f(completions, **columns) -> list[float]`.

`completions` are strings, or chat-message lists as TRL passes them for conversational prompts (the assistant's
text is read). The dataset's columns arrive as keyword lists, one entry per completion: `answer` (the letter),
`options` (`"A. …"` strings) and `regions` (`{id, image, box, label}` dicts, `image` 0-based as in the record).
Every function returns one float per completion, never raises on any text, and returns None (TRL leaves the
sample out of that reward) where the reward does not apply: a record with no regions has no grounding to score.

* `accuracy_reward`: 1 when the letter stated in the completion's last `<conclusion>` section is the answer, else
  0. The letter is read by `mirdata.inference.extract`, so a conclusion that names no option, or hedges between
  two, scores 0; so does a completion with no `<conclusion>`.
* `format_reward`: the share of the five steps (`<summary>…</summary>` … `<conclusion>…</conclusion>`, as
  `curriculum-train` teaches them) that the completion writes as non-empty tagged sections in chain order: the
  longest run of steps in chain order, over 5. All five in order score 1; `<summary>` then `<conclusion>` scores
  0.4; the five in reverse order score 0.2.
* `region_reward`: the boxes the completion cites (`[rK] in image N, box [x0, y0, x1, y1]`, see `citations`) are
  matched one-to-one to the true regions by Hungarian matching on IoU, and the matched IoUs are summed and divided
  by the number of true regions, or by the number of cited boxes when there are more of those: every cited box
  that matches nothing counts as an IoU of 0. Citing exactly the true boxes scores 1.
* `image_reward`: the share of cited boxes whose stated image is the image of the true region the box is matched
  to (a box that overlaps no true region is wrong). A completion that cites nothing scores 0.

Boxes are compared at whole-pixel precision, the precision the reasoning cites them at (`builders.base.cite`
rounds), so the record's own text scores exactly 1; IoU treats `[x0, y0, x1, y1]` as a continuous rectangle of
area `(x1 - x0) * (y1 - y0)`. The same box cited twice in the same image counts once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mirdata.curriculum.stages import parse_chain
from mirdata.inference.extract import extract_answer
from mirdata.schema.tasks import STAGES as CHAIN

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


def completion_text(completion: Any) -> str:
    """The text of a completion: a string as it is, a chat-message list as its assistant turns' text."""
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, (list, tuple)):
        return ""
    texts = []
    for message in completion:
        if not isinstance(message, dict) or message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, (list, tuple)):
            texts.extend(p["text"] for p in content
                         if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str))
    return "\n".join(texts)


_CONCLUSION = re.compile(r"<conclusion>(.*?)</conclusion>", re.S | re.I)


def stated_letter(text: str, options: Sequence[str]) -> str | None:
    """The option letter the last `<conclusion>…</conclusion>` of `text` states, or None."""
    sections = _CONCLUSION.findall(text)
    return extract_answer(sections[-1], list(options)) if sections else None


def chain_order_score(text: str) -> float:
    """The format reward of one text: the longest run of the five steps in chain order, over 5."""
    steps = [CHAIN.index(step) for step, body in parse_chain(text).items() if body]
    longest: list[int] = []  # longest[k]: length of the longest in-order run ending at steps[k]
    for k, position in enumerate(steps):
        longest.append(1 + max((longest[j] for j in range(k) if steps[j] < position), default=0))
    return max(longest, default=0) / len(CHAIN)


# -- the rewards, in TRL's form ----------------------------------------------------------------------------

def accuracy_reward(completions: list[Any], answer: list[str], options: list[Sequence[str]],
                    **_: Any) -> list[float]:
    return [float(stated_letter(completion_text(c), opts) == ans)
            for c, ans, opts in zip(completions, answer, options)]


def format_reward(completions: list[Any], **_: Any) -> list[float]:
    return [chain_order_score(completion_text(c)) for c in completions]


def region_reward(completions: list[Any], regions: list[Sequence[Any]], **_: Any) -> list[float | None]:
    return [_score(completion_text(c), truth, "region") for c, truth in zip(completions, regions)]


def image_reward(completions: list[Any], regions: list[Sequence[Any]], **_: Any) -> list[float | None]:
    return [_score(completion_text(c), truth, "image") for c, truth in zip(completions, regions)]


def _score(text: str, regions: Sequence[Any], which: str) -> float | None:
    result = grounding(text, regions or [])
    return None if result is None else getattr(result, which)


RewardFunction = Callable[..., list]

# The names `--rewards` takes, in the order the defaults list them.
REWARDS: dict[str, RewardFunction] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
    "region": region_reward,
    "image": image_reward,
}
