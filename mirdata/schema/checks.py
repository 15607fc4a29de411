"""The pandera schema of a MIR record, and the checks that need more than one field or more than one record.

`check_records` runs the whole schema lazily and returns every failure at once as (record id, field, problem)
rows. Checks that depend on another field's type (e.g. counting placeholders needs `images` to be a list) pass
quietly when that type is wrong: the type check of that field reports it, once.

Every check sees whole columns as Python lists and answers one bool per record in a single comprehension:
no per-row dicts or pandas rows, which keeps the schema part of `mirdata validate` well under a second on the
full release (benchmarks/bench_validate.py).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pandera.pandas as pa

from mirdata.registry import CATEGORIES, category_of
from mirdata.schema.record import (
    IMAGE_TOKEN,
    LETTERS,
    is_dataset_relpath,
    parse_options,
)

FIELDS = ("id", "category", "task", "images", "question", "options", "answer", "summary", "caption",
          "text2region", "region2region", "conclusion", "regions", "difficulty", "pass_rate", "meta")
TEXT_STAGES = ("summary", "text2region", "region2region", "conclusion")
SIZES = "_image_sizes"  # added by the file checks: [(width, height) or None] per image
_PARSED_OPTIONS = "_parsed_options"  # derived once: [(label, text)] per record, or None when options are no str list


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


class _Absent:
    """Marks a field the record does not have, so that 'missing' and 'null' stay distinct."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()
_MISSING = "required field is missing"

# -- small predicates ---------------------------------------------------------------------------------------


# Type tests as set(map(type, ...)) run in C: the schema visits every value of 22k records several times.
_STR = {str}
_NUMBER = {int, float}


def _is_str_list(v: Any) -> bool:
    return type(v) is list and set(map(type, v)) <= _STR


def _nonempty_str(v: Any) -> bool:
    return type(v) is str and v.strip() != ""


def _is_number(v: Any) -> bool:
    return type(v) in _NUMBER


# The three ways a conclusion states its letter ("... the answer is B", "(B)", "B. ..." or a bare "B"), each
# capturing it. The keyword is case-insensitive, the letter must be a capital: "the answer is a red car" states
# nothing. Their matches cannot overlap with a different letter, so running them apart finds the same letters
# as one alternation would, and lets the keyword search start at the first keyword instead of trying the
# pattern at every position.
_STATED_KEYWORD = re.compile(r"\b(?i:answer|option|choice) \s* (?i:is|:|=)? \s* (?i:option\s*)? \(? \b([A-Z])\b \)?",
                             re.VERBOSE)
_STATED_PARENS = re.compile(r"\(([A-Z])\)")
_STATED_LEADING = re.compile(r"\s* \(? ([A-Z]) \)? \s* (?:[.:)]|$)", re.VERBOSE)
_KEYWORDS = ("answer", "option", "choice")


def _first_keyword(text: str) -> int:
    """Where the keyword search may start: in an ASCII text (where lower() keeps positions and matches what the
    pattern's case-insensitivity matches) the first keyword, or the end when there is none; else 0."""
    if not text.isascii():
        return 0
    low = text.lower()
    found = [i for i in map(low.find, _KEYWORDS) if i >= 0]
    return min(found) if found else len(text)


def stated_letters(conclusion: str) -> set[str]:
    """Option letters a conclusion states as its answer ('... the answer is B.', '(B)', 'B. ...', 'B')."""
    letters = set(_STATED_KEYWORD.findall(conclusion, _first_keyword(conclusion)))
    letters.update(_STATED_PARENS.findall(conclusion))
    leading = _STATED_LEADING.match(conclusion)
    if leading:
        letters.add(leading.group(1))
    return letters


def _parse_options(options: Any) -> list[tuple[str | None, str]] | None:
    if not _is_str_list(options):
        return None
    return parse_options(options)


# -- field rules: one value at a time ------------------------------------------------------------------------

