"""The pandera schema of a MIR record, and the checks that need more than one field or more than one record.

`check_records` runs the whole schema lazily and returns every failure at once as (record id, field, problem)
rows. Checks that depend on another field's type (e.g. counting placeholders needs `images` to be a list) pass
quietly when that type is wrong: the type check of that field reports it, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pandera.pandas as pa

from mirdata.schema.record import IMAGE_TOKEN, LETTERS, option_label, option_text
from mirdata.schema.tasks import CATEGORIES, TASK_CATEGORY

FIELDS = ("id", "category", "task", "images", "question", "options", "answer", "summary", "caption",
          "text2region", "region2region", "conclusion", "regions", "difficulty", "pass_rate", "meta")
TEXT_STAGES = ("summary", "text2region", "region2region", "conclusion")
SIZES = "_image_sizes"  # added by the file checks: [(width, height) or None] per image


@dataclass(frozen=True)
class Failure:
    line: int | None  # 1-based line of records.jsonl (None for problems of no one record)
    record: str  # the record id, or "" when it has none
    field: str
    problem: str
    severity: str = "error"  # or "warning"

    def to_dict(self) -> dict[str, object]:
        return {"line": self.line, "record": self.record, "field": self.field, "problem": self.problem,
                "severity": self.severity}


# -- small predicates ---------------------------------------------------------------------------------------

def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _nonempty_str(v: Any) -> bool:
    return isinstance(v, str) and v.strip() != ""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_STATED = [
    re.compile(r"\b(?:answer|option|choice)\s*(?:is|:|=)?\s*(?:option\s*)?\(?\b([A-Z])\b\)?", re.I),
    re.compile(r"\(([A-Z])\)"),
    re.compile(r"^\s*\(?([A-Z])\)?\s*(?:[.:)]|$)"),
]


def stated_letters(conclusion: str) -> set[str]:
    """Option letters a conclusion states as its answer ('... the answer is B.', '(B)', 'B. ...', 'B')."""
    found = set()
    for pattern in _STATED:
        for m in pattern.finditer(conclusion):
            found.add(m.group(1).upper())
    return found


def _labels(options: Any) -> list[str | None] | None:
    return [option_label(o) for o in options] if _is_str_list(options) else None


# -- row checks (each returns True when the row is fine) -----------------------------------------------------

def _task_in_category(row: dict[str, Any]) -> bool:
    task, cat = row["task"], row["category"]
    if task not in TASK_CATEGORY or cat not in CATEGORIES:
        return True  # reported by the field checks
    return TASK_CATEGORY[task] == cat


def _placeholders_match(row: dict[str, Any]) -> bool:
    if not isinstance(row["question"], str) or not isinstance(row["images"], list):
        return True
    return row["question"].count(IMAGE_TOKEN) == len(row["images"])


def _captions_match(row: dict[str, Any]) -> bool:
    if not isinstance(row["caption"], list) or not isinstance(row["images"], list):
        return True
    return len(row["caption"]) == len(row["images"])


def _labels_contiguous(row: dict[str, Any]) -> bool:
    labels = _labels(row["options"])
    return labels is None or labels == list(LETTERS[: len(labels)])


def _option_texts_unique(row: dict[str, Any]) -> bool:
    if not _is_str_list(row["options"]):
        return True
    texts = [option_text(o).casefold() for o in row["options"]]
    return len(set(texts)) == len(texts)


def _answer_is_label(row: dict[str, Any]) -> bool:
    labels = _labels(row["options"])
    return labels is None or (isinstance(row["answer"], str) and row["answer"] in labels)


def _conclusion_states_answer(row: dict[str, Any]) -> bool:
    if not _nonempty_str(row["conclusion"]) or not isinstance(row["answer"], str):
        return True
    return stated_letters(row["conclusion"]) == {row["answer"]}


def _region_problems(row: dict[str, Any]) -> str | None:
    regions, images = row["regions"], row["images"]
    if not isinstance(regions, list):
        return None
    sizes = row.get(SIZES)
    n_images = len(images) if isinstance(images, list) else None
    seen = set()
    for k, r in enumerate(regions):
        if not isinstance(r, dict) or not {"id", "image", "box", "label"} <= r.keys():
            return f"region {k} is not an object with id, image, box, label"
        if r["id"] in seen:
            return f"region id {r['id']!r} is used twice"
        seen.add(r["id"])
        img, box = r["image"], r["box"]
        if not isinstance(img, int) or isinstance(img, bool) or (n_images is not None and not 0 <= img < n_images):
            return f"region {r['id']!r} names image {img!r}, but the record has {n_images} images"
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            return f"region {r['id']!r} box {box!r} is not [x0, y0, x1, y1]"
        x0, y0, x1, y1 = box
        if not (x0 < x1 and y0 < y1):
            return f"region {r['id']!r} box {box} is empty or inverted"
        size = sizes[img] if isinstance(sizes, list) and img < len(sizes) else None
        if size is not None:
            w, h = size
            if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
                return f"region {r['id']!r} box {box} lies outside image {img} ({w}x{h})"
    return None


# (field, problem, check): field checks see one value, row checks a whole record.
FieldCheck = tuple[str, Callable[[Any], bool]]

_FIELD_CHECKS: dict[str, list[FieldCheck]] = {
    "id": [("must be a non-empty string", _nonempty_str)],
    "category": [(f"must be one of {', '.join(CATEGORIES)}", lambda v: v in CATEGORIES)],
    "task": [("must be one of the 12 MIR tasks", lambda v: v in TASK_CATEGORY)],
    "images": [("must be a list of at least 2 paths", lambda v: _is_str_list(v) and len(v) >= 2)],
    "question": [("must be a non-empty string", _nonempty_str)],
    "options": [("must be a list of at least 2 strings", lambda v: _is_str_list(v) and len(v) >= 2)],
    "answer": [("must be one capital letter", lambda v: isinstance(v, str) and len(v) == 1 and v in LETTERS)],
    "caption": [("must be a list of non-empty strings", lambda v: isinstance(v, list) and all(map(_nonempty_str, v)))],
    **{stage: [("must be a non-empty string", _nonempty_str)] for stage in TEXT_STAGES},
    "regions": [("must be a list", lambda v: isinstance(v, list))],
    "difficulty": [("must be easy, hard or null", lambda v: v is None or v in ("easy", "hard"))],
    "pass_rate": [("must be a number in [0, 1] or null", lambda v: v is None or (_is_number(v) and 0 <= v <= 1))],
    "meta": [("must be an object", lambda v: isinstance(v, dict))],
}

_ROW_CHECKS: list[tuple[str, str, Callable[[dict[str, Any]], bool]]] = [
    ("task", "task does not belong to its category", _task_in_category),
    ("question", "number of <image> placeholders differs from the number of images", _placeholders_match),
    ("caption", "number of captions differs from the number of images", _captions_match),
    ("options", "option labels are not contiguous letters from A ('A. ...', 'B. ...')", _labels_contiguous),
    ("options", "two options have the same text", _option_texts_unique),
    ("answer", "answer is not one of the option labels", _answer_is_label),
    ("conclusion", "conclusion does not state the answer letter (and only it)", _conclusion_states_answer),
]

_MISSING = "required field is missing"


def _present(v: Any) -> bool:
    return v is not _ABSENT


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()
_NULLABLE = {"difficulty", "pass_rate"}


def _field_column(name: str) -> pa.Column:
    checks = [pa.Check(_present, element_wise=True, error=f"{name}|{_MISSING}")]
    for problem, fn in _FIELD_CHECKS[name]:
        checks.append(pa.Check(lambda v, fn=fn: v is _ABSENT or fn(v), element_wise=True, error=f"{name}|{problem}"))
    return pa.Column(object, checks=checks, nullable=name in _NULLABLE, required=True)


def _row_check_fast(field: str, problem: str, fn: Callable[[dict[str, Any]], bool]) -> pa.Check:
    """A record-level check: `fn` sees a plain dict of the record's fields (cheaper than a pandas row)."""
    def vectorised(df: pd.DataFrame) -> pd.Series:
        names = list(df.columns)
        values = [df[c].tolist() for c in names]
        ok = [fn(_RowView(names, row)) for row in zip(*values)]
        return pd.Series(ok, index=df.index, dtype=bool)
    return pa.Check(vectorised, error=f"{field}|{problem}")


