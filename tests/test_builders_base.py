"""The runner's contract, on a small task defined here: record purity, letter balance, resume, user errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TypedDict

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.builders.base import (
    BuildOptions,
    Reasoning,
    Sample,
    Task,
    make_record,
    record_rng,
    resolve_tasks,
    run_build,
)
from mirdata.builders.options import Slot, place_answer
from mirdata.cli import app
from mirdata.errors import MirdataError
from mirdata.registry import TaskSpec, register, unregister
from mirdata.schema.record import Region
from mirdata.validate import validate_dir


class SquareTask(Task):
    """Which of two images shows the brighter square; draws whose brightnesses tie are refused."""

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        levels = rng.integers(0, 8, size=2) * 32
        if levels[0] == levels[1]:
            return None  # cannot prove an answer: the runner draws again
        images = [Image.new("RGB", (32, 24), (int(v),) * 3) for v in levels]
        brighter = ["the first image", "the second image"][int(np.argmax(levels))]
        dimmer = ["the first image", "the second image"][int(np.argmin(levels))]
        options, answer = place_answer(brighter, [dimmer, "neither image"], slot, rng)
        return Sample("Compare <image> with <image>. Which is brighter?", options, answer, images,
                      [Region("r0", 0, [0, 0, 32, 24], "square"), Region("r1", 1, [0, 0, 32, 24], "square")],
                      {"levels": levels}, "test")

    @classmethod
    def reason(cls, facts, regions, answer, config, rng):
        a, b = facts["levels"]
        return Reasoning("Compare the grey levels.", [f"grey {a}", f"grey {b}"], "[r0] and [r1] are the squares.",
                         f"[r0] is {a}, [r1] is {b}.", f"So the answer is {answer}.")


SQUARE = TaskSpec(name="brighter_square", category="sequential", asks="Which image is brighter.",
                  definition="Two grey squares.", builder=SquareTask)


@pytest.fixture
def square_module():
    register(SQUARE)
    yield
    unregister(SQUARE.name)


def square(options: BuildOptions) -> SquareTask:
    return SquareTask(SQUARE, options)


def test_a_record_depends_only_on_task_seed_and_index(square_module) -> None:
    task = square(BuildOptions(seed=5))
    first, _ = make_record(task, 7)
    make_record(task, 3)  # other work in between changes nothing
    again, _ = make_record(task, 7)
    assert first.to_json() == again.to_json()
    assert make_record(square(BuildOptions(seed=6)), 7)[0].to_json() != first.to_json()


def test_refused_draws_are_redrawn_and_recorded(square_module) -> None:
    attempts = [make_record(square(BuildOptions()), i)[0].meta["attempt"] for i in range(40)]
    assert any(a > 0 for a in attempts)  # a tie happens in 1 of 8 draws


class Levels(TypedDict):
    levels: list[int]


def test_facts_must_match_the_task_s_facts_type(square_module, monkeypatch) -> None:
    monkeypatch.setattr(SquareTask, "Facts", Levels)
    assert len(make_record(square(BuildOptions()), 0)[0].meta["facts"]["levels"]) == 2
    monkeypatch.setattr(SquareTask, "Facts", TypedDict("Other", {"grey": int}))
    with pytest.raises(ValueError, match=r"facts do not match Other: missing \['grey'\], undeclared \['levels'\]"):
        make_record(square(BuildOptions()), 0)


def test_answer_letters_are_spread_evenly() -> None:
    rng = np.random.default_rng(0)
    letters = Counter(place_answer("yes", ["no", "maybe", "never"], Slot("view_3d", 3, i), rng)[1]
                      for i in range(400))
    assert letters == {"A": 100, "B": 100, "C": 100, "D": 100}
    with pytest.raises(ValueError):
        place_answer("yes", ["yes", "no"], Slot("view_3d", 3, 0), rng)


def test_record_rng_is_stable() -> None:
    a = record_rng("view_3d", 1, 2, 0).integers(0, 1 << 30, 4)
    assert (a == record_rng("view_3d", 1, 2, 0).integers(0, 1 << 30, 4)).all()
    assert not (a == record_rng("view_3d", 1, 3, 0).integers(0, 1 << 30, 4)).all()


def test_build_validates_and_a_second_run_resumes(square_module, tmp_path: Path) -> None:
    opts = BuildOptions(out=tmp_path / "d", num=12, image_format="png")
    run = run_build(opts, ["brighter_square"], show_progress=False)
    assert run["built"] == 12 and run["resumed_from"] == 0
    assert validate_dir(tmp_path / "d").ok
    before = (tmp_path / "d" / "records.jsonl").read_bytes()
    again = run_build(BuildOptions(out=tmp_path / "d", num=14, image_format="png"), ["brighter_square"],
                      show_progress=False)
    assert again["built"] == 2 and again["resumed_from"] == 12
    after = (tmp_path / "d" / "records.jsonl").read_bytes()
    assert after.startswith(before) and len(after.splitlines()) == 14
    info = json.loads((tmp_path / "d" / "build.json").read_text())
    assert info["counts"] == {"brighter_square": 14} and len(info["builds"]) == 2


def test_task_selection_errors_are_clear() -> None:
    assert resolve_tasks("spatial", None)[0] == "location_relationship"
    with pytest.raises(MirdataError, match="unknown task"):
        resolve_tasks(None, ["no_such_task"])
    with pytest.raises(MirdataError, match="not in category"):
        resolve_tasks("spatial", ["image_puzzle"])


@pytest.mark.parametrize("args, message", [
    (["--task", "nope"], "unknown task"),
    (["--image-size", "big"], "--image-size must look like"),
    (["--device", "tpu"], "--device must be cpu or cuda"),
    (["--category", "analytical", "--editor", "nope"], "--editor must be one of"),
    (["--category", "analytical", "--editor", "diffusers"], "needs --editor-model"),
])
def test_build_cli_user_errors_are_one_line_and_come_before_any_work(tmp_path: Path, args: list[str],
                                                                     message: str) -> None:
    result = CliRunner().invoke(app, ["build", "--out", str(tmp_path / "x"), "--num", "2", *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert not list(tmp_path.rglob("*.jpg")) and not list(tmp_path.rglob("*.json"))