def _caption_ok(v: Any) -> bool:
    return _is_str_list(v) and all(map(str.strip, v))


def _pass_rate_ok(v: Any) -> bool:
    return v is None or (_is_number(v) and 0 <= v <= 1)


def _bad_path(paths: list[str]) -> str:
    return repr(next(p for p in paths if not is_dataset_relpath(p)))


# field -> [(problem, rule, how to show a bad value)]; failure messages end with ", got <the value>".
FieldRule = tuple[str, Callable[[Any], bool], Callable[[Any], str] | None]

_FIELD_RULES: dict[str, list[FieldRule]] = {
    "id": [("must be a non-empty string", _nonempty_str, None)],
    "category": [(f"must be one of {', '.join(CATEGORIES)}", lambda v: type(v) is str and v in CATEGORIES, None)],
    "task": [("must be a registered task", lambda v: type(v) is str and category_of(v) is not None, None)],
    "images": [
        ("must be a list of at least 2 paths", lambda v: _is_str_list(v) and len(v) >= 2, None),
        ("image paths must be relative and stay inside the dataset folder",
         lambda v: not _is_str_list(v) or all(map(is_dataset_relpath, v)), _bad_path),
    ],
    "question": [("must be a non-empty string", _nonempty_str, None)],
    "options": [("must be a list of at least 2 strings", lambda v: _is_str_list(v) and len(v) >= 2, None)],
    "answer": [("must be one capital letter", lambda v: type(v) is str and len(v) == 1 and v in LETTERS, None)],
    "caption": [("must be a list of non-empty strings", _caption_ok, None)],
    **{stage: [("must be a non-empty string", _nonempty_str, None)] for stage in TEXT_STAGES},
    "regions": [("must be a list", lambda v: type(v) is list, None)],
    "difficulty": [("must be easy, hard or null",
                    lambda v: v is None or (type(v) is str and v in ("easy", "hard")), None)],
    "pass_rate": [("must be a number in [0, 1] or null", _pass_rate_ok, None)],
    "meta": [("must be an object", lambda v: type(v) is dict, None)],
}


# -- record rules: whole columns in, one bool per record out --------------------------------------------------

def _task_in_category(task: list[Any], category: list[Any]) -> list[bool]:
    return [type(t) is not str or type(c) is not str or category_of(t) is None or c not in CATEGORIES
            or category_of(t) == c for t, c in zip(task, category)]


def _placeholders_match(question: list[Any], images: list[Any]) -> list[bool]:
    return [type(q) is not str or type(im) is not list or q.count(IMAGE_TOKEN) == len(im)
            for q, im in zip(question, images)]


def _captions_match(caption: list[Any], images: list[Any]) -> list[bool]:
    return [type(c) is not list or type(im) is not list or len(c) == len(im) for c, im in zip(caption, images)]


def _labels_contiguous(parsed: list[Any]) -> list[bool]:
    # More options than letters fails here (zip stops at Z), never in an exception that would drop the whole check.
    return [p is None or (len(p) <= len(LETTERS) and all(label == letter for (label, _), letter in zip(p, LETTERS)))
            for p in parsed]


def _option_texts_unique(parsed: list[Any]) -> list[bool]:
    return [p is None or len({text.casefold() for _, text in p}) == len(p) for p in parsed]


def _answer_is_label(parsed: list[Any], answer: list[Any]) -> list[bool]:
    return [p is None or (type(a) is str and any(label == a for label, _ in p)) for p, a in zip(parsed, answer)]


def _conclusion_states_answer(conclusion: list[Any], answer: list[Any]) -> list[bool]:
    return [not _nonempty_str(c) or type(a) is not str or stated_letters(c) == {a} for c, a in zip(conclusion, answer)]


_REGION_KEYS = frozenset(("id", "image", "box", "label"))


