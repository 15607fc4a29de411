"""Grounding rewards on crafted completions, with expected values worked out here from the records' boxes; and
`evaluate --grounding`, scored by the same functions."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.curriculum.evaluate import evaluate
from mirdata.inference.grounding import citations
from mirdata.rl.rewards import accuracy_reward, format_reward, image_reward, region_reward
from mirdata.schema.record import LETTERS, Record
from mirdata.store import MIRStore

TASKS = ("chart_analysis", "weight_comparison", "image_puzzle")
STEPS = ("summary", "caption", "text2region", "region2region", "conclusion")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Two records each of three tasks, made by `mirdata build`."""
    out = tmp_path_factory.mktemp("build") / "mir"
    args = [arg for task in TASKS for arg in ("--task", task)]
    subprocess.run([sys.executable, "-m", "mirdata", "build", *args, "--num", "2", "--out", str(out), "--seed", "3"],
                   check=True, capture_output=True, env={**os.environ})
    return out


@pytest.fixture(scope="module")
def records(built: Path) -> list[Record]:
    return MIRStore(built).read()


def columns(records: list[Record]) -> dict[str, list]:
    """The dataset columns TRL passes to the rewards, one entry per completion."""
    return {"answer": [r.answer for r in records], "options": [r.options for r in records],
            "regions": [[{"id": g.id, "image": g.image, "box": g.box, "label": g.label} for g in r.regions]
                        for r in records]}


def pixel_box(box: list[float]) -> list[int]:
    return [int(round(v)) for v in box]


def citing(pairs: list[tuple[int, list[float]]]) -> str:
    """A text citing (0-based image, box) pairs in the records' convention, written out here."""
    return "; ".join(f"'a thing' → [r{k}] in image {image + 1}, box [{', '.join(str(v) for v in box)}]"
                     for k, (image, box) in enumerate(pairs)) + "."


def chain(record: Record) -> str:
    """The record's own whole reasoning chain, tagged as curriculum-train teaches it."""
    texts = {"caption": "\n".join(record.caption)} | {s: getattr(record, s) for s in STEPS if s != "caption"}
    return "\n".join(f"<{s}>{texts[s]}</{s}>" for s in STEPS)


def test_the_records_own_text2region_scores_1(records: list[Record]) -> None:
    assert {r.task for r in records} == set(TASKS) and all(len(r.regions) >= 2 for r in records)
    for texts in ([r.text2region for r in records], [chain(r) for r in records]):
        assert region_reward(texts, **columns(records)) == [1.0] * len(records)
        assert image_reward(texts, **columns(records)) == [1.0] * len(records)


def test_boxes_shifted_by_half_their_width(records: list[Record]) -> None:
    # a box of even width w moved right by w/2: overlap (w/2)·h, union 2wh - (w/2)·h, IoU = 1/3 exactly
    regions = [{"id": "r0", "image": 0, "box": [10, 10, 50, 30], "label": "a"},
               {"id": "r1", "image": 1, "box": [100, 60, 160, 140], "label": "b"}]
    text = citing([(0, [30, 10, 70, 30]), (1, [130, 60, 190, 140])])
    assert region_reward([text], regions=[regions]) == [pytest.approx(1 / 3, abs=1e-12)]
    assert image_reward([text], regions=[regions]) == [1.0]

    # the built records' boxes (cited at whole pixels) moved right by s = w // 2: IoU = (w - s) / (w + s)
    for r in records:
        shifted, expected = [], []
        for g in r.regions:
            x0, y0, x1, y1 = pixel_box(g.box)
            w = x1 - x0
            s = w // 2
            shifted.append((g.image, [x0 + s, y0, x1 + s, y1]))
            expected.append((w - s) / (w + s))
        got = region_reward([citing(shifted)], **columns([r]))[0]
        assert got == pytest.approx(sum(expected) / len(expected), abs=1e-9), r.id


def test_swapped_image_numbers_lower_the_image_reward(records: list[Record]) -> None:
    for r in records:
        pairs = [(g.image, g.box) for g in r.regions]
        i, j = next((i, j) for i in range(len(pairs)) for j in range(i) if pairs[i][0] != pairs[j][0])
        pairs[i], pairs[j] = (pairs[j][0], pairs[i][1]), (pairs[i][0], pairs[j][1])
        assert image_reward([citing(pairs)], **columns([r])) == [pytest.approx((len(pairs) - 2) / len(pairs))]
        assert region_reward([citing(pairs)], **columns([r])) == [1.0]  # the boxes are still right


def test_extra_and_missing_boxes_count_against() -> None:
    regions = [{"id": "r0", "image": 0, "box": [0, 0, 10, 10], "label": "a"},
               {"id": "r1", "image": 1, "box": [20, 20, 40, 40], "label": "b"}]
    extra = citing([(0, [0, 0, 10, 10]), (1, [20, 20, 40, 40]), (1, [200, 200, 240, 240])])
    assert region_reward([extra], regions=[regions]) == [pytest.approx(2 / 3)]
    assert image_reward([extra], regions=[regions]) == [pytest.approx(2 / 3)]
    missing = citing([(1, [20, 20, 40, 40])])
    assert region_reward([missing], regions=[regions]) == [0.5]
    assert image_reward([missing], regions=[regions]) == [1.0]
    twice = citing([(0, [0, 0, 10, 10])] * 2 + [(1, [20, 20, 40, 40])])  # a repeated citation is one claim
    assert region_reward([twice], regions=[regions]) == [1.0]
    assert region_reward(["no boxes here"], regions=[regions]) == [0.0]
    assert image_reward(["no boxes here"], regions=[regions]) == [0.0]
    assert region_reward([extra], regions=[[]]) == [None]  # nothing to ground: TRL leaves the sample out


