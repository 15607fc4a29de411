"""`mirdata stats`: counts, balance and lengths computed from a dataset whose content the test knows; the figure;
and help for every command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.errors import MirdataError
from mirdata.registry import task_names
from mirdata.stats import compute_stats, plot_stats, stats_tables
from mirdata.store import MIRStore
from tests.conftest import write_simple_dataset

runner = CliRunner()


def test_compute_stats_matches_the_records(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    records = write_simple_dataset(root, per_task=3)
    raw = MIRStore(root).read_raw()
    raw[0]["images"].append(raw[1]["images"][0])  # one record with 3 images, one image used twice
    raw[0]["caption"].append("one two three")
    raw[1]["difficulty"], raw[2]["difficulty"] = "easy", "hard"
    raw[3]["task"] = 5  # a wrong type is left out, not a crash
    MIRStore(root).write(raw)

    stats = compute_stats(root)
    assert stats["records"] == 36
    assert stats["images"] == 73 and stats["unique_images"] == 72
    assert stats["tasks"]["speed_comparison"] == 3 and stats["tasks"]["motion_detection"] == 2
    assert list(stats["tasks"]) == list(task_names())
    assert stats["categories"] == {"sequential": 12, "spatial": 12, "analytical": 12}
    assert stats["images_per_record"]["counts"] == {"2": 35, "3": 1}
    assert stats["images_per_record"]["max"] == 3 and stats["images_per_record"]["mean"] == pytest.approx(73 / 36, abs=0.01)
    answers = [r.answer for r in records]
    assert stats["answer_letters"] == {"A": answers.count("A"), "B": answers.count("B")}
    assert sum(stats["answer_shares"].values()) == pytest.approx(1.0)
    assert stats["majority_letter_accuracy"] == round(max(answers.count("A"), answers.count("B")) / 36, 4)
    assert stats["chance_accuracy"] == 0.5
    assert stats["difficulty"] == {"easy": 1, "hard": 1, "unrated": 34}
    words = stats["annotation_words"]
    assert words["caption"]["n"] == 73 and words["caption"]["min"] == 3  # per caption, not per record
    summary_words = len(records[0].summary.split())
    assert words["summary"]["min"] == words["summary"]["max"] == summary_words
    hist = words["conclusion"]["histogram"]
    assert sum(hist["counts"]) == 36 and len(hist["edges"]) == len(hist["counts"]) + 1
    json.dumps(stats)  # plain JSON for the dataset card


def test_stats_cli_tables_json_and_plot(simple_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    figure = tmp_path / "fig" / "stats.png"
    result = runner.invoke(app, ["stats", str(simple_dataset), "--plot", str(figure)])
    assert result.exit_code == 0, result.output
    for title in ("records per category and task", "images per record", "answer-letter balance",
                  "annotation lengths (words)"):
        assert title in result.stdout
    assert "speed_comparison" in result.stdout and "region2region" in result.stdout
    with Image.open(figure) as im:
        assert im.format == "PNG" and im.size == (1300, 900)
        pixels = np.asarray(im.convert("RGB").resize((64, 64))).reshape(-1, 3)
        assert len(np.unique(pixels, axis=0)) > 10  # something was drawn
    result = runner.invoke(app, ["stats", str(simple_dataset), "--json"])
    assert json.loads(result.stdout)["records"] == 24
    assert len(stats_tables(compute_stats(simple_dataset))) == 5


def test_stats_of_an_empty_dataset_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "records.jsonl").write_text("")
    stats = compute_stats(tmp_path)
    assert stats["records"] == 0 and stats["answer_letters"] == {} and stats["majority_letter_accuracy"] is None
    plot_stats(stats, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 0
    with pytest.raises(MirdataError, match=r"empty.xyz: cannot write the figure \(Format 'xyz' is not supported"):
        plot_stats(stats, tmp_path / "empty.xyz")
    with pytest.raises(MirdataError, match="no such file"):
        compute_stats(tmp_path / "nowhere")
    result = runner.invoke(app, ["stats", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_help_for_every_command_and_option() -> None:
    result = subprocess.run([sys.executable, "-m", "mirdata", "--help"], capture_output=True, text=True,
                            env={"COLUMNS": "200", "PATH": ""}, check=True)
    group = typer.main.get_command(app)
    assert {"validate", "import-upstream", "export", "stats", "build"} <= set(group.commands)
    for name, command in group.commands.items():
        assert name in result.stdout and command.help, name
        for param in command.params:
            assert getattr(param, "help", None), f"mirdata {name}: {param.name} has no help"
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0 and "Usage:" in sub.stdout, name