def _region_problem(regions: Any, images: Any, sizes: Any) -> str | None:
    """The first thing wrong with one record's regions, or None."""
    if type(regions) is not list:
        return None
    n_images = len(images) if type(images) is list else None
    if type(sizes) is not list:
        sizes = ()
    seen = set()
    for k, r in enumerate(regions):
        if type(r) is not dict or not r.keys() >= _REGION_KEYS:
            return f"region {k} is not an object with id, image, box, label"
        rid = r["id"]
        if type(rid) is not str or not rid:
            return f"region {k} id {rid!r} is not a non-empty string"
        if rid in seen:
            return f"region id {rid!r} is used twice"
        seen.add(rid)
        img, box = r["image"], r["box"]
        if type(img) is not int or (n_images is not None and not 0 <= img < n_images):
            return f"region {rid!r} names image {img!r}, but the record has {n_images} images"
        if type(box) is not list or len(box) != 4 or not set(map(type, box)) <= _NUMBER:
            return f"region {rid!r} box {box!r} is not [x0, y0, x1, y1]"
        x0, y0, x1, y1 = box
        if not (x0 < x1 and y0 < y1):
            return f"region {rid!r} box {box} is empty or inverted"
        size = sizes[img] if img < len(sizes) else None
        if size is not None:
            w, h = size
            if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
                return f"region {rid!r} box {box} lies outside image {img} ({w}x{h})"
    return None


def _regions_ok(regions: list[Any], images: list[Any], sizes: list[Any]) -> list[bool]:
    return [type(r) is not list or not r or _region_problem(r, im, s) is None
            for r, im, s in zip(regions, images, sizes)]


def _first_occurrence(keys: list[Any]) -> list[bool]:
    """False for a key (not None) already seen in an earlier record."""
    distinct = set(keys)
    if len(distinct) == len(keys) - max(keys.count(None) - 1, 0):  # no repeats but of None: one pass in C
        return [True] * len(keys)
    seen: set[Any] = set()
    ok = []
    for k in keys:
        ok.append(k is None or k not in seen)
        seen.add(k)
    return ok


def _ids_unique(ids: list[Any]) -> list[bool]:
    return _first_occurrence([i if type(i) is str else None for i in ids])


def _question_images_unique(question: list[Any], images: list[Any]) -> list[bool]:
    return _first_occurrence([(q, tuple(im)) if type(q) is str and _is_str_list(im) else None
                              for q, im in zip(question, images)])


_REGION_CHECK = "region check"  # the message comes from _region_problem, per failing record

# (field reported, problem, rule, the columns the rule reads)
_RECORD_RULES: list[tuple[str, str, Callable[..., list[bool]], tuple[str, ...]]] = [
    ("task", "task does not belong to its category", _task_in_category, ("task", "category")),
    ("question", "number of <image> placeholders differs from the number of images", _placeholders_match,
     ("question", "images")),
    ("caption", "number of captions differs from the number of images", _captions_match, ("caption", "images")),
    ("options", "option labels are not contiguous letters from A ('A. ...', 'B. ...')", _labels_contiguous,
     (_PARSED_OPTIONS,)),
    ("options", "two options have the same text", _option_texts_unique, (_PARSED_OPTIONS,)),
    ("answer", "answer is not one of the option labels", _answer_is_label, (_PARSED_OPTIONS, "answer")),
    ("conclusion", "conclusion does not state the answer letter (and only it)", _conclusion_states_answer,
     ("conclusion", "answer")),
    ("regions", _REGION_CHECK, _regions_ok, ("regions", "images", SIZES)),
    ("id", "id is used by an earlier record", _ids_unique, ("id",)),
    ("question", "same question and images as an earlier record", _question_images_unique, ("question", "images")),
]


def _series(values: list[bool], index: pd.Index) -> pd.Series:
    return pd.Series(values, index=index, dtype=bool)


def _present_check(name: str) -> pa.Check:
    return pa.Check(lambda s: _series([v is not _ABSENT for v in s.tolist()], s.index), ignore_na=False,
                    name=f"{name}_present", error=f"{name}|{_MISSING}")


