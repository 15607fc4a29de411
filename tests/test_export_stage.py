"""`mirdata export --format swift|llamafactory --stage K`: one curriculum stage for other trainers, in order."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.curriculum.export import export_stage
from mirdata.curriculum.stages import build_curriculum
from mirdata.errors import MirdataError
from mirdata.schema.record import IMAGE_TOKEN
from mirdata.store import MIRStore
from tests.conftest import write_simple_dataset


@pytest.fixture
def rated(tmp_path: Path) -> Path:
    root = tmp_path / "d"
    write_simple_dataset(root, per_task=2)
    store = MIRStore(root)
    records = store.read()
    for i, r in enumerate(records):
        r.difficulty = "hard" if i % 3 == 0 else "easy"
    store.write(records)
    return root


def flags(command: str) -> dict[str, str]:
    words = shlex.split(command)
    return {w: words[i + 1] for i, w in enumerate(words) if w.startswith("--") and i + 1 < len(words)}


def check_rows(rows: list[dict], root: Path, stage: int) -> None:
    examples = build_curriculum(MIRStore(root).read()).examples(stage)
    assert [r["id"] for r in rows] == [e.id for e in examples]  # training order kept
    for row, ex in zip(rows, examples, strict=True):
        user, assistant = row["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert user["content"] == ex.prompt and assistant["content"] == ex.completion
        assert user["content"].count(IMAGE_TOKEN) == len(row["images"]) == len(ex.images)
        for path in row["images"]:
            assert Path(path).is_absolute()
            with Image.open(path) as im:
                im.verify()


def test_swift_jsonl_in_order_with_a_command_that_keeps_it(rated, tmp_path):
    out = tmp_path / "x" / "stage2.jsonl"
    command = export_stage(rated, "swift", 2, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    check_rows(rows, rated, 2)
    assert command.startswith("swift sft ")
    f = flags(command)
    assert f["--dataset"] == str(out)
    assert f["--dataset_shuffle"] == f["--train_dataloader_shuffle"] == "false"
    assert f["--split_dataset_ratio"] == "0"


def test_llamafactory_json_and_dataset_info_merged(rated, tmp_path):
    folder = tmp_path / "lf"
    folder.mkdir()
    (folder / "dataset_info.json").write_text(json.dumps({"other": {"file_name": "other.json"}}))
    command = export_stage(rated, "llamafactory", 0, folder / "mir_stage0.json")
    check_rows(json.loads((folder / "mir_stage0.json").read_text()), rated, 0)
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["other"] == {"file_name": "other.json"}  # existing entries kept
    entry = info["mir_stage0"]
    assert entry["file_name"] == "mir_stage0.json" and entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "messages", "images": "images"}
    assert entry["tags"]["user_tag"] == "user" and entry["tags"]["assistant_tag"] == "assistant"
    assert command.startswith("llamafactory-cli train ")
    f = flags(command)
    assert f["--dataset"] == "mir_stage0" and f["--dataset_dir"] == str(folder)
    assert f["--disable_shuffling"] == "true"


def test_cli_export_prints_the_command(rated, tmp_path):
    out = tmp_path / "s5.jsonl"
    result = CliRunner().invoke(app, ["export", str(rated), "--format", "swift", "--stage", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "--train_dataloader_shuffle false" in result.output
    assert len(out.read_text().splitlines()) == len(build_curriculum(MIRStore(rated).read()).hard)


def test_export_errors_name_the_problem(rated, tmp_path):
    with pytest.raises(MirdataError, match="unknown export format"):
        export_stage(rated, "axolotl", 0, tmp_path / "x.json")
    store = MIRStore(rated)
    records = store.read()
    for r in records:
        r.difficulty = "hard"
    store.write(records)
    with pytest.raises(MirdataError, match="stage 0 has no records"):
        export_stage(rated, "swift", 0, tmp_path / "x.jsonl")
    for r in records:
        r.difficulty = None
    store.write(records)
    result = CliRunner().invoke(app, ["export", str(rated), "--format", "llamafactory", "--stage", "1", "--out",
                                      str(tmp_path / "y.json")])
    assert result.exit_code == 1 and "mirdata difficulty" in result.output
    assert not (tmp_path / "y.json").exists()
