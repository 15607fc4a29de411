"""evaluate: accuracy per task, per category and overall; unanswered counted, never guessed; CircularEval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.curriculum.evaluate import evaluate
from mirdata.errors import MirdataError
from mirdata.inference.judge import Judge
from mirdata.inference.prompt import rotate_options
from mirdata.registry import CATEGORIES, category_of, task_names, tasks_of
from mirdata.schema.record import LETTERS, Record
from mirdata.store import MIRStore
from mirdata.testing import ScriptedRunner

GARBAGE = ["", "I cannot tell.", "\x1c\"\x1c", "The answer is a bit unclear.", "Either A or B.",
           "(A) and (B) both look plausible", "BBBB", "The answer is Z."]


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _wrong(record: Record) -> str:
    return next(LETTERS[k] for k in range(len(record.options)) if LETTERS[k] != record.answer)


def test_accuracy_per_task_category_and_overall(simple_dataset: Path, tmp_path: Path) -> None:
    records = MIRStore(simple_dataset).read()
    lines, expect = [], {t: [0, 0, 0] for t in task_names()}  # n, correct, unanswered
    for k, r in enumerate(records):
        kind = k % 3
        response = {0: f"<conclusion>So the answer is {r.answer}.</conclusion>",
                    1: f"Your option: {_wrong(r)}",
                    2: GARBAGE[k % len(GARBAGE)]}[kind]
        lines.append({"id": r.id, "response": response, "extra": "fields are allowed"})
        expect[r.task][0] += 1
        expect[r.task][1] += kind == 0
        expect[r.task][2] += kind == 2
    result = evaluate(simple_dataset, _write(tmp_path / "p.jsonl", lines)).to_dict()
    assert set(result) == {"overall", "by_category", "by_task"}
    for task, (n, correct, unanswered) in expect.items():
        assert result["by_task"][task] == {"n": n, "correct": correct, "accuracy": pytest.approx(correct / n),
                                           "unanswered": unanswered}
    for cat, tasks in ((c, tasks_of(c)) for c in CATEGORIES):
        n = sum(expect[t][0] for t in tasks)
        correct = sum(expect[t][1] for t in tasks)
        assert result["by_category"][cat]["n"] == n and result["by_category"][cat]["correct"] == correct
    assert result["overall"] == {"n": 24, "correct": 8, "accuracy": pytest.approx(8 / 24), "unanswered": 8}
    assert list(result["by_task"]) == list(task_names())


def test_evaluate_never_guesses(simple_dataset: Path, tmp_path: Path) -> None:
    records = MIRStore(simple_dataset).read()
    lines = [{"id": r.id, "response": GARBAGE[k % len(GARBAGE)]} for k, r in enumerate(records)]
    result = evaluate(simple_dataset, _write(tmp_path / "p.jsonl", lines))
    assert result.overall.to_dict() == {"n": 24, "correct": 0, "accuracy": 0.0, "unanswered": 24}


def test_circular_needs_every_rotation_right(simple_dataset: Path, tmp_path: Path) -> None:
    records = MIRStore(simple_dataset).read()
    lines = []
    for k, r in enumerate(records):
        for rot in range(len(r.options)):
            _, answer = rotate_options(r.options, r.answer, rot)
            if k % 4 == 1 and rot == 1:
                answer = next(x for x in LETTERS[:len(r.options)] if x != answer)  # one rotation wrong
            response = "no idea" if k % 4 == 2 and rot == 0 else f"The answer is {answer}."
            lines.append({"id": r.id, "rotation": rot, "response": response})
    preds = _write(tmp_path / "p.jsonl", lines)
    circular = evaluate(simple_dataset, preds, circular=True).overall.to_dict()
    assert circular == {"n": 24, "correct": 12, "accuracy": 0.5, "unanswered": 6}
    plain = evaluate(simple_dataset, preds).overall.to_dict()  # rotation 0 only
    assert plain == {"n": 24, "correct": 18, "accuracy": 0.75, "unanswered": 6}


def test_circular_without_all_rotations_is_an_error(simple_dataset: Path, tmp_path: Path) -> None:
    r = MIRStore(simple_dataset).read()[0]
    preds = _write(tmp_path / "p.jsonl", [{"id": r.id, "response": "A"}])
    with pytest.raises(MirdataError, match=r"has rotations \[0\], but --circular needs all of \[0, 1\]"):
        evaluate(simple_dataset, preds, circular=True)


@pytest.mark.parametrize(("content", "message"), [
    ('{"id": "nope", "response": "A"}\n', r"p.jsonl:1: id 'nope' is not a record"),
    ('{"id": "ID", "response": "A"}\n{"id": "ID", "response": "B"}\n', r"p.jsonl:2: a second prediction for"),
    ('{"id": "ID", "response": "A"}\n{"id": "ID", "resp', r"p.jsonl:2: truncated JSON line"),
    ('{"id": "ID", "response": 3}\n', r'p.jsonl:1: a prediction needs a string "id" and a string "response"'),
    ('{"id": "ID", "rotation": 5, "response": "A"}\n', r"p.jsonl:1: rotation 5 of .* is not in 0..1"),
    ('[1, 2]\n', r"p.jsonl:1: a JSON list, not an object"),
])
def test_bad_prediction_files_name_the_line(simple_dataset: Path, tmp_path: Path, content: str,
                                            message: str) -> None:
    rid = MIRStore(simple_dataset).read()[0].id
    preds = tmp_path / "p.jsonl"
    preds.write_text(content.replace("ID", rid))
    with pytest.raises(MirdataError, match=message):
        evaluate(simple_dataset, preds)


def test_the_judge_reads_leftovers_only_and_cannot_guess(simple_dataset: Path, tmp_path: Path) -> None:
    records = MIRStore(simple_dataset).read()[:4]
    lines = [
        {"id": records[0].id, "response": f"The answer is {records[0].answer}."},  # the rules read this one
        {"id": records[1].id, "response": f"I'd say the option labelled {records[1].answer} fits"},
        {"id": records[2].id, "response": "I really cannot tell."},
        {"id": records[3].id, "response": "Hmm."},
    ]
    seen: list[str] = []

    def judge_model(prompt, sample, seed) -> str:
        seen.append(prompt.text)
        if "option labelled" in prompt.text:
            return prompt.text.split("option labelled ")[1][0]
        return "NONE" if "cannot tell" in prompt.text else "The answer is probably B"

    judge = Judge(ScriptedRunner(judge_model))
    result = evaluate(simple_dataset, _write(tmp_path / "p.jsonl", lines), judge=judge).overall.to_dict()
    assert result == {"n": 4, "correct": 2, "accuracy": 0.5, "unanswered": 2}
    assert len(seen) == 3 and not any("The answer is " + records[0].answer in s for s in seen)


def test_evaluate_cli_prints_the_table_and_writes_json(simple_dataset: Path, tmp_path: Path) -> None:
    records = MIRStore(simple_dataset).read()
    lines = [{"id": r.id, "response": r.answer if k % 2 else "?"} for k, r in enumerate(records[:-2])]
    preds = _write(tmp_path / "p.jsonl", lines)
    out = tmp_path / "acc.json"
    result = CliRunner().invoke(app, ["evaluate", str(simple_dataset), str(preds), "--json", str(out)])
    assert result.exit_code == 0, result.output
    for word in ("speed_comparison", "analytical", "overall", "unanswered", "accuracy"):
        assert word in result.output
    assert "2 records have no prediction" in result.output
    report = json.loads(out.read_text())
    assert report["overall"] == {"n": 22, "correct": 11, "accuracy": 0.5, "unanswered": 11}
    assert set(report["by_category"]) == {category_of(r.task) for r in records}
    bad = CliRunner().invoke(app, ["evaluate", str(simple_dataset), str(tmp_path / "missing.jsonl")])
    assert bad.exit_code == 1 and "no such predictions file" in bad.output
