"""Answer letters over a real build of all 12 tasks: within every (task, number of options) each letter is the
answer about equally often, and no option text keeps a fixed position."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from scipy.stats import binom

from mirdata.builders.base import BuildOptions, run_build
from mirdata.registry import task_names
from mirdata.schema.record import LETTERS, option_text

PER_TASK = 48
# A letter's count must lie in the central 1 - 2 * TAIL of Binomial(records, 1 / options). The build is seeded,
# so this is deterministic; the bound is loose enough that an unbiased placement passes with room to spare,
# while a letter that is never (or almost never) right fails.
TAIL = 1e-3
# Groups smaller than this many records per letter are too small to judge.
MIN_PER_LETTER = 5
IMAGE_LABEL = re.compile(r"Image \d+")


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("balance")
    options = BuildOptions(out=out, seed=7, num=PER_TASK, workers=2, image_size=(128, 96))
    run = run_build(options, list(task_names()), show_progress=False)
    assert run["failed"] == []
    return [json.loads(line) for line in (Path(out) / "records.jsonl").read_text().splitlines()]


def groups(records: list[dict]) -> dict[tuple[str, int], list[dict]]:
    by_group: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in records:
        by_group[(r["task"], len(r["options"]))].append(r)
    return by_group


def test_every_letter_is_right_about_equally_often(records: list[dict]) -> None:
    judged, problems = [], []
    for (task, n), group in sorted(groups(records).items()):
        if len(group) < MIN_PER_LETTER * n:
            continue
        judged.append(task)
        counts = Counter(r["answer"] for r in group)
        low, high = binom.ppf(TAIL, len(group), 1 / n), binom.isf(TAIL, len(group), 1 / n)
        table = " ".join(f"{letter}{counts[letter]}" for letter in LETTERS[:n])
        if any(counts[letter] == 0 or not low <= counts[letter] <= high for letter in LETTERS[:n]):
            problems.append(f"{task}, {n} options, {len(group)} records: {table} (each should be in "
                            f"[{low:g}, {high:g}])")
    assert set(judged) == set(task_names())  # every task has at least one group large enough to judge
    assert not problems, "\n".join(problems)


def test_no_option_text_keeps_a_fixed_position(records: list[dict]) -> None:
    """An option offered in many questions ("Cannot be determined", "no shape moves ...") moves between letters.

    Options that only name the images in their own order ("A. Image 2", "B. Image 3") are laid out that way on
    purpose: the images behind them are shuffled.
    """
    fixed = []
    for (task, n), group in sorted(groups(records).items()):
        letters_of: dict[str, set[str]] = defaultdict(set)
        uses: Counter[str] = Counter()
        for r in group:
            for k, option in enumerate(r["options"]):
                text = option_text(option)
                if not IMAGE_LABEL.fullmatch(text):
                    letters_of[text].add(LETTERS[k])
                    uses[text] += 1
        fixed += [f"{task}, {n} options: {text!r} is always {letters_of[text].pop()}"
                  for text, count in uses.items() if count >= 8 and len(letters_of[text]) == 1]
    assert not fixed, "\n".join(fixed)
