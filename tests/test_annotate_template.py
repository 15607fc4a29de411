"""The template annotator over real builds of all 12 tasks: five whole stages that pass the checker."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirdata.annotate import annotate_dir, check_stages
from mirdata.annotate.check import stage_texts
from mirdata.builders.base import BuildOptions, Task, run_build
from mirdata.cli import app
from mirdata.registry import task_names
from mirdata.schema.tasks import STAGES
from mirdata.validate import validate_dir
from mirdata.store import MIRStore

PER_TASK = 6


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("built")
    run = run_build(BuildOptions(out=root, num=PER_TASK, seed=0, image_size=(224, 168), workers=2), list(task_names()),
                    show_progress=False)
    assert run["failed"] == [], run["failed"]
    return root


def test_every_record_of_every_task_has_five_stages_that_pass_the_checker(built):
    as_built = {r.id: stage_texts(r) for r in MIRStore(built).read()}
    summary = annotate_dir(built, annotator="template", show_progress=False)
    assert summary["no_template_records"] == []
    records = MIRStore(built).read()
    assert Counter(r.task for r in records) == {task: PER_TASK for task in task_names()}
    failures = [f"{r.id} {p}" for r in records for p in check_stages(r)]
    assert failures == [], "\n".join(failures)
    for record in records:
        assert all(str(v).strip() for v in (record.summary, record.text2region, record.region2region,
                                              record.conclusion, *record.caption))
        # the template annotator replays the build's own reasoning: same seed, same text
        assert stage_texts(record) == as_built[record.id]
        stages = record.meta["annotation"]["stages"]
        assert record.meta["annotation"]["annotator"] == "template"
        assert {s: stages[s]["source"] for s in STAGES} == {s: "template" for s in STAGES}
        assert all(stages[s]["problems"] == [] for s in STAGES)
    assert summary["failing"] == 0 and summary["sources"]["conclusion"] == {"template": len(records)}
    assert validate_dir(built).ok


def test_template_stages_are_written_without_making_any_task_or_media(built, monkeypatch):
    """`reason` is pure: the annotator never constructs a task, so no renderer, editor or model is made."""
    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{type(self).__name__} was constructed while writing template stages")

    monkeypatch.setattr(Task, "__init__", refuse)
    as_built = {r.id: stage_texts(r) for r in MIRStore(built).read()}
    summary = annotate_dir(built, annotator="template", show_progress=False)
    assert summary["no_template_records"] == [] and summary["failing"] == 0
    assert {r.id: stage_texts(r) for r in MIRStore(built).read()} == as_built


def test_template_annotation_is_deterministic_through_the_cli(built):
    runner = CliRunner()
    first = runner.invoke(app, ["annotate", str(built)])
    assert first.exit_code == 0, first.output
    before = (built / "records.jsonl").read_bytes()
    second = runner.invoke(app, ["annotate", str(built), "--annotator", "template"])
    assert second.exit_code == 0, second.output
    assert (built / "records.jsonl").read_bytes() == before
    assert f"{PER_TASK * len(task_names())} records annotated (template)" in second.output


def test_records_with_no_template_keep_their_own_checked_text(simple_dataset):
    records = MIRStore(simple_dataset).read()
    for r in records:
        r.meta = {"facts": r.meta["facts"]}  # an imported record: facts, but no seed and index to replay
    MIRStore(simple_dataset).write(records)
    summary = annotate_dir(simple_dataset, show_progress=False)
    assert summary["no_template"] == len(records) and summary["failing"] == 0
    assert "no facts, seed and index" in summary["no_template_records"][0]["reason"]
    after = MIRStore(simple_dataset).read()
    assert [stage_texts(r) for r in after] == [stage_texts(r) for r in records]
    assert all(r.meta["annotation"]["stages"]["summary"]["source"] == "existing" for r in after)


def test_annotate_reports_a_missing_folder(tmp_path):
    result = CliRunner().invoke(app, ["annotate", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "records.jsonl: no such file" in result.output