class _RowView(dict):
    def __init__(self, names: list[str], row: tuple[Any, ...]):
        super().__init__(zip(names, row))

    def __getitem__(self, key: str) -> Any:
        v = dict.get(self, key, _ABSENT)
        return None if v is _ABSENT else v


def _unique(df: pd.DataFrame, key: Callable[[dict[str, Any]], Any]) -> pd.Series:
    names = list(df.columns)
    seen: dict[Any, int] = {}
    ok = []
    for row in zip(*(df[c].tolist() for c in names)):
        k = key(_RowView(names, row))
        if k is None:
            ok.append(True)
            continue
        seen[k] = seen.get(k, 0) + 1
        ok.append(seen[k] == 1)
    return pd.Series(ok, index=df.index, dtype=bool)


def _id_key(r: dict[str, Any]) -> Any:
    return r["id"] if isinstance(r["id"], str) else None


def _question_images_key(r: dict[str, Any]) -> Any:
    if not isinstance(r["question"], str) or not _is_str_list(r["images"]):
        return None
    return (r["question"], tuple(r["images"]))


RECORD_SCHEMA = pa.DataFrameSchema(
    {name: _field_column(name) for name in FIELDS},
    checks=[
        *(_row_check_fast(f, p, fn) for f, p, fn in _ROW_CHECKS),
        _row_check_fast("regions", "region check", lambda r: _region_problems(r) is None),
        pa.Check(lambda df: _unique(df, _id_key), error="id|id is used by an earlier record"),
        pa.Check(lambda df: _unique(df, _question_images_key),
                 error="question|same question and images as an earlier record"),
    ],
    strict=False,
    coerce=False,
)


