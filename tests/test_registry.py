"""The task registry: built-in specs, plugin entry points (broken ones reported, not fatal), the CLI and README
reading their task list from it, and typed task config through `--set`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata import registry
from mirdata.builders.base import (
    BuildOptions,
    Reasoning,
    Sample,
    Task,
    TaskConfig,
    run_build,
    task_class,
)
from mirdata.cli import app
from mirdata.registry import (
    CATEGORIES,
    TaskSpec,
    register,
    task_names,
    task_specs,
    unregister,
)
from mirdata.schema.record import Region

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_builtin_spec_loads_its_builder_and_its_rules() -> None:
    builtin = [s for s in task_specs().values() if s.source == "mirdata"]
    assert [s.category for s in builtin] == sorted((s.category for s in builtin), key=CATEGORIES.index)
    assert len(builtin) == 12 and all(s.asks and s.definition for s in builtin)
    for spec in builtin:
        cls = task_class(spec.name)
        assert issubclass(cls, Task) and issubclass(cls.Config, TaskConfig)
        families = cls.question_families(spec)  # refuses a rule or constraint the code does not register
        assert list(families.names) == list(spec.families)


def test_readme_task_table_is_the_registry_s() -> None:
    result = CliRunner().invoke(app, ["tasks", "--markdown"], terminal_width=400)
    assert result.exit_code == 0, result.output
    table = result.output.strip()
    text = README.read_text()
    block = re.search(r"<!-- tasks: mirdata tasks --markdown -->\n(.*?)\n<!-- /tasks -->", text, re.S)
    assert block, "README has no generated task table"
    assert block.group(1).strip() == table, "README's task table is stale: paste `mirdata tasks --markdown`"
    assert all(f"`{t}`" in table for t in task_names())


def test_spec_files_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ncategory: cooking\nasks: a\ndefinition: d\nbuilder: m:C\n")
    with pytest.raises(ValueError, match="category 'cooking' is not one of"):
        TaskSpec.from_file(path)
    path.write_text("name: x\ncategory: spatial\nasks: a\nbuilder: m:C\nextra: 1\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown keys extra; missing keys definition"):
        TaskSpec.from_file(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        TaskSpec.from_file(path)


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the installed `mirdata.tasks` entry points with the given ones, for one test."""

    def install(*points: metadata.EntryPoint) -> None:
        monkeypatch.setattr(registry.metadata, "entry_points",
                            lambda group: [p for p in points if p.group == group])
        registry.registry.cache_clear()

    yield install
    registry.registry.cache_clear()


def test_a_broken_plugin_is_one_line_and_the_builtins_still_work(fake_entry_points, tmp_path: Path) -> None:
    fake_entry_points(metadata.EntryPoint("broken", "no_such_plugin_module:SPEC", registry.ENTRY_POINT_GROUP),
                      metadata.EntryPoint("wrong", "mirdata.registry:Registry", registry.ENTRY_POINT_GROUP))
    problems = registry.plugin_problems()
    assert len(problems) == 2
    assert "'broken' (no_such_plugin_module:SPEC): ModuleNotFoundError" in problems[0]
    assert "'wrong'" in problems[1] and "not a TaskSpec" in problems[1]
    assert len(task_names()) == 12
    result = CliRunner().invoke(app, ["build", "--task", "weight_comparison", "--num", "1",
                                      "--out", str(tmp_path / "d")], terminal_width=400)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and "no_such_plugin_module" in warnings[0]
    assert "Traceback" not in result.output and (tmp_path / "d" / "records.jsonl").exists()


@dataclass(frozen=True)
class GreyConfig(TaskConfig):
    levels: int = 4  # how many grey levels the images use
    flip: bool = False


class GreyTask(Task):
    """Two grey images; which is lighter."""

    Config = GreyConfig

    def sample(self, slot, rng):
        a, b = (int(v) for v in rng.choice(self.config.levels, size=2, replace=False) * (255 // self.config.levels))
        images = [Image.new("L", (16, 16), a).convert("RGB"), Image.new("L", (16, 16), b).convert("RGB")]
        answer = "A" if (a > b) != self.config.flip else "B"
        return Sample("<image> <image> Which is lighter?", ["A. the first", "B. the second"], answer, images,
                      [Region("r0", 0, [0.0, 0.0, 16.0, 16.0], "grey"), Region("r1", 1, [0.0, 0.0, 16.0, 16.0], "grey")],
                      {"grey": [a, b], "levels": self.config.levels}, "test")

    @classmethod
    def reason(cls, facts, regions, answer, config, rng):
        a, b = facts["grey"]
        return Reasoning("Compare.", [f"grey {a}", f"grey {b}"], "[r0], [r1].", f"[r0] {a}, [r1] {b}.",
                         f"So the answer is {answer}.")


def test_set_fills_a_task_s_own_typed_config(tmp_path: Path) -> None:
    spec = TaskSpec(name="lighter_grey", category="analytical", asks="Which is lighter.", definition="Greys.",
                    builder=GreyTask)
    register(spec)
    try:
        out = tmp_path / "d"
        run = run_build(BuildOptions(out=out, num=6, settings={"levels": "16", "flip": "yes"}), ["lighter_grey"],
                        show_progress=False)
        assert run["built"] == 6
        records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
        assert {r["meta"]["facts"]["levels"] for r in records} == {16}
        for r in records:  # flip: the darker one is "lighter"
            a, b = r["meta"]["facts"]["grey"]
            assert r["answer"] == ("B" if a > b else "A")
        result = CliRunner().invoke(app, ["build", "--task", "lighter_grey", "--set", "levels=many",
                                          "--out", str(tmp_path / "e")])
        assert result.exit_code == 1 and "--set levels=many: invalid literal for int()" in result.output
        result = CliRunner().invoke(app, ["build", "--task", "lighter_grey", "--set", "colour=red",
                                          "--out", str(tmp_path / "e")])
        assert result.exit_code == 1 and "--set colour: not a config field of lighter_grey" in result.output
        result = CliRunner().invoke(app, ["build", "--task", "lighter_grey", "--set", "seed=3",
                                          "--out", str(tmp_path / "e")])
        assert result.exit_code == 1 and "--set seed: it is a build option; use --seed" in result.output
    finally:
        unregister(spec.name)
    assert "lighter_grey" not in task_names()