def test_messy_citations_are_read() -> None:
    text = ("r0 in image two ,box 12.4 40.0  96.6 88; [r1]in the First image (bbox: (1, 2, 3, 4)); "
            "the 3rd image box[5,6 , 7,8]; [ r2 ] in Image #4, box: [10.5, 20, 30, 40]; [r3] (image 5): [1, 1, 2, 2]")
    assert [(c.image, c.box) for c in citations(text)] == [(1, (12, 40, 97, 88)), (0, (1, 2, 3, 4)),
                                                           (2, (5, 6, 7, 8)), (3, (10, 20, 30, 40)),
                                                           (4, (1, 1, 2, 2))]


def test_accuracy_reads_the_conclusion_letter(records: list[Record]) -> None:
    r = records[0]
    wrong = next(x for x in LETTERS[:len(r.options)] if x != r.answer)
    completions = [f"<conclusion>so the answer is {r.answer}.</conclusion>",
                   f"<conclusion>so the answer is {wrong}.</conclusion>",
                   "<conclusion>I cannot tell from these images.</conclusion>",
                   f"<conclusion>It is {r.answer} or {wrong}: (" + r.answer + ") and (" + wrong + ").</conclusion>",
                   f"the answer is {r.answer}",  # no conclusion section
                   chain(r)]
    n = len(completions)
    got = accuracy_reward(completions, answer=[r.answer] * n, options=[r.options] * n)
    assert got == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert accuracy_reward([chain(x) for x in records], **columns(records)) == [1.0] * len(records)


def test_format_gives_credit_for_steps_in_chain_order(records: list[Record]) -> None:
    r = records[0]
    texts = [chain(r),
             "<summary>s</summary> then <conclusion>B</conclusion>",
             "".join(f"<{s}>x</{s}>" for s in reversed(STEPS)),
             "<summary>s</summary><caption></caption><text2region>t</text2region>",  # an empty step is no step
             "<summary>s</summary><region2region>r</region2region><caption>c</caption><conclusion>A</conclusion>",
             "no tags at all"]
    assert format_reward(texts) == [1.0, 0.4, 0.2, 0.4, 0.6, 0.0]


def test_chat_message_completions_score_like_strings(records: list[Record]) -> None:
    messages = [[{"role": "assistant", "content": chain(r)}] for r in records]
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": chain(r)}]}] for r in records]
    for completions in (messages, parts):
        for reward in (accuracy_reward, region_reward, image_reward):
            assert reward(completions, **columns(records)) == [1.0] * len(records)
        assert format_reward(completions) == [1.0] * len(records)


def test_garbage_scores_0_without_error(records: list[Record]) -> None:
    rng = random.Random(0)
    alphabet = "image box [](),.;:0123456789-rA<>/conclusion \n\x00é"
    garbage = ["", " ", "\x00\x01\x02", "<conclusion></conclusion>", "<conclusion>", "image image 1 box [",
               "[r0] in image 99999999999, box [1e999, 2, 3, 4]", "image 0, box [1, 2, 3, 4]",
               "image 1, box [nan, nan, nan, nan]", "image 1, box [" + "9" * 5000 + ", 1, 2, 3]",
               "image 1 box [" + "1, " * 20000, "🙂" * 1000, "<summary><summary></conclusion>"]
    garbage += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400))) for _ in range(200)]
    cols = columns([records[0]] * len(garbage))
    for reward in (accuracy_reward, format_reward, region_reward, image_reward):
        scores = reward(garbage, **cols)
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores[:13] == [0.0] * 13, reward.__name__
    odd = [None, 3, {"role": "assistant"}, [{"content": None}], [{"role": "assistant", "content": [{"type": "image"}]}]]
    for reward in (accuracy_reward, format_reward, region_reward, image_reward):
        assert reward(odd, **columns([records[0]] * len(odd))) == [0.0] * len(odd)


# -- evaluate --grounding --------------------------------------------------------------------------------------

def test_evaluate_grounding_beside_accuracy(built: Path, records: list[Record], tmp_path: Path) -> None:
    lines = []
    for k, r in enumerate(records):
        if k % 2 == 0:
            response = chain(r)  # right answer, right boxes, right images
        else:
            pairs = [(g.image, g.box) for g in r.regions]
            pairs[0] = ((pairs[0][0] + 1) % len(r.images), pairs[0][1])  # one region in the wrong image
            response = citing(pairs) + " No answer."
        lines.append({"id": r.id, "response": response})
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = evaluate(built, preds, grounding=True).to_dict()
    image_acc = {r.id: 1.0 if k % 2 == 0 else (len(r.regions) - 1) / len(r.regions) for k, r in enumerate(records)}
    for task in TASKS:
        mine = [r for r in records if r.task == task]
        d = result["by_task"][task]
        assert d["n"] == d["grounded"] == len(mine)
        assert d["region_iou"] == 1.0
        assert d["image_accuracy"] == pytest.approx(sum(image_acc[r.id] for r in mine) / len(mine), abs=1e-6)
        assert d["correct"] == sum(k % 2 == 0 for k, r in enumerate(records) if r.task == task)
    assert result["overall"]["image_accuracy"] == pytest.approx(sum(image_acc.values()) / len(records), abs=1e-6)
    assert "region_iou" not in evaluate(built, preds).to_dict()["overall"]

    out = CliRunner().invoke(app, ["evaluate", str(built), str(preds), "--grounding", "--json", str(tmp_path / "e.json")])
    assert out.exit_code == 0, out.output
    assert "region IoU" in out.output and "1.000" in out.output
    assert json.loads((tmp_path / "e.json").read_text()) == result