def records_frame(raw: list[dict[str, Any]], image_sizes: list[list[Any] | None] | None = None) -> pd.DataFrame:
    """One object column per field; absent fields hold a sentinel so 'missing' and 'null' stay distinct."""
    data = {name: pd.Series([r.get(name, _ABSENT) for r in raw], dtype=object) for name in FIELDS}
    if image_sizes is not None:
        data[SIZES] = pd.Series(image_sizes, dtype=object)
    return pd.DataFrame(data)


def check_records(raw: list[dict[str, Any]], image_sizes: list[list[Any] | None] | None = None,
                  lines: list[int] | None = None) -> list[Failure]:
    """Every schema failure of `raw` records, in record order. `image_sizes` enables the region-bounds check;
    `lines` are the records' line numbers in their file (default: 1, 2, ...)."""
    if not raw:
        return []
    df = records_frame(raw, image_sizes)
    try:
        RECORD_SCHEMA.validate(df, lazy=True)
    except pa.errors.SchemaErrors as e:
        return _failures(e.failure_cases, raw, image_sizes, lines)
    return []


def _failures(cases: pd.DataFrame, raw: list[dict[str, Any]], image_sizes: list[Any] | None,
              lines: list[int] | None) -> list[Failure]:
    out: dict[tuple[int, str, str], Failure] = {}
    for check, index in zip(cases["check"].astype(str), cases["index"]):
        if "|" not in check or index is None or pd.isna(index):
            continue
        i = int(index)
        field, problem = check.split("|", 1)
        if problem == "region check":
            sizes = image_sizes[i] if image_sizes is not None else None
            problem = _region_problems(_RowView([*FIELDS, SIZES], (*(raw[i].get(f, _ABSENT) for f in FIELDS), sizes)))
        rid = raw[i].get("id")
        name = rid if isinstance(rid, str) else ""
        out.setdefault((i, field, problem), Failure(lines[i] if lines else i + 1, name, field, problem))
    return [out[k] for k in sorted(out)]
