"""The MIR record: one multiple-choice question interleaved with images, and its five reasoning stages."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from mirdata.paths import unsafe_reason

IMAGE_TOKEN = "<image>"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_OPTION_RE = re.compile(r"^\s*([A-Z])\s*[.)]\s*(.*)$", re.DOTALL)
_LABEL_ENDS = {".", ")"}
_LETTER_SET = set(LETTERS)


@dataclass
class Region:
    """A box in one image: `image` is the 0-based image index, `box` is [x0, y0, x1, y1] in pixels."""

    id: str
    image: int
    box: list[float]
    label: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Region":
        box = [v if type(v) in (int, float) else float(v) for v in d["box"]]  # ints stay ints: same JSON back
        return cls(id=str(d["id"]), image=int(d["image"]), box=box, label=str(d["label"]))


@dataclass
class Record:
    id: str
    category: str
    task: str
    images: list[str]
    question: str
    options: list[str]
    answer: str
    summary: str = ""
    caption: list[str] = field(default_factory=list)
    text2region: str = ""
    region2region: str = ""
    conclusion: str = ""
    regions: list[Region] = field(default_factory=list)
    difficulty: str | None = None
    pass_rate: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["meta"] = to_jsonable(self.meta)
        return d

    def to_json(self) -> str:
        """Canonical one-line JSON: field order fixed, so the same record always gives the same bytes."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Record":
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["regions"] = [r if isinstance(r, Region) else Region.from_dict(r) for r in d.get("regions") or []]
        return cls(**kwargs)

    @property
    def option_texts(self) -> list[str]:
        return [option_text(o) for o in self.options]

    @property
    def answer_text(self) -> str:
        return option_text(self.options[LETTERS.index(self.answer)])


def parse_options(options: list[str]) -> list[tuple[str | None, str]]:
    """["B. a red car", "a car"] -> [("B", "a red car"), (None, "a car")]: a label is a capital letter and "."
    or ")"; an option without one keeps its whole text. The usual "B. ..." is read without the regex."""
    return [(o[0], o[2:].strip()) if o[1:2] in _LABEL_ENDS and o[:1] in _LETTER_SET else _parse_unusual(o)
            for o in options]


def _parse_unusual(option: str) -> tuple[str | None, str]:
    m = _OPTION_RE.match(option)
    return (m.group(1), m.group(2).strip()) if m else (None, option.strip())


def parse_option(option: str) -> tuple[str | None, str]:
    """"B. a red car" -> ("B", "a red car"); an option without a label -> (None, its text)."""
    return parse_options([option])[0]


def option_label(option: str) -> str | None:
    return parse_option(option)[0]


def option_text(option: str) -> str:
    return parse_option(option)[1]


def is_dataset_relpath(path: str) -> bool:
    """True for a path that stays inside the dataset folder by its text: relative, '/'-separated, no '..' part,
    no NUL (`mirdata.paths.resolve_inside` also follows symbolic links)."""
    return unsafe_reason(path) is None


def format_options(texts: list[str]) -> list[str]:
    """["red", "blue"] -> ["A. red", "B. blue"]."""
    return [f"{LETTERS[i]}. {t}" for i, t in enumerate(texts)]


def to_jsonable(value: Any) -> Any:
    """numpy scalars/arrays and tuples to plain JSON types; floats rounded so output bytes are stable."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return round(float(value), 6)
    return value