def _field_check(name: str, problem: str, rule: Callable[[Any], bool]) -> pa.Check:
    return pa.Check(lambda s: _series([v is _ABSENT or rule(v) for v in s.tolist()], s.index), ignore_na=False,
                    name=f"{name}_valid", error=f"{name}|{problem}")


def _record_check(field: str, problem: str, rule: Callable[..., list[bool]], columns: tuple[str, ...]) -> pa.Check:
    def check(df: pd.DataFrame) -> pd.Series:
        return _series(rule(*(df[c].tolist() for c in columns)), df.index)

    return pa.Check(check, ignore_na=False, name=rule.__name__.lstrip("_"), error=f"{field}|{problem}")


# Columns are nullable for pandera: null is a value our rules judge (and name), never silently skipped.
RECORD_SCHEMA = pa.DataFrameSchema(
    {name: pa.Column(object, checks=[_present_check(name), *(_field_check(name, p, r) for p, r, _ in rules)],
                     nullable=True, required=True)
     for name, rules in _FIELD_RULES.items()},
    checks=[_record_check(*rule) for rule in _RECORD_RULES],
    strict=False,
    coerce=False,
)


_PICK_FIELDS = operator.itemgetter(*FIELDS)


def records_frame(raw: list[dict[str, Any]], image_sizes: list[list[Any] | None] | None = None) -> pd.DataFrame:
    """One object column per field (absent fields hold a sentinel), plus the derived columns the checks share."""
    rows = []
    for r in raw:
        try:
            rows.append(_PICK_FIELDS(r))  # every field there: one C call
        except KeyError:
            rows.append(tuple(r.get(name, _ABSENT) for name in FIELDS))
    data = {name: pd.Series(column, dtype=object) for name, column in zip(FIELDS, zip(*rows))}
    data[_PARSED_OPTIONS] = pd.Series([_parse_options(o) for o in data["options"].tolist()], dtype=object)
    data[SIZES] = pd.Series(image_sizes if image_sizes is not None else [None] * len(raw), dtype=object)
    return pd.DataFrame(data)


def check_records(raw: list[dict[str, Any]], image_sizes: list[list[Any] | None] | None = None,
                  lines: list[int] | None = None) -> list[Failure]:
    """Every schema failure of `raw` records, in record order. `image_sizes` enables the region-bounds check;
    `lines` are the records' line numbers in their file (default: 1, 2, ...)."""
    if not raw:
        return []
    try:
        RECORD_SCHEMA.validate(records_frame(raw, image_sizes), lazy=True)
    except pa.errors.SchemaErrors as e:
        return _failures(e.failure_cases, raw, image_sizes, lines)
    return []


def describe(value: Any) -> str:
    """A short description of a bad value for a failure message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


def _failures(cases: pd.DataFrame, raw: list[dict[str, Any]], image_sizes: list[Any] | None,
              lines: list[int] | None) -> list[Failure]:
    out: dict[tuple[int, str, str], Failure] = {}
    for check, index in zip(cases["check"].astype(str), cases["index"]):
        if "|" not in check or index is None or pd.isna(index):
            continue
        i = int(index)
        field, problem = check.split("|", 1)
        value = raw[i].get(field, _ABSENT)
        field_rule = next((rule for rule in _FIELD_RULES.get(field, ()) if rule[0] == problem), None)
        if problem == _REGION_CHECK:
            sizes = image_sizes[i] if image_sizes is not None else None
            problem = _region_problem(value, raw[i].get("images"), sizes) or problem
        elif field_rule is not None:  # a field rule: show the value
            problem = f"{problem}, got {(field_rule[2] or describe)(value)}"
        rid = raw[i].get("id")
        name = rid if isinstance(rid, str) else ""
        out.setdefault((i, field, problem), Failure(lines[i] if lines else i + 1, name, field, problem))
    return [out[k] for k in sorted(out)]
