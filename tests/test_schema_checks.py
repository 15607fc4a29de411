"""The pandera schema: each rule on its own, null/missing/wrong-type values, and the helpers it relies on."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mirdata.schema.checks import check_records, describe, stated_letters
from mirdata.schema.record import is_dataset_relpath, parse_option
from tests.conftest import write_simple_dataset


@pytest.fixture(scope="module")
def good_records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    root = tmp_path_factory.mktemp("schema") / "ds"
    return [r.to_dict() for r in write_simple_dataset(root, per_task=1)]


def problems(records: list[dict[str, Any]], sizes: list[Any] | None = None) -> set[tuple[int, str, str]]:
    return {(f.line, f.field, f.problem) for f in check_records(records, sizes)}


def test_good_records_pass(good_records: list[dict[str, Any]]) -> None:
    sizes = [[[96, 64], [96, 64]] for _ in good_records]
    assert check_records(good_records, sizes) == []
    assert check_records([]) == []


# (what to change, field reported, start of the problem text)
FAULTS = [
    (lambda r: r.pop("summary"), "summary", "required field is missing"),
    (lambda r: r.update(question=None), "question", "must be a non-empty string, got null"),
    (lambda r: r.update(question="   "), "question", "must be a non-empty string"),
    (lambda r: r.update(category="visual"), "category", "must be one of sequential, spatial, analytical"),
    (lambda r: r.update(task="counting"), "task", "must be a registered task, got 'counting'"),
    (lambda r: r.update(task="view_3d"), "task", "task does not belong to its category"),
    (lambda r: r.update(images="a.png"), "images", "must be a list of at least 2 paths, got 'a.png'"),
    (lambda r: r.update(images=r["images"][:1]), "images", "must be a list of at least 2 paths"),
    (lambda r: r["images"].__setitem__(1, "../outside.png"), "images",
     "image paths must be relative and stay inside the dataset folder, got '../outside.png'"),
    (lambda r: r["images"].__setitem__(0, "/etc/passwd"), "images", "image paths must be relative"),
    (lambda r: r.update(question=r["question"].replace("<image>", "", 1)), "question",
     "number of <image> placeholders differs"),
    (lambda r: r.update(caption=r["caption"][:1]), "caption", "number of captions differs"),
    (lambda r: r.update(caption=["ok", ""]), "caption", "must be a list of non-empty strings"),
    (lambda r: r.update(options=["A. x"]), "options", "must be a list of at least 2 strings"),
    (lambda r: r.update(options=["A. x", 3]), "options", "must be a list of at least 2 strings"),
    (lambda r: r.update(options=["A. x", "C. y"]), "options", "option labels are not contiguous"),
    (lambda r: r.update(options=["A. same", "B. Same"]), "options", "two options have the same text"),
    (lambda r: r.update(answer="b"), "answer", "must be one capital letter, got 'b'"),
    (lambda r: r.update(answer="C", conclusion="So the answer is C."), "answer", "answer is not one of the option"),
    (lambda r: r.update(conclusion="The square is larger."), "conclusion", "conclusion does not state the answer"),
    (lambda r: r.update(conclusion=f"Option A or option B; the answer is {r['answer']}."), "conclusion",
     "conclusion does not state the answer"),
    (lambda r: r.update(regions={}), "regions", "must be a list, got an object"),
    (lambda r: r["regions"].append({"id": "r0", "image": 0, "box": [1, 1, 2, 2], "label": "x"}), "regions",
     "region id 'r0' is used twice"),
    (lambda r: r["regions"][0].update(image=5), "regions", "region 'r0' names image 5, but the record has 2"),
    (lambda r: r["regions"][0].update(box=[4, 4, 2, 9]), "regions", "region 'r0' box [4, 4, 2, 9] is empty"),
    (lambda r: r["regions"][0].update(box=[0, 0, "9", 9]), "regions", "region 'r0' box [0, 0, '9', 9] is not"),
    (lambda r: r["regions"][0].pop("label"), "regions", "region 0 is not an object with id, image, box, label"),
    (lambda r: r["regions"][0].update(box=[0, 0, 97, 10]), "regions", "region 'r0' box [0, 0, 97, 10] lies outside"),
    (lambda r: r.update(difficulty="medium"), "difficulty", "must be easy, hard or null, got 'medium'"),
    (lambda r: r.update(pass_rate=1.5), "pass_rate", "must be a number in [0, 1] or null, got 1.5"),
    (lambda r: r.update(pass_rate=float("nan")), "pass_rate", "must be a number in [0, 1] or null, got nan"),
    (lambda r: r.update(pass_rate=True), "pass_rate", "must be a number in [0, 1] or null, got true"),
    (lambda r: r.update(meta=[]), "meta", "must be an object, got a list of 0"),
    (lambda r: r.update(id=7), "id", "must be a non-empty string, got 7"),
]


@pytest.mark.parametrize("change, field, problem", FAULTS)
def test_each_fault_is_reported_on_its_record(good_records: list[dict[str, Any]], change: Any, field: str,
                                              problem: str) -> None:
    records = copy.deepcopy(good_records[:3])
    change(records[1])
    sizes = [[[96, 64], [96, 64]] for _ in records]
    found = [(line, f, p) for line, f, p in problems(records, sizes) if f == field and p.startswith(problem)]
    assert found and all(line == 2 for line, _, _ in found), problems(records, sizes)
    assert all(line == 2 for line, _, _ in problems(records, sizes))  # the other records stay clean


def test_every_fault_at_once_and_cross_record_rules(good_records: list[dict[str, Any]]) -> None:
    records = copy.deepcopy(good_records[:4]) + copy.deepcopy(good_records[:2])
    records[4]["id"] = "fresh-id"  # same question and images as record 1, other id
    records[0].pop("summary")
    records[0]["pass_rate"] = 2
    records[1]["task"] = "view_3d"
    found = problems(records)
    assert (1, "summary", "required field is missing") in found
    assert (1, "pass_rate", "must be a number in [0, 1] or null, got 2") in found
    assert (2, "task", "task does not belong to its category") in found
    assert (5, "question", "same question and images as an earlier record") in found
    assert (6, "id", "id is used by an earlier record") in found
    assert not any(line in (3, 4) for line, _, _ in found)


def test_wrong_type_reports_once_not_in_dependent_rules(good_records: list[dict[str, Any]]) -> None:
    record = copy.deepcopy(good_records[0])
    record["images"] = {"0": "a.png"}
    record["options"] = "A. x B. y"
    assert {(f, p.split(",")[0]) for _, f, p in problems([record])} == {
        ("images", "must be a list of at least 2 paths"), ("options", "must be a list of at least 2 strings")}


def test_line_numbers_come_from_the_file(good_records: list[dict[str, Any]]) -> None:
    record = copy.deepcopy(good_records[0])
    record["answer"] = "Z"
    [*failures] = check_records([record], lines=[17])
    assert {f.line for f in failures} == {17}
    assert failures[0].record == record["id"]


@pytest.mark.parametrize("text, letters", [
    ("So the answer is B.", {"B"}),
    ("B", {"B"}),
    ("(C)", {"C"}),
    ("C. the blue car", {"C"}),
    ("Answer: D", {"D"}),
    ("The correct choice is option A.", {"A"}),
    ("The answer is a red car.", set()),
    ("The red car wins.", set()),
    ("Option A shows less, so the answer is B.", {"A", "B"}),
    ("ANSWER IS (C)", {"C"}),
    ("Ünlü: the answer is B.", {"B"}),  # not ASCII: the keyword search starts at 0
    ("ſo the anſwer is B", {"B"}),  # "ſ" matches "s" case-insensitively, so this is "answer"
    ("xanswer is B", set()),
    ("A) because the answer is A", {"A"}),
])
def test_stated_letters(text: str, letters: set[str]) -> None:
    assert stated_letters(text) == letters


def test_stated_letters_agree_with_one_alternation() -> None:
    """The three patterns run apart (the keyword one from the first keyword on) find what one alternation of
    them finds anywhere in the text, on generated texts mixing keywords, letters, brackets and punctuation."""
    import random
    import re

    one_pass = re.compile(r"""
          \b(?i:answer|option|choice) \s* (?i:is|:|=)? \s* (?i:option\s*)? \(? \b([A-Z])\b \)?
        | \(([A-Z])\)
        | ^\s* \(? ([A-Z]) \)? \s* (?:[.:)]|$)
    """, re.VERBOSE)
    pieces = ["answer", "Answer", "OPTION", "choice", "is", ":", "=", " ", "(", ")", ".", "A", "B", "z", "so",
              "xanswer", "answers", "\n", "İ", "ſ", "optıon", "(C)", "option (D)", "answer is option", "1"]
    rng = random.Random(0)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert stated_letters(text) == {a or b or c for a, b, c in one_pass.findall(text)}, text


def test_option_parsing_and_relpaths() -> None:
    assert parse_option("B. a red car") == ("B", "a red car")
    assert parse_option(" C) x ") == ("C", "x")
    assert parse_option("a red car") == (None, "a red car")
    assert parse_option("AB. x") == (None, "AB. x")
    assert is_dataset_relpath("images/t/a.png")
    for bad in ("", "/abs.png", "../up.png", "images/../../x.png", "C:/x.png", "images\\x.png"):
        assert not is_dataset_relpath(bad), bad
    assert describe(None) == "null" and describe("x" * 50).endswith("...'") and describe({}) == "an object"


def test_records_roundtrip_through_json(good_records: list[dict[str, Any]], tmp_path: Path) -> None:
    """What the store writes is what the schema accepts."""
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in good_records))
    again = [json.loads(line) for line in path.read_text().splitlines()]
    assert check_records(again) == []
