"""The judge of the five reasoning stages: code, not a model, tests each stage against the record's ground truth.

`check_stages(record)` returns every problem it finds as (stage, what is wrong). The checks:

* **present and whole** — no stage is empty; one caption per image; no stage is cut off: brackets balance,
  straight double quotes pair up, and the text ends like a finished sentence (`.`, `!`, `?`, `…`, or a closing
  bracket or quote, as in "... box [12, 40, 96, 88]").
* **answer** — the conclusion states exactly the answer letter (`stated_letters(conclusion) == {answer}`); no
  other stage says "the answer is X" with a different letter.
* **regions** — every region id a stage mentions (`[r0]`, `r3`) exists in `record.regions`; "[r1] in image 2"
  names the region's own image and "[r1] ... box [x0, y0, x1, y1]" its own box; text2region cites at least one
  region when the record has any. Every "image N" lies in 1..number of images.
* **numbers** — every number a stage writes in digits must be *grounded*. A number is grounded when it equals,
  at the precision it is written with (12 matches 12.4; 12.35 matches 12.3456; 12.30 does not), the absolute
  value of one of:
    - a number in `meta["facts"]` (numbers in the facts' strings included), or that number × 100 when the text
      writes it as a percentage ("45%" for 0.45);
    - a region's box coordinates, width, height or centre;
    - a number written in the question or the options;
    - the number of images, options or regions, or a small count/index: an integer up to
      max(4, images, options, regions), so "image 3", "the 2 cars" or "3D" need no fact behind them;
    - a position in a sequence the facts hold: "step 6", "frame 7", "the 5th object" is grounded up to the
      length of the longest list in the facts (facts count from 0, texts from 1, so the number itself need
      not appear).
  Signs are ignored ("moved 3 px left" for an offset of -3). "12,500" is grounded when 12500 is, or when 12 and
  500 both are (a list written without spaces). Derived numbers (a difference, a ratio) are not worked out
  here: the builders put every number their reasoning states into the facts, and a drafting model has to stay
  within them. Numbers written as words ("three") are not checked.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from typing import Any

from mirdata.schema.checks import stated_letters
from mirdata.schema.record import Record
from mirdata.schema.tasks import STAGES

# A number not glued to a word before it (so "r0", "H100", "SmolLM2" are names, not numbers). A run of
# comma-separated three-digit groups is kept whole; `_number_readings` decides what it means.
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])[-−]?(\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?)(%?)")
_REGION_ID = re.compile(r"(?<![A-Za-z0-9_])r(\d+)\b")
_IMAGE_REF = re.compile(r"\bimages?\s+(\d+(?:\s*(?:,|and|or|to|-|–)\s*\d+)*)\b", re.IGNORECASE)
_ORDINAL = re.compile(r"\b(?:(?:step|frame|photo|picture|view|panel|chart|option|object|item|row|column|piece|part|"
                      r"stage|round|position|place|slot)s?\s+(?:number\s+)?(\d+)|(\d+)(?:st|nd|rd|th))\b", re.IGNORECASE)
_REGION_IN_IMAGE = re.compile(r"\[(r\d+)\]\s*\(?\s*(?:(?:is|lies)\s+)?(?:in|of|on|from)?\s*(?:the\s+)?image\s+(\d+)",
                              re.IGNORECASE)
_REGION_BOX = re.compile(r"\[(r\d+)\][^\[\]\n;]{0,60}?\bbox(?:es)?\s*\[([^\[\]]*)\]", re.IGNORECASE)
_STATED_ANSWER = re.compile(r"\b(?i:answer)\s*(?:is|:|=)\s*(?:(?i:option)\s*)?\(?\b([A-Z])\b")  # a capital letter
_SENTENCE_END = ".!?…)]\"”’'"
_PAIRS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True)
class Problem:
    stage: str  # one of STAGES
    problem: str

    def __str__(self) -> str:
        return f"{self.stage}: {self.problem}"

    def to_dict(self) -> dict[str, str]:
        return {"stage": self.stage, "problem": self.problem}


def stage_texts(record: Record) -> dict[str, str | list[str]]:
    """The five stages of a record, by name."""
    return {stage: getattr(record, stage) for stage in STAGES}


def check_stages(record: Record, stages: tuple[str, ...] = STAGES) -> list[Problem]:
    """Every problem of the named stages of `record`, in stage order."""
    grounding = Grounding(record)
    problems: list[Problem] = []
    for stage in stages:
        value = getattr(record, stage)
        if stage == "caption":
            problems += _caption_problems(record, value, grounding)
        else:
            problems += [Problem(stage, p) for p in _text_problems(record, stage, value, grounding)]
    return problems


def _caption_problems(record: Record, captions: Any, grounding: Grounding) -> list[Problem]:
    if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
        return [Problem("caption", "must be a list of strings, one per image")]
    problems = []
    if len(captions) != len(record.images):
        problems.append(Problem("caption", f"{len(captions)} captions for {len(record.images)} images"))
    for k, caption in enumerate(captions):
        problems += [Problem("caption", f"caption {k + 1}: {p}")
                     for p in _text_problems(record, "caption", caption, grounding)]
    return problems


def _text_problems(record: Record, stage: str, text: Any, grounding: Grounding) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        return ["is empty"]
    problems = []
    cut = cut_off(text)
    if cut:
        problems.append(cut)
    if stage == "conclusion":
        letters = stated_letters(text)
        if letters != {record.answer}:
            stated = ", ".join(sorted(letters)) or "no letter"
            problems.append(f"states {stated} as the answer, but the answer is {record.answer}")
    else:
        wrong = sorted({m.group(1) for m in _STATED_ANSWER.finditer(text)} - {record.answer})
        if wrong:
            problems.append(f"says the answer is {', '.join(wrong)}, but it is {record.answer}")
    problems += _region_problems(record, stage, text)
    image_spans, image_problems = _image_refs(text, len(record.images))
    problems += image_problems
    problems += grounding.ungrounded(text, skip=image_spans)
    return problems


def cut_off(text: str) -> str | None:
    """Why `text` looks cut off (unbalanced brackets or quotes, no sentence end), or None when it looks whole."""
    stack: list[str] = []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in _PAIRS:
            if not stack or stack[-1] != _PAIRS[ch]:
                return f"unbalanced brackets: {ch!r} closes nothing"
            stack.pop()
    if stack:
        return f"unbalanced brackets: {stack[-1]!r} is never closed"
    if text.count('"') % 2 or text.count("“") != text.count("”"):
        return "unbalanced quotes"
    end = text.rstrip()[-1]
    if end not in _SENTENCE_END:
        return f"ends mid-sentence ({text.rstrip()[-30:]!r})"
    return None


def _region_problems(record: Record, stage: str, text: str) -> list[str]:
    regions = {r.id: r for r in record.regions}
    problems = []
    cited = {f"r{m.group(1)}" for m in _REGION_ID.finditer(text)}
    unknown = sorted(cited - regions.keys(), key=lambda rid: int(rid[1:]))
    if unknown:
        known = ", ".join(regions) or "none"
        problems.append(f"cites region(s) {', '.join(unknown)} that do not exist (regions: {known})")
    if stage == "text2region" and regions and not cited & regions.keys():
        problems.append("ties no phrase to a region (cite them as [r0], [r1], ...)")
    for m in _REGION_IN_IMAGE.finditer(text):
        region, image = regions.get(m.group(1)), int(m.group(2))
        if region is not None and image != region.image + 1:
            problems.append(f"puts [{region.id}] in image {image}, but it is in image {region.image + 1}")
    for m in _REGION_BOX.finditer(text):
        region = regions.get(m.group(1))
        if region is None:
            continue
        stated = [_parse_number(n.group(0)) for n in _NUMBER.finditer(m.group(2))]
        if len(stated) != 4 or not all(
                s is not None and _matches(s[0], s[1], abs(b)) for s, b in zip(stated, region.box)):
            box = ", ".join(f"{v:g}" for v in region.box)
            problems.append(f"gives [{region.id}] the box [{m.group(2).strip()}], but it is [{box}]")
    return problems


def _image_refs(text: str, n_images: int) -> tuple[list[tuple[int, int]], list[str]]:
    """Spans of "image N" references (their numbers are indices, not quantities) and the out-of-range ones."""
    spans, problems = [], []
    for m in _IMAGE_REF.finditer(text):
        spans.append(m.span(1))
        for n in re.findall(r"\d+", m.group(1)):
            if not 1 <= int(n) <= n_images:
                problems.append(f"mentions image {n}, but the record has {n_images} images")
    return spans, problems


def _parse_number(token: str) -> tuple[float, int] | None:
    """(absolute value, decimals written) of a plain number token."""
    token = token.lstrip("-−").rstrip("%")
    try:
        value = float(token)
    except ValueError:
        return None
    decimals = len(token.split(".", 1)[1]) if "." in token else 0
    return abs(value), decimals


def _matches(stated: float, decimals: int, fact: float) -> bool:
    return abs(stated - fact) <= 0.5 * 10.0 ** -decimals + 1e-9


def _number_readings(digits: str) -> list[list[tuple[float, int]]]:
    """The ways to read a token: "12,500.5" is 12500.5 or the list 12, 500.5; "3.5" is just 3.5."""
    if "," not in digits:
        parsed = _parse_number(digits)
        return [[parsed]] if parsed else []
    readings = [[_parse_number(digits.replace(",", ""))], [_parse_number(part) for part in digits.split(",")]]
    return [r for r in readings if None not in r]


class Grounding:
    """The numbers a record's reasoning may state, and the test of one stage's numbers against them."""

    def __init__(self, record: Record):
        values: list[float] = []
        facts = _numbers_in(record.meta.get("facts", {}))
        values += facts
        for region in record.regions:
            x0, y0, x1, y1 = region.box
            values += [x0, y0, x1, y1, x1 - x0, y1 - y0, (x0 + x1) / 2, (y0 + y1) / 2]
            values += _numbers_in(region.label)
        values += _numbers_in(record.question) + _numbers_in(record.options)
        values += [len(record.images), len(record.options), len(record.regions)]
        self.small = max(4, len(record.images), len(record.options), len(record.regions))
        self.positions = max(self.small, _longest_list(record.meta.get("facts", {})))
        self.values = sorted({abs(v) for v in values if math.isfinite(v)})
        self.percents = sorted({abs(v) * 100 for v in facts if math.isfinite(v)})

    def grounded(self, stated: float, decimals: int, percent: bool = False) -> bool:
        if decimals == 0 and stated == int(stated) and stated <= self.small:
            return True
        pools = (self.values, self.percents) if percent else (self.values,)
        tol = 0.5 * 10.0 ** -decimals + 1e-9
        for pool in pools:
            i = bisect.bisect_left(pool, stated - tol)
            if i < len(pool) and pool[i] <= stated + tol:
                return True
        return False

    def ungrounded(self, text: str, skip: list[tuple[int, int]] = ()) -> list[str]:
        """One problem per number in `text` that no fact, box or question number backs."""
        bad: list[str] = []
        positions = {m.start(1) if m.group(1) else m.start(2) for m in _ORDINAL.finditer(text)
                     if int(m.group(1) or m.group(2)) <= self.positions}
        for m in _NUMBER.finditer(text):
            if m.start(1) in positions or any(a <= m.start(1) < b for a, b in skip):
                continue
            percent = m.group(2) == "%"
            readings = _number_readings(m.group(1))
            grounded = any(all(self.grounded(v, d, percent) for v, d in reading) for reading in readings)
            if not grounded and m.group(0) not in bad:
                bad.append(m.group(0))
        if not bad:
            return []
        return [f"states {', '.join(bad)}, which no fact, region box or question number backs"]


def _longest_list(value: Any) -> int:
    if isinstance(value, dict):
        return max((_longest_list(v) for v in value.values()), default=0)
    if isinstance(value, (list, tuple)):
        return max([len(value), *(_longest_list(v) for v in value)])
    return 0


def _numbers_in(value: Any) -> list[float]:
    """Every number in a JSON-like value, numbers written inside its strings included."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str):
        out = []
        for m in _NUMBER.finditer(value):
            for reading in _number_readings(m.group(1)):
                out += [v for v, _ in reading]
        return out
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers_in(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers_in(v)]
    return []
