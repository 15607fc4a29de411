"""The stage checker: each kind of problem it must catch, and texts it must let through."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mirdata.annotate.check import check_stages, cut_off
from mirdata.schema.record import Record, Region


@pytest.fixture
def record() -> Record:
    return Record(
        id="speed_comparison-s0-000001", category="sequential", task="speed_comparison",
        images=["images/a_0.jpg", "images/a_1.jpg", "images/a_2.jpg"],
        question="Frame <image>, frame <image> and frame <image> are 0.5 s apart. Which car is faster?",
        options=["A. the red car", "B. the blue car", "C. both are equally fast"],
        answer="B",
        summary="Track both cars over the three frames and compare how far each moves.",
        caption=["Two cars on a road.", "The cars have moved right.", "The blue car is ahead."],
        text2region="'the red car' → [r0] in image 1, box [12, 40, 96, 88]; 'the blue car' → [r1] in image 1.",
        region2region="[r0] moves 14.25 px per frame while [r1] moves 31.8 px per frame, 223% of the red car's.",
        conclusion="The blue car covers more ground in each interval, so the answer is B.",
        regions=[Region("r0", 0, [12, 40, 96, 88], "red car"), Region("r1", 0, [150, 42, 230, 90], "blue car"),
                 Region("r2", 2, [300.5, 41, 380, 89], "blue car")],
        meta={"facts": {"speeds_px_per_frame": {"red": 14.2468, "blue": 31.8}, "ratio": 2.232,
                        "frames": [0, 12, 24], "note": "gap of 1,250 mm"}},
    )


def stage_problems(record: Record, **stages: object) -> list[str]:
    return [str(p) for p in check_stages(replace(record, **stages))]


def test_a_grounded_record_passes(record):
    assert check_stages(record) == []


def test_the_simple_dataset_passes(simple_dataset):
    from mirdata.store import MIRStore

    assert all(check_stages(r) == [] for r in MIRStore(simple_dataset).read())


@pytest.mark.parametrize("text, expected", [
    ("so the answer is C.", "conclusion: states C as the answer, but the answer is B"),
    ("The blue car wins.", "conclusion: states no letter as the answer, but the answer is B"),
    ("Option A is wrong, so the answer is B.", "conclusion: states A, B as the answer, but the answer is B"),
])
def test_conclusion_must_state_exactly_the_answer(record, text, expected):
    assert expected in stage_problems(record, conclusion=text)


def test_other_stages_must_not_state_another_answer(record):
    problems = stage_problems(record, summary="Comparing speeds shows the answer is A.")
    assert problems == ["summary: says the answer is A, but it is B"]
    assert stage_problems(record, summary="The answer is a matter of speed: Answer: B.") == []


@pytest.mark.parametrize("stage, text, expected", [
    ("summary", "   ", "summary: is empty"),
    ("summary", "Compare the cars and", "summary: ends mid-sentence"),
    ("region2region", "[r0] moves (14.25 px per frame.", "region2region: unbalanced brackets: '(' is never closed"),
    ("region2region", "[r0] moves 14.25 px] per frame.", "region2region: unbalanced brackets: ']' closes nothing"),
    ("summary", 'Find "the faster car.', "summary: unbalanced quotes"),
])
def test_empty_or_cut_off_stages(record, stage, text, expected):
    problems = stage_problems(record, **{stage: text})
    assert any(p.startswith(expected) for p in problems), problems


def test_whole_texts_may_end_with_a_box_or_a_quote():
    assert cut_off("'the red car' → [r0] in image 1, box [12, 40, 96, 88]") is None
    assert cut_off('The sign reads "STOP."') is None
    assert cut_off("It is the blue car's turn!") is None


def test_captions_one_per_image_and_each_whole(record):
    assert stage_problems(record, caption=["Two cars.", "Moved."]) == ["caption: 2 captions for 3 images"]
    problems = stage_problems(record, caption=["Two cars.", "", "The blue car is"])
    assert problems == ["caption: caption 2: is empty", "caption: caption 3: ends mid-sentence ('The blue car is')"]
    assert stage_problems(record, caption="Two cars.") == ["caption: must be a list of strings, one per image"]


def test_regions_must_exist_and_match_their_image_and_box(record):
    problems = stage_problems(record, region2region="[r0] is behind [r7] and r12.")
    assert problems == ["region2region: cites region(s) r7, r12 that do not exist (regions: r0, r1, r2)"]
    assert stage_problems(record, text2region="'the blue car' → [r2] in image 1.") == [
        "text2region: puts [r2] in image 1, but it is in image 3"]
    assert stage_problems(record, text2region="'the red car' → [r0] in image 1, box [12, 40, 96, 80].") == [
        "text2region: gives [r0] the box [12, 40, 96, 80], but it is [12, 40, 96, 88]"]
    # boxes at the precision they are written: 300.5 may be written 300 or 301, never 299
    assert stage_problems(record, text2region="'the blue car' → [r2] in image 3, box [301, 41, 380, 89].") == []
    assert stage_problems(record, text2region="'the cars' are both on the road.") == [
        "text2region: ties no phrase to a region (cite them as [r0], [r1], ...)"]


def test_images_beyond_the_record(record):
    assert stage_problems(record, summary="Compare image 1 with images 2 and 4.") == [
        "summary: mentions image 4, but the record has 3 images"]


@pytest.mark.parametrize("text", [
    "The red car moves 14 px per frame.",  # rounded to an integer
    "The red car moves 14.2 px per frame.",  # rounded to one decimal
    "The red car moves -14.25 px per frame.",  # signs are not checked
    "The blue car is 223% as fast.",  # a fact as a percentage
    "Frames 12 and 24 are 0.5 s apart.",  # facts and question numbers
    "The gap is 1,250 mm.",  # thousands separator, number found in a fact's text
    "The blue car's box is 80 px wide, centred at x = 190.",  # region width and centre
    "Both of the 3 frames show 2 cars.",  # small counts and indices
])
def test_grounded_numbers_pass(record, text):
    assert stage_problems(record, region2region=f"[r0] and [r1]: {text}") == []


@pytest.mark.parametrize("text, bad", [
    ("The red car moves 14.30 px per frame.", "14.30"),  # written more precisely than it is
    ("The red car moves 15 px per frame.", "15"),
    ("The blue car is 3.1 times as fast.", "3.1"),
    ("It took 7 frames.", "7"),  # above the small-count bound (max(4, 3 images, 3 options, 3 regions))
    ("The gap is 1,251 mm.", "1,251"),
])
def test_ungrounded_numbers_fail(record, text, bad):
    assert stage_problems(record, region2region=f"[r0] and [r1]: {text}") == [
        f"region2region: states {bad}, which no fact, region box or question number backs"]


def test_names_with_digits_are_not_numbers(record):
    assert stage_problems(record, summary="Compare H100 frames in 3D with SmolLM2 notes.") == []


def test_positions_in_a_listed_sequence_count_from_one(record):
    steps = [{"index": i, "text": f"step text {i}"} for i in range(7)]
    listed = replace(record, meta={"facts": {**record.meta["facts"], "steps": steps}})
    assert stage_problems(listed, summary="Step 7 comes after the 6th step.") == []
    assert stage_problems(listed, summary="Step 9 comes last.") == [
        "summary: states 9, which no fact, region box or question number backs"]
    assert stage_problems(record, summary="Step 7 comes last.") == [  # no list that long in these facts
        "summary: states 7, which no fact, region box or question number backs"]
