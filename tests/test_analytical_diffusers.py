"""The diffusers editor end to end through the builder: a tiny pipeline saved to a folder, run on CPU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.generators.editing import write_tiny_pipeline

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(out: Path, *extra: str) -> list[dict]:
    result = runner.invoke(app, ["build", "--task", "yes_but_satire", "--num", "1", "--out", str(out), "--seed", "4",
                                 "--image-size", "96x72", *extra])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def test_builder_runs_the_diffusers_editor_from_a_local_folder(tmp_path: Path) -> None:
    model = write_tiny_pipeline(tmp_path / "tiny-editor")
    edited = build(tmp_path / "diffusers", "--editor", "diffusers", "--editor-model", str(model), "--device", "cpu")
    classical = build(tmp_path / "classical")
    for r, c in zip(edited, classical):
        assert r["meta"]["facts"]["editor"] == "diffusers" and len(r["meta"]["facts"]["changes"]) == 4
        assert r["meta"]["generator"] == "procedural scenes + diffusers editor"
        # Same scene and question (the editor only changes the second panel's pixels).
        assert r["question"] == c["question"] and r["options"] == c["options"] and r["answer"] == c["answer"]
        first = [np.asarray(Image.open(root / x["images"][0])) for root, x in
                 ((tmp_path / "diffusers", r), (tmp_path / "classical", c))]
        second = [np.asarray(Image.open(root / x["images"][1])).astype(int) for root, x in
                  ((tmp_path / "diffusers", r), (tmp_path / "classical", c))]
        assert np.array_equal(first[0], first[1])
        assert np.abs(second[0] - second[1]).mean() > 0.5  # the model, not the classical editor, made panel 2
    # Writing the reasoning again needs no editor: with the model folder of the build gone, the template
    # annotator still writes every stage, the same text the build wrote.
    shutil.rmtree(model)
    result = runner.invoke(app, ["annotate", str(tmp_path / "diffusers"), "--annotator", "template"])
    assert result.exit_code == 0, result.output
    again = [json.loads(line) for line in (tmp_path / "diffusers" / "records.jsonl").read_text().splitlines()]
    stages = ("summary", "caption", "text2region", "region2region", "conclusion")
    assert [{s: r[s] for s in stages} for r in again] == [{s: r[s] for s in stages} for r in edited]
    assert all(r["meta"]["annotation"]["stages"][s]["source"] == "template" for r in again for s in stages)


def test_missing_model_folder_is_one_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "--task", "yes_but_satire", "--num", "1", "--out", str(tmp_path / "o"),
                                 "--editor", "diffusers", "--editor-model", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no such diffusers pipeline folder" in " ".join(result.output.split())
    result = runner.invoke(app, ["build", "--task", "yes_but_satire", "--num", "1", "--out", str(tmp_path / "o"),
                                 "--editor", "diffusers"])
    assert result.exit_code == 1 and "needs --editor-model" in result.output
