"""Answer extraction from messy model outputs: a letter when the response clearly chose one, else None."""

from __future__ import annotations

import pytest

from mirdata.inference.extract import extract_answer
from mirdata.inference.judge import parse_judge_reply

IMAGES = ["A. the first image", "B. the second image", "C. both images", "D. neither image"]
NUMBERS = ["A. 12", "B. 7", "C. 120", "D. 3.5"]
ARTICLES = ["A. A red car", "B. A blue car", "C. A green bus"]
YES_NO = ["A. yes", "B. no"]

CASES = [
    # the format the prompt asks for
    ("Your option: B", IMAGES, "B"),
    ("your option: b", IMAGES, "B"),
    ("YOUR OPTION: c", IMAGES, "C"),
    ("Reasoning about sizes...\n\nYour option: D", IMAGES, "D"),
    ("Your option:\nA", IMAGES, "A"),
    ("Your final option is (C).", IMAGES, "C"),
    ("Your option: B. the second image", IMAGES, "B"),
    ("Your option: the second image", IMAGES, "B"),
    ("Your answer: d", IMAGES, "D"),
    ("Your option: **A**", IMAGES, "A"),
    # boxed answers
    ("$\\boxed{C}$", IMAGES, "C"),
    ("Final answer: \\boxed{\\text{D}}", IMAGES, "D"),
    ("So we get \\boxed{7}.", NUMBERS, "B"),
    # the MIR reasoning format
    ("<summary>Compare.</summary><conclusion>The square is larger in image 2, so the answer is B.</conclusion>",
     IMAGES, "B"),
    ("<conclusion>The answer is (c)</conclusion>", IMAGES, "C"),
    ("<caption>(A) shows a cat</caption><conclusion>So the answer is D.</conclusion>", IMAGES, "D"),
    ("<conclusion>Hard to say.</conclusion>\nYour option: A", IMAGES, "A"),
    ("<conclusion>It is either A or B, the answer is A. No wait, the answer is B.</conclusion>", IMAGES, None),
    ("<conclusion>The answer is B", IMAGES, "B"),  # the closing tag cut off by the token limit
    # answer statements
    ("The answer is C.", IMAGES, "C"),
    ("the answer is c.", IMAGES, "C"),
    ("The correct answer is: (C) both images", IMAGES, "C"),
    ("The correct answer is option A.", IMAGES, "A"),
    ("Answer: D.", IMAGES, "D"),
    ("answer: b", IMAGES, "B"),
    ("ANSWER - A", IMAGES, "A"),
    ("**Answer:** **B**", IMAGES, "B"),
    ("Answer:\n\nC", IMAGES, "C"),
    ("Final answer: B because the square is bigger", IMAGES, "B"),
    ("The answer is A because image 1 is larger.", IMAGES, "A"),
    ("The best option is `D`.", IMAGES, "D"),
    ("Answer (B)", IMAGES, "B"),
    ("I choose the first image.", IMAGES, "A"),
    ("I would pick C.", IMAGES, "C"),
    ("I'd go with option b.", IMAGES, "B"),
    ("B is correct.", IMAGES, "B"),
    ("(d) is the right answer", IMAGES, "D"),
    ("The answer is the second image.", IMAGES, "B"),
    ("The answer is 120.", NUMBERS, "C"),
    ("Answer: 3.5", NUMBERS, "D"),
    ("The answer is A blue car.", ARTICLES, "B"),  # option text first: "A blue car" is option B
    ("The answer is A red car.", ARTICLES, "A"),
    ("Answer: yes", YES_NO, "A"),
    ("答案：B", IMAGES, "B"),
    ("答案是 C", IMAGES, "C"),
    ("The answer is (A).", IMAGES, "A"),
    ("The answer is [B].", IMAGES, "B"),
    ("The answer is 'C'.", IMAGES, "C"),
    # mentions of one option
    ("(B)", IMAGES, "B"),
    ("(b)", IMAGES, "B"),
    ("I think (C) fits best here.", IMAGES, "C"),
    ("Option D is right.", IMAGES, "D"),
    ("Going with option A", IMAGES, "A"),
    # a bare label
    ("B", IMAGES, "B"),
    ("b", IMAGES, "B"),
    ("  C.  ", IMAGES, "C"),
    ("(a)", IMAGES, "A"),
    ("[D]", IMAGES, "D"),
    ("B. the second image", IMAGES, "B"),
    ("a. the first image", IMAGES, "A"),
    ("D) neither image", IMAGES, "D"),
    ("Image 1 has a side of 20 px and image 2 a side of 31 px.\n\nB", IMAGES, "B"),
    # an option's text alone
    ("the second image", IMAGES, "B"),
    ("The second image.", IMAGES, "B"),
    ("NEITHER IMAGE", IMAGES, "D"),
    ("\"both images\"", IMAGES, "C"),
    ("12", NUMBERS, "A"),
    ("7.", NUMBERS, "B"),
    ("no", YES_NO, "B"),
    ("Looking closely at both.\nthe first image", IMAGES, "A"),
    # never a guess: nothing, conflicts, negations, letters that are no option, prose
    ("", IMAGES, None),
    ("   \n ", IMAGES, None),
    (None, IMAGES, None),
    ("lorem ipsum dolor sit amet", IMAGES, None),
    ("\x1c\"\x1c\"\x1c", IMAGES, None),
    ("BBBBBB", IMAGES, None),
    ("ABCD", IMAGES, None),
    ("I cannot see the images.", IMAGES, None),
    ("The answer is a bit unclear from these images.", IMAGES, None),
    ("The answer is not A.", IMAGES, None),
    ("A dog runs across the field.", IMAGES, None),
    ("I think the answer is A. Actually, the answer is B.", IMAGES, None),
    ("Comparing (A) and (B), I cannot decide.", IMAGES, None),
    ("Option A or option B, hard to tell.", IMAGES, None),
    ("(A) is wrong.", IMAGES, None),
    ("Option C is not correct.", IMAGES, None),
    ("The answer is E.", IMAGES, None),
    ("Your option: F", IMAGES, None),
    ("Your option: X\nYour option: B", IMAGES, None),
    ("Your option: A\nYour option: C", IMAGES, None),
    ("B. the first image", IMAGES, None),  # the label and the text name different options
    ("Answer: C. the second image", IMAGES, None),
    ("\\boxed{A} or \\boxed{B}", IMAGES, None),
    ("It could be 12 or 7.", NUMBERS, None),
    ("The images show a red square.", IMAGES, None),
    ("a", ARTICLES, "A"),
    ("a car", ARTICLES, None),
    ("maybe", YES_NO, None),
    ("yes and no", YES_NO, None),
    ("I. First, look at image one.", IMAGES, None),
    ("A. the first image\nB. the second image\nC. both images", IMAGES, None),  # the options echoed
    ("Options:\nA. the first image\nB. the second image\n\nYour option: B", IMAGES, "B"),
    ("Step 1: measure.\nB. the second image", IMAGES, "B"),
]


@pytest.mark.parametrize(("response", "options", "expected"), CASES,
                         ids=[f"{k}:{(r or '')[:30]!r}" for k, (r, _, _) in enumerate(CASES)])
def test_extract_answer(response: str | None, options: list[str], expected: str | None) -> None:
    assert extract_answer(response, options) == expected


def test_the_table_is_large_and_covers_both_outcomes() -> None:
    assert len(CASES) >= 90
    assert sum(e is None for _, _, e in CASES) >= 25
    assert {e for _, _, e in CASES} >= {"A", "B", "C", "D", None}


def test_unlabelled_options_use_their_position() -> None:
    assert extract_answer("The answer is B.", ["red", "blue"]) == "B"
    assert extract_answer("blue", ["red", "blue"]) == "B"
    assert extract_answer("The answer is C.", ["red", "blue"]) is None


@pytest.mark.parametrize(("reply", "expected"), [
    ("B", "B"), (" b.", "B"), ("**C**", "C"), ("(A)", "A"), ("NONE", None), ("none", None),
    ("E", None), ("The answer is B", None), ("", None), ("AB", None),
])
def test_judge_replies_must_be_one_option_letter(reply: str, expected: str | None) -> None:
    assert parse_judge_reply(reply, IMAGES) == expected
